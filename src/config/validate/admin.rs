//! Rules for `[admin]`: a listener per audience, each on loopback unless
//! the operator says otherwise, and the control listener off loopback only
//! behind a bearer secret.

use std::net::SocketAddr;

use super::super::admin::{
    is_loopback, AdminSettings, BrowserListen, DEFAULT_BROWSER_LISTEN, DEFAULT_CONTROL_LISTEN,
    DEFAULT_LISTEN,
};
use super::super::raw::RawAdmin;
use super::Checker;

/// Shortest `control_secret`, as for `authorize_secret`.
const SECRET_MIN: usize = 16;

impl Checker<'_> {
    /// `sessions`: whether some credential has user sessions, the only
    /// reason to bind the browser listener.
    pub(super) fn admin(&mut self, raw: RawAdmin, sessions: bool) -> Option<AdminSettings> {
        let listen = match raw.listen.as_deref() {
            Some(text) => self.socket_addr("admin.listen", text),
            None => Some(DEFAULT_LISTEN),
        };
        let control_listen = match raw.control_listen.as_deref() {
            Some(text) => self.socket_addr("admin.control_listen", text),
            None => Some(DEFAULT_CONTROL_LISTEN),
        };
        let browser_listen = match raw.browser_listen.as_deref() {
            Some("control") => Some(BrowserListen::Control),
            None => Some(BrowserListen::Own(DEFAULT_BROWSER_LISTEN)),
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(addr) => Some(BrowserListen::Own(addr)),
                Err(_) => {
                    self.problem(
                        "admin.browser_listen",
                        "is not an address; write IP:PORT, e.g. \"0.0.0.0:9903\", or \"control\" to serve the browser endpoints on the control listener",
                    );
                    None
                }
            },
        };
        let browser_listen =
            browser_listen.map(|b| if sessions { b } else { BrowserListen::Unused });
        let control_secret = match raw.control_secret.as_deref() {
            None => Some(None),
            Some(text) => self.control_secret(text).map(Some),
        };
        let (listen, control_listen) = (listen?, control_listen?);
        let control_secret = control_secret?;
        if control_secret.is_none() && !is_loopback(control_listen) {
            self.problem(
                "admin.control_secret",
                "missing; admin.control_listen is not a loopback address, and the control endpoints (/status, POST /reload, POST /oauth2/NAME/authorize) may not be open to the network: set control_secret to a ${file:} reference holding at least 16 random characters, or make control_listen a loopback address",
            );
            return None;
        }
        Some(AdminSettings {
            listen,
            control_listen,
            control_secret,
            browser_listen: browser_listen?,
        })
    }

    /// A bearer secret kept out of the config file itself, like the
    /// others; a literal here would sit in a ConfigMap.
    fn control_secret(&mut self, text: &str) -> Option<crate::config::Secret> {
        let key = "admin.control_secret";
        let one_reference = (text.starts_with("${file:") || text.starts_with("${env:"))
            && text.ends_with('}')
            && text.matches("${").count() == 1;
        if !one_reference {
            self.problem(
                key,
                "must be a reference, \"${file:PATH}\" or \"${env:NAME}\", not the secret itself: the config file is no place for it",
            );
            return None;
        }
        let secret = self.secret(key, text)?;
        if secret.expose().len() < SECRET_MIN {
            self.problem(
                key,
                "is too short; use at least 16 random characters (e.g. openssl rand -base64 24)",
            );
            return None;
        }
        Some(secret)
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;
    use super::*;

    fn admin(section: &str, dir: &std::path::Path) -> Result<AdminSettings, Vec<String>> {
        validate(&format!("[admin]\n{section}"), dir)
            .map(|c| c.admin)
            .map_err(|e| e.problems.into_iter().map(|p| p.to_string()).collect())
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A credential with user sessions, for the browser listener.
    const SESSIONS: &str = "[credential.bank]\ntype = \"oauth2\"\ntoken_url = \"https://as.test/token\"\nclient_id = \"c\"\nclient_secret = \"s3cret\"\ngrant = \"authorization_code\"\nauthorize_url = \"https://as.test/authorize\"\nredirect_uri = \"https://app.test/oauth2/callback\"\ntoken_store = \"DIR/sessions\"\n";

    fn with_sessions(section: &str, dir: &std::path::Path) -> Result<AdminSettings, Vec<String>> {
        std::fs::create_dir_all(dir.join("sessions")).unwrap();
        let creds = SESSIONS.replace("DIR", &dir.display().to_string());
        validate(&format!("{creds}\n[admin]\n{section}"), dir)
            .map(|c| c.admin)
            .map_err(|e| e.problems.into_iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn each_audience_has_a_loopback_listener_of_its_own_by_default() {
        let dir = tempfile::tempdir().unwrap();
        for section in [
            "",
            "listen = \"127.0.0.1:9901\"\n",
            "listen = \"[::1]:0\"\n",
            "listen = \"0.0.0.0:9901\"\n",
        ] {
            let a = admin(section, dir.path()).unwrap();
            assert_eq!(a.control_listen, DEFAULT_CONTROL_LISTEN, "{section}");
            // No credential has user sessions: no browser listener.
            assert_eq!(a.browser_listen, BrowserListen::Unused, "{section}");
            let a = with_sessions(section, dir.path()).unwrap();
            assert_eq!(a.control_listen, DEFAULT_CONTROL_LISTEN, "{section}");
            assert_eq!(
                a.browser_listen,
                BrowserListen::Own(DEFAULT_BROWSER_LISTEN),
                "{section}"
            );
        }
        assert_eq!(admin("", dir.path()).unwrap().listen, DEFAULT_LISTEN);
        assert_eq!(
            (
                DEFAULT_LISTEN.port(),
                DEFAULT_CONTROL_LISTEN.port(),
                DEFAULT_BROWSER_LISTEN.port()
            ),
            (9901, 9902, 9903)
        );
        assert!(is_loopback(DEFAULT_CONTROL_LISTEN) && is_loopback(DEFAULT_BROWSER_LISTEN));
    }

    #[test]
    fn the_operator_moves_or_shares_a_listener_by_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let a = with_sessions(
            "listen = \"0.0.0.0:9901\"\ncontrol_listen = \"127.0.0.1:7000\"\nbrowser_listen = \"0.0.0.0:9903\"\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(a.listen, addr("0.0.0.0:9901"));
        assert_eq!(a.control_listen, addr("127.0.0.1:7000"));
        assert_eq!(a.browser_listen, BrowserListen::Own(addr("0.0.0.0:9903")));
        let a = with_sessions("browser_listen = \"control\"\n", dir.path()).unwrap();
        assert_eq!(a.browser_listen, BrowserListen::Control);
        // The same address as the controls is a clash that names the
        // spelling that shares.
        let clash = with_sessions(
            "control_listen = \"127.0.0.1:7000\"\nbrowser_listen = \"127.0.0.1:7000\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(clash.len(), 1, "{clash:?}");
        assert!(
            clash[0].starts_with("admin.browser_listen: is already used by admin.control_listen; ")
                && clash[0].contains("browser_listen = \"control\""),
            "{clash:?}"
        );
    }

    #[test]
    fn controls_off_loopback_need_a_secret_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        for open in ["0.0.0.0:9902", "10.1.2.3:9902", "[::]:9902"] {
            let problems =
                admin(&format!("control_listen = \"{open}\"\n"), dir.path()).unwrap_err();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("admin.control_secret: missing;"),
                "{problems:?}"
            );
            assert!(problems[0].contains("admin.control_listen"), "{problems:?}");
            assert!(!problems[0].contains(open), "no value quoted: {problems:?}");
        }
        std::fs::write(dir.path().join("ctl"), "s3cret-s3cret-s3cret\n").unwrap();
        let a = admin(
            "control_listen = \"0.0.0.0:9902\"\ncontrol_secret = \"${file:ctl}\"\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            a.control_secret.as_ref().map(|s| s.expose()),
            Some("s3cret-s3cret-s3cret")
        );

        let literal = admin(
            "control_listen = \"0.0.0.0:9902\"\ncontrol_secret = \"s3cret-s3cret-s3cret\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert!(
            literal[0].starts_with("admin.control_secret: must be a reference"),
            "{literal:?}"
        );
        assert!(!literal[0].contains("s3cret"), "{literal:?}");

        std::fs::write(dir.path().join("short"), "short").unwrap();
        let short = admin("control_secret = \"${file:short}\"\n", dir.path()).unwrap_err();
        assert!(
            short[0].starts_with("admin.control_secret: is too short"),
            "{short:?}"
        );
    }

    #[test]
    fn every_admin_listener_is_an_address_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let bad = admin("browser_listen = \"probes\"\n", dir.path()).unwrap_err();
        assert!(
            bad[0].starts_with("admin.browser_listen: is not an address"),
            "{bad:?}"
        );
        let clash = admin(
            "listen = \"127.0.0.1:9901\"\ncontrol_listen = \"127.0.0.1:9901\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(
            clash,
            ["admin.control_listen: is already used by admin.listen"]
        );
        // The default control port taken by the probes.
        let clash = admin("listen = \"127.0.0.1:9902\"\n", dir.path()).unwrap_err();
        assert_eq!(
            clash,
            ["admin.control_listen: is already used by admin.listen"]
        );
    }
}
