//! A scripted browser for the consent flow: it keeps cookies per host,
//! follows redirects, and reads and posts HTML forms (their `action` and
//! inputs), the way a person's browser goes through a provider's login and
//! consent pages. Hosts may be mapped to local addresses (the redirect
//! URI's public host to countersign's browser listener, as an ingress
//! would).

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::Full;

use crate::integration::harness::{send, Answer};
use crate::oidc_provider::form_encode;

/// An HTML form: where it posts, and its inputs' names and values.
#[derive(Debug, Clone)]
pub struct HtmlForm {
    pub action: String,
    pub method: String,
    pub fields: Vec<(String, String)>,
}

impl HtmlForm {
    /// Sets `name` (adding it when the form has no such input).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }
}

#[derive(Default)]
pub struct Browser {
    /// Host (authority) -> cookie name -> value.
    cookies: HashMap<String, HashMap<String, String>>,
    hosts: HashMap<String, SocketAddr>,
    /// Every URL visited, in order: for failure messages.
    pub visited: Vec<String>,
}

/// Where a walk stopped: the last URL and its answer.
pub struct Page {
    pub url: String,
    pub answer: Answer,
}

impl Browser {
    /// Requests to `host` go to `addr`.
    pub fn map(&mut self, host: &str, addr: SocketAddr) {
        self.hosts.insert(host.to_string(), addr);
    }

    /// One request, cookies sent and stored; no redirect followed.
    pub async fn request(
        &mut self,
        method: Method,
        url: &str,
        form: Option<&[(String, String)]>,
    ) -> Answer {
        self.visited.push(format!("{method} {url}"));
        let uri: Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        let host = uri.authority().expect("an absolute URL").to_string();
        let addr = self
            .hosts
            .get(&host)
            .copied()
            .unwrap_or_else(|| host.parse().expect("a mapped host or an address"));
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &host);
        if let Some(jar) = self.cookies.get(&host).filter(|j| !j.is_empty()) {
            let cookie = jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header("cookie", cookie);
        }
        let body = match form {
            Some(fields) => {
                req = req.header("content-type", "application/x-www-form-urlencoded");
                fields
                    .iter()
                    .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            }
            None => String::new(),
        };
        let answer = send(addr, req.body(Full::new(Bytes::from(body))).unwrap()).await;
        let jar = self.cookies.entry(host).or_default();
        for set in answer.headers.get_all("set-cookie") {
            let set = set.to_str().unwrap_or("");
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let attrs = attrs.to_ascii_lowercase();
            let gone = attrs.contains("max-age=0") || attrs.contains("expires=thu, 01 jan 1970");
            if gone || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        answer
    }

    /// GETs `url` and follows redirects until an answer that is not one,
    /// or one to a URL with `stop_at` as its prefix (not requested).
    pub async fn walk(&mut self, url: &str, stop_at: &str) -> Page {
        self.follow(Method::GET, url, None, stop_at).await
    }

    /// Posts `form` (found on the page at `page_url`) and follows
    /// redirects like `walk`.
    pub async fn submit(&mut self, page_url: &str, form: &HtmlForm, stop_at: &str) -> Page {
        let url = resolve(page_url, &form.action);
        let method = if form.method.eq_ignore_ascii_case("post") {
            Method::POST
        } else {
            Method::GET
        };
        self.follow(method, &url, Some(&form.fields), stop_at).await
    }

    async fn follow(
        &mut self,
        mut method: Method,
        url: &str,
        form: Option<&[(String, String)]>,
        stop_at: &str,
    ) -> Page {
        let mut url = url.to_string();
        let mut form = form.map(<[_]>::to_vec);
        for _ in 0..20 {
            let answer = self.request(method.clone(), &url, form.as_deref()).await;
            let Some(location) = answer
                .status
                .is_redirection()
                .then(|| answer.header("location"))
                .flatten()
            else {
                return Page { url, answer };
            };
            let next = resolve(&url, location);
            if next.starts_with(stop_at) {
                return Page { url: next, answer };
            }
            url = next;
            method = Method::GET;
            form = None;
        }
        panic!("more than 20 redirects: {:?}", self.visited);
    }
}

/// `reference` against `base` (absolute URLs and absolute paths).
pub fn resolve(base: &str, reference: &str) -> String {
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.to_string();
    }
    let uri: Uri = base.parse().unwrap();
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap(),
        uri.authority().unwrap()
    );
    if reference.starts_with('/') {
        format!("{origin}{reference}")
    } else {
        let dir = uri.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{origin}{dir}/{reference}")
    }
}

/// The forms of an HTML page, read well enough for the provider's pages:
/// each `<form>`'s `action` and `method`, and its `<input>`s' `name` and
/// `value` (HTML's usual character references undone).
pub fn forms(html: &str) -> Vec<HtmlForm> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let after = &rest[start..];
        let end = after.find("</form>").unwrap_or(after.len());
        let body = &after[..end];
        let tag = &body[..body.find('>').unwrap_or(body.len())];
        let mut fields = Vec::new();
        let mut inputs = body;
        while let Some(i) = inputs.find("<input") {
            let input = &inputs[i..];
            let tag_end = input.find('>').unwrap_or(input.len());
            let input_tag = &input[..tag_end];
            if let Some(name) = attribute(input_tag, "name") {
                fields.push((name, attribute(input_tag, "value").unwrap_or_default()));
            }
            inputs = &input[tag_end..];
        }
        found.push(HtmlForm {
            action: attribute(tag, "action").unwrap_or_default(),
            method: attribute(tag, "method").unwrap_or_else(|| "get".into()),
            fields,
        });
        rest = &after[end..];
    }
    found
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let value = &tag[start..start + tag[start..].find('"')?];
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
/// The parameters of a URL's query or fragment (`#`), decoded.
pub fn params_of(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
