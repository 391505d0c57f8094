//! Finding the store's primary through Redis Sentinel (`store.sentinels`),
//! as Sentinel's client guidelines describe: ask each Sentinel in turn
//! `SENTINEL get-master-addr-by-name NAME`, connect to the address it
//! names, and take it only if it answers `ROLE` as a master (a Sentinel may
//! still name the old primary while a failover is under way). The caller
//! (`Conn`) runs this at the first command, and again after a command fails
//! on the connection (the primary went away, or answered `READONLY`: it was
//! demoted), so it follows a failover. To check a primary already found
//! (`poll`), every Sentinel is asked at once what it names.

use std::future::Future as _;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo as _};

use super::client::{self, describe};
use crate::config::{Secret, StoreConfig};

/// How to reach the Sentinels and the primary they name.
pub struct Discovery {
    nodes: Vec<(String, u16)>,
    master: String,
    sentinel_auth: Auth,
    primary_auth: Auth,
    tls: Option<redis::TlsCertificates>,
    timeout: Duration,
}

#[derive(Clone, Default)]
struct Auth {
    username: Option<Secret>,
    password: Option<Secret>,
}

/// The primary found: a client for it and its `host:port`.
pub struct Primary {
    pub client: redis::Client,
    pub address: String,
}

impl Discovery {
    /// For `config`, if it names Sentinels.
    pub fn of(config: &StoreConfig) -> Option<Discovery> {
        let s = config.sentinel.as_ref()?;
        Some(Discovery {
            nodes: s.nodes.clone(),
            master: s.master.clone(),
            sentinel_auth: Auth {
                username: s.username.clone(),
                password: s.password.clone(),
            },
            primary_auth: Auth {
                username: config.username.clone(),
                password: config.password.clone(),
            },
            tls: s.tls.then(|| client::certificates(config)),
            timeout: config.timeout,
        })
    }

    /// How many connections a discovery makes at most (one per Sentinel,
    /// one to the primary), each bounded by the store's timeout.
    pub fn connections(&self) -> u32 {
        u32::try_from(self.nodes.len()).unwrap_or(u32::MAX / 4) + 1
    }

    /// The primary, as the first Sentinel that names one that answers as a
    /// master says; otherwise what each Sentinel's attempt ran into.
    pub async fn primary(&self) -> Result<Primary, String> {
        let mut problems = Vec::new();
        for (host, port) in &self.nodes {
            match self.ask(host, *port).await {
                Ok(found) => return Ok(found),
                Err(p) => problems.push(format!("Sentinel {}: {p}", address(host, *port))),
            }
        }
        Err(format!(
            "no Sentinel named a reachable primary for `{}` ({})",
            self.master,
            problems.join("; ")
        ))
    }

    /// The `host:port` the first listed Sentinel that answers names as
    /// primary (not checked with `ROLE`): to see whether a failover moved
    /// it.
    pub async fn named(&self) -> Option<String> {
        self.poll().await.into_iter().flatten().next()
    }

    /// What each configured Sentinel names as primary (`None`: it did not
    /// answer), in the listed order. All are asked at once, so this takes
    /// as long as the slowest (a connect and a command, each bounded by
    /// the store's timeout), with one connection per Sentinel meanwhile.
    pub async fn poll(&self) -> Vec<Option<String>> {
        let mut asks: Vec<_> = self
            .nodes
            .iter()
            .map(|(host, port)| Box::pin(self.name_primary(host, *port)))
            .collect();
        let mut answers: Vec<Option<Option<String>>> = vec![None; asks.len()];
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (ask, answer) in asks.iter_mut().zip(answers.iter_mut()) {
                if answer.is_some() {
                    continue;
                }
                match ask.as_mut().poll(cx) {
                    std::task::Poll::Ready(named) => {
                        *answer = Some(named.ok().map(|(h, p)| address(&h, p)));
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        answers.into_iter().map(Option::flatten).collect()
    }

    /// What Sentinel `host:port` names as the primary.
    async fn name_primary(&self, host: &str, port: u16) -> Result<(String, u16), String> {
        let sentinel = self.client(host, port, &self.sentinel_auth)?;
        let mut conn = self.connect(&sentinel).await?;
        let named: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&self.master)
            .query_async(&mut conn)
            .await
            .map_err(|e| describe(&e))?;
        named.ok_or_else(|| format!("monitors no master named `{}`", self.master))
    }

    async fn ask(&self, host: &str, port: u16) -> Result<Primary, String> {
        let (primary_host, primary_port) = self.name_primary(host, port).await?;
        let at = address(&primary_host, primary_port);
        let client = self.client(&primary_host, primary_port, &self.primary_auth)?;
        let mut conn = self
            .connect(&client)
            .await
            .map_err(|p| format!("names {at}, which cannot be reached ({p})"))?;
        let role: Vec<redis::Value> = redis::cmd("ROLE")
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("names {at}, which fails ROLE ({})", describe(&e)))?;
        match role.first() {
            Some(redis::Value::BulkString(r)) if r == b"master" => Ok(Primary {
                client,
                address: at,
            }),
            _ => Err(format!(
                "names {at}, which is not a master (a failover under way?)"
            )),
        }
    }

    fn client(&self, host: &str, port: u16, auth: &Auth) -> Result<redis::Client, String> {
        let addr = match &self.tls {
            Some(_) => ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: false,
                tls_params: None,
            },
            None => ConnectionAddr::Tcp(host.to_string(), port),
        };
        let info = addr.into_connection_info().map_err(|e| describe(&e))?;
        let info = client::with_auth(info, &auth.username, &auth.password);
        match &self.tls {
            Some(certs) => {
                // redis-rs builds its rustls config from the process default.
                crate::pki::provider::install();
                redis::Client::build_with_tls(info, certs.clone())
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| describe(&e))
    }

    async fn connect(&self, client: &redis::Client) -> Result<MultiplexedConnection, String> {
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        client
            .get_multiplexed_async_connection_with_config(&settings)
            .await
            .map_err(|e| describe(&e))
    }
}

fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
