//! Rules for `[admin]`: which listener serves which audience, and the
//! control listener off loopback only behind a bearer secret.

use std::net::SocketAddr;

use super::super::admin::{is_loopback, AdminSettings, DEFAULT_CONTROL_LISTEN, DEFAULT_LISTEN};
use super::super::raw::RawAdmin;
use super::Checker;

/// Shortest `control_secret`, as for `authorize_secret`.
const SECRET_MIN: usize = 16;

impl Checker<'_> {
    pub(super) fn admin(&mut self, raw: RawAdmin) -> Option<AdminSettings> {
        let listen = match raw.listen.as_deref() {
            Some(text) => self.socket_addr("admin.listen", text),
            None => Some(DEFAULT_LISTEN),
        };
        let control_listen = match raw.control_listen.as_deref() {
            Some(text) => self.socket_addr("admin.control_listen", text).map(Some),
            None => Some(None),
        };
        let browser_listen = match raw.browser_listen.as_deref() {
            None | Some("control") => Some(None),
            Some(text) => match text.parse::<SocketAddr>() {
                Ok(addr) => Some(Some(addr)),
                Err(_) => {
                    self.problem(
                        "admin.browser_listen",
                        "is not an address; write IP:PORT, e.g. \"0.0.0.0:9903\", or \"control\" to serve the browser endpoints on the control listener",
                    );
                    None
                }
            },
        };
        let control_secret = match raw.control_secret.as_deref() {
            None => Some(None),
            Some(text) => self.control_secret(text).map(Some),
        };
        let (listen, control_listen) = (listen?, control_listen?);
        // Unset, the controls stay where they were before the split when
        // that is loopback (one port for everything), else go to loopback.
        let control_listen = match control_listen {
            Some(addr) => Some(addr),
            None if is_loopback(listen) => None,
            None => Some(DEFAULT_CONTROL_LISTEN),
        };
        let control_secret = control_secret?;
        if control_secret.is_none() && control_listen.is_some_and(|a| !is_loopback(a)) {
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

    #[test]
    fn a_loopback_admin_listener_keeps_the_controls_and_browsers() {
        let dir = tempfile::tempdir().unwrap();
        for section in [
            "",
            "listen = \"127.0.0.1:9901\"\n",
            "listen = \"[::1]:0\"\n",
        ] {
            let a = admin(section, dir.path()).unwrap();
            assert_eq!(
                (a.control_listen, a.browser_listen),
                (None, None),
                "{section}"
            );
        }
        assert_eq!(admin("", dir.path()).unwrap().listen, DEFAULT_LISTEN);
    }

    #[test]
    fn a_pod_address_leaves_the_controls_on_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let a = admin("listen = \"0.0.0.0:9901\"\n", dir.path()).unwrap();
        assert_eq!(a.listen, addr("0.0.0.0:9901"));
        assert_eq!(a.control_listen, Some(DEFAULT_CONTROL_LISTEN));
        assert_eq!(a.browser_listen, None);
        let a = admin(
            "listen = \"0.0.0.0:9901\"\ncontrol_listen = \"127.0.0.1:7000\"\nbrowser_listen = \"0.0.0.0:9903\"\n",
            dir.path(),
        )
        .unwrap();
        assert_eq!(a.control_listen, Some(addr("127.0.0.1:7000")));
        assert_eq!(a.browser_listen, Some(addr("0.0.0.0:9903")));
        let a = admin("browser_listen = \"control\"\n", dir.path()).unwrap();
        assert_eq!(a.browser_listen, None);
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
        let clash = admin(
            "control_listen = \"127.0.0.1:9902\"\nbrowser_listen = \"127.0.0.1:9902\"\n",
            dir.path(),
        )
        .unwrap_err();
        assert_eq!(
            clash,
            ["admin.browser_listen: is already used by admin.control_listen"]
        );
    }
}
