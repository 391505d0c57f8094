//! Routes with `appliance = "gmo-aozora"`: their listener answers the
//! appliance's `POST /v1/authorization/` by starting an authorization of
//! their credential's sessions, so that credential must be one
//! `authorization_code` credential that takes the session from `sessionId`
//! (as the appliance's API calls name it). The app's request carries no
//! secret in the appliance's protocol, so a listener others can reach
//! needs the credential's `authorize_secret`.

use std::collections::BTreeMap;

use super::super::{is_loopback, CredentialConfig, Grant, RouteConfig};
use super::Checker;

impl Checker<'_> {
    pub(super) fn appliances(
        &mut self,
        routes: &[(usize, RouteConfig)],
        credentials: &BTreeMap<String, CredentialConfig>,
    ) {
        for (i, route) in routes {
            if route.appliance.is_none() {
                continue;
            }
            let path = format!("route[{i}]");
            let flow = match route.credential.as_slice() {
                [name] => match credentials.get(name) {
                    Some(CredentialConfig::OAuth2(o)) => match &o.grant {
                        Grant::AuthorizationCode(flow) => Some((name, flow)),
                        _ => None,
                    },
                    // An unknown name is reported at `credential` already.
                    None => continue,
                    Some(_) => None,
                },
                _ => None,
            };
            let Some((name, flow)) = flow else {
                self.problem(
                    format!("{path}.appliance"),
                    "needs `credential` to be one oauth2 credential with grant = \"authorization_code\" (the appliance's sessions)",
                );
                continue;
            };
            if flow.session_param.as_deref() != Some("sessionId") {
                self.problem(
                    format!("credential.{name}.session_param"),
                    "must be \"sessionId\" on the credential of an appliance route: the appliance's apps name the session in ?sessionId=",
                );
            }
            let open = route.listen.is_some_and(|a| !is_loopback(a));
            if open && flow.authorize_secret.is_none() {
                self.problem(
                    format!("credential.{name}.authorize_secret"),
                    format!("missing; route[{i}] answers POST /v1/authorization/ on a listener that is not a loopback address, so starting an authorization must need this secret"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;

    fn problems(toml: &str) -> Vec<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sessions")).unwrap();
        match validate(toml, dir.path()) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| (p.path, p.message))
                .collect(),
        }
    }

    fn config(credential_keys: &str, route_keys: &str) -> String {
        format!("[credential.gmo]\ntype = \"oauth2\"\ngrant = \"authorization_code\"\ntoken_url = \"https://as.test/token\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/oauth2/callback\"\nclient_id = \"c\"\nclient_secret = \"s\"\ntoken_store = \"sessions\"\n{credential_keys}\n[credential.h]\ntype = \"header\"\nheaders = {{ x-a = \"b\" }}\n\n[[route]]\nname = \"gmo\"\nupstream = \"https://api.test\"\n{route_keys}")
    }

    #[test]
    fn an_appliance_route_needs_its_sessions_named_by_session_id() {
        let ok = "session_param = \"sessionId\"\n";
        let route =
            "listen = \"127.0.0.1:9101\"\ncredential = \"gmo\"\nappliance = \"gmo-aozora\"\n";
        assert_eq!(problems(&config(ok, route)), []);

        let paths = |c: &str, r: &str| -> Vec<String> {
            problems(&config(c, r))
                .into_iter()
                .map(|(p, _)| p)
                .collect()
        };
        assert_eq!(paths("", route), ["credential.gmo.session_param"]);
        assert_eq!(
            paths(ok, &route.replace("gmo-aozora", "gmo")),
            ["route[0].appliance"]
        );
        assert_eq!(
            paths(
                ok,
                "hosts = [\"api.test\"]\ncredential = \"gmo\"\nappliance = \"gmo-aozora\"\n"
            ),
            ["route[0].appliance"],
            "no listener of its own"
        );
        assert_eq!(
            paths(
                ok,
                &route.replace("credential = \"gmo\"", "credential = \"h\"")
            ),
            ["route[0].appliance"]
        );
        // Off loopback, starting an authorization needs the secret.
        let open = route.replace("127.0.0.1", "0.0.0.0");
        let found = problems(&config(ok, &open));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "credential.gmo.authorize_secret");
        assert!(found[0].1.contains("route[0]"), "{found:?}");
        let secret = "session_param = \"sessionId\"\nauthorize_secret = \"0123456789abcdef-app\"\n";
        assert_eq!(problems(&config(secret, &open)), []);
    }
}
