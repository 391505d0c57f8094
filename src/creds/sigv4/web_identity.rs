//! `keys = "web-identity"` (EKS IRSA): the token the platform writes to a
//! file is exchanged with STS `AssumeRoleWithWebIdentity` for temporary
//! keys, renewed by the token lifecycle of `creds::token` ahead of their
//! `Expiration`. The lifecycle holds the three values as one sensitive
//! header value, `<access key id> <secret access key> <session token>`
//! (none of them can hold a space).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::config::WebIdentity;
use crate::creds::form::Form;
use crate::creds::form_post::{FormEndpoint, PostError, Reach};
use crate::creds::token::{
    Fetch, Fingerprint, NewToken, SourceError, TokenManager, TokenRegistry, TokenSource,
};
use crate::egress::EgressPolicy;
use crate::upstream::UpstreamSettings;

/// Renew at this fraction of the keys' life (STS gives an hour by
/// default: renewed after 48 minutes).
pub(super) const REFRESH_AT: f64 = 0.8;
/// How long a request waits for keys when none are held.
pub(super) const WAIT_FOR_KEYS: Duration = Duration::from_secs(5);

/// Temporary keys, as the lifecycle hands them out.
pub struct Keys<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: &'a str,
}

impl<'a> Keys<'a> {
    pub fn unpack(value: &'a HeaderValue) -> Option<Keys<'a>> {
        let text = value.to_str().ok()?;
        let mut parts = text.split(' ');
        let keys = Keys {
            access_key_id: parts.next()?,
            secret_access_key: parts.next()?,
            session_token: parts.next()?,
        };
        parts.next().is_none().then_some(keys)
    }
}

struct Source {
    post: FormEndpoint,
    config: WebIdentity,
}

impl TokenSource for Source {
    fn fetch<'a>(&'a self, _label: &'a str) -> Fetch<'a> {
        Box::pin(self.exchange())
    }

    fn noun(&self) -> &'static str {
        "AWS credentials"
    }
}

impl Source {
    async fn exchange(&self) -> Result<NewToken, SourceError> {
        let file = &self.config.token_file;
        let token = tokio::fs::read_to_string(file).await.map_err(|e| {
            SourceError::new(format!(
                "cannot read the web identity token file {}: {}",
                file.display(),
                e.kind()
            ))
        })?;
        let mut form = Form::default();
        form.push("Action", "AssumeRoleWithWebIdentity");
        form.push("Version", "2011-06-15");
        form.push("RoleArn", &self.config.role_arn);
        form.push("RoleSessionName", &self.config.session_name);
        form.push("WebIdentityToken", token.trim());
        let (status, body) = self
            .post
            .post(HeaderMap::new(), form.into_string())
            .await
            .map_err(|e| {
                SourceError::new(match e {
                    PostError::Timeout(d) => format!("STS did not answer within {d:?}"),
                    PostError::Transport(e) => {
                        format!("STS request failed: {}", crate::causes::chain(&e))
                    }
                    PostError::Body => "reading STS's answer failed".to_string(),
                })
            })?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            // STS's error code (InvalidIdentityToken, AccessDenied, ...) is
            // safe to show; its message may quote the token's claims.
            let code = element(&text, "Code").unwrap_or("no error code");
            let message = format!("STS answered {status} ({code})");
            return Err(match code {
                "InvalidIdentityToken" | "AccessDenied" | "ExpiredTokenException" => {
                    SourceError::refused(
                        message,
                        "check the role's trust policy and the service account's role ARN",
                    )
                }
                _ => SourceError::new(message),
            });
        }
        parse(&text, now_unix())
    }
}

/// The keys and their lifetime from an `AssumeRoleWithWebIdentityResponse`
/// read at Unix time `now`.
fn parse(text: &str, now: i64) -> Result<NewToken, SourceError> {
    let field = |name: &'static str| {
        element(text, name)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| SourceError::new(format!("STS's answer has no usable <{name}>")))
    };
    let keys = Keys {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("SessionToken")?,
    };
    pack("STS", &keys, field("Expiration")?, now)
}

/// Temporary `keys` from `issuer`, expiring at `expiration` (UTC, ISO
/// 8601), as the lifecycle holds them, read at Unix time `now`.
pub(super) fn pack(
    issuer: &str,
    keys: &Keys<'_>,
    expiration: &str,
    now: i64,
) -> Result<NewToken, SourceError> {
    let expires = unix_time(expiration)
        .ok_or_else(|| SourceError::new(format!("{issuer}'s expiration is not a UTC time")))?;
    let lifetime = u64::try_from(expires - now)
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| {
            SourceError::new(format!(
                "{issuer} handed out keys that have already expired"
            ))
        })?;
    let printable = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
    if !(printable(keys.access_key_id)
        && printable(keys.secret_access_key)
        && printable(keys.session_token))
    {
        return Err(SourceError::new(format!(
            "{issuer}'s keys are empty or not printable text"
        )));
    }
    let text = format!(
        "{} {} {}",
        keys.access_key_id, keys.secret_access_key, keys.session_token
    );
    let mut value = HeaderValue::from_str(&text)
        .map_err(|_| SourceError::new(format!("{issuer}'s keys are not valid header text")))?;
    value.set_sensitive(true);
    Ok(NewToken {
        value,
        lifetime: Duration::from_secs(lifetime),
    })
}

/// The text of the first `<name>...</name>` in `xml` (STS's answers have
/// no attributes, CDATA or nesting of these elements).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(xml[start..start + len].trim())
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` as Unix time.
fn unix_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let time = time.split('.').next()?;
    let num = |s: &str| s.parse::<u32>().ok();
    let mut d = date.split('-').map(num);
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(num);
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let date = time::Date::from_calendar_date(
        i32::try_from(y).ok()?,
        time::Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let time = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(min).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

pub(super) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The manager of credential `name`'s keys, kept by `tokens` across
/// reloads while the web identity settings are unchanged.
pub fn manager(
    name: &str,
    config: &WebIdentity,
    tokens: &TokenRegistry,
    settings: UpstreamSettings,
    egress: &Arc<EgressPolicy>,
) -> Result<Arc<TokenManager>, (&'static str, String)> {
    let mut h = Fingerprint::default();
    h.feed("kind", b"aws-sigv4/web-identity");
    h.feed("name", name.as_bytes());
    h.feed("role_arn", config.role_arn.as_bytes());
    h.feed(
        "token_file",
        config.token_file.as_os_str().as_encoded_bytes(),
    );
    h.feed("sts_url", config.sts_url.to_string().as_bytes());
    h.feed("session", config.session_name.as_bytes());
    h.connection(&[], None, settings);
    let egress = Arc::clone(egress);
    tokens.keep(h.finish(), || {
        let reach = Reach {
            url: &config.sts_url,
            url_key: "sts_url",
            roots: &[],
            identity: None,
        };
        let post = FormEndpoint::new(reach, settings, egress).map_err(|e| ("sts_url", e))?;
        let source = Source {
            post,
            config: config.clone(),
        };
        Ok(TokenManager::start(
            name,
            Box::new(source),
            REFRESH_AT,
            WAIT_FOR_KEYS,
            None,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of AWS's documented AssumeRoleWithWebIdentity answer.
    const ANSWER: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>amzn1.account.AF6RHO7KZU5XRVQJGXK6HB56KR2A</SubjectFromWebIdentityToken>
    <Audience>client.5498841531868486423.1548@apps.example.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/FederatedWebIdentityRole/app1</Arn>
      <AssumedRoleId>AROACLKWSDQRAOEXAMPLE:app1</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2014-10-24T23:00:23Z</Expiration>
      <AccessKeyId>ASgeIAIOSFODNN7EXAMPLE</AccessKeyId>
    </Credentials>
    <Provider>www.amazon.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn the_documented_answer_gives_keys_and_their_lifetime() {
        let expires = unix_time("2014-10-24T23:00:23Z").unwrap();
        assert_eq!(expires, 1414191623);
        let token = parse(ANSWER, expires - 3600).unwrap();
        assert_eq!(token.lifetime, Duration::from_secs(3600));
        assert!(token.value.is_sensitive());
        let keys = Keys::unpack(&token.value).unwrap();
        assert_eq!(keys.access_key_id, "ASgeIAIOSFODNN7EXAMPLE");
        assert_eq!(
            keys.secret_access_key,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"
        );
        assert_eq!(
            keys.session_token,
            "AQoDYXdzEE0a8ANXXXXXXXXNO1ewxE5TijQyp+IEXAMPLE"
        );
    }

    #[test]
    fn expired_or_incomplete_answers_are_errors_that_quote_nothing() {
        let e = parse(ANSWER, 1414191623).err().unwrap();
        assert!(e.message().contains("already expired"), "{e}");
        let e = parse(&ANSWER.replace("SessionToken", "Other"), 0)
            .err()
            .unwrap();
        assert_eq!(e.message(), "STS's answer has no usable <SessionToken>");
        let e = parse(&ANSWER.replace("2014-10-24T23:00:23Z", "soon"), 0)
            .err()
            .unwrap();
        assert!(!e.message().contains("wJalr"), "{e}");
        assert_eq!(unix_time("2014-10-24T23:00:23.123Z"), Some(1414191623));
        assert_eq!(unix_time("2014-13-24T23:00:23Z"), None);
    }
}
