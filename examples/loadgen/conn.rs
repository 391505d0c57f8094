//! One client connection: plain TCP, TLS, or TLS inside a CONNECT tunnel,
//! and one request/answer exchange on it (HTTP/1.1, keep-alive).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Where and how to connect, shared by every connection.
pub struct Target {
    addr: String,
    connect: Option<String>,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
}

impl Target {
    pub fn new(addr: &str, host: &str, connect: Option<String>, ca: Option<&Path>) -> Self {
        let tls = ca.map(|ca| {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).expect("--tls-ca: unreadable") {
                roots
                    .add(cert.expect("--tls-ca: bad PEM"))
                    .expect("--tls-ca: bad certificate");
            }
            let mut config = ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            let name = ServerName::try_from(host.to_string()).expect("--host: not a TLS name");
            (Arc::new(config), name)
        });
        Target {
            addr: addr.to_string(),
            connect,
            tls,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl Conn {
    pub fn open(target: &Target) -> Result<Conn, String> {
        let tcp = TcpStream::connect(&target.addr).map_err(|e| err("connect", e))?;
        tcp.set_nodelay(true).map_err(|e| err("nodelay", e))?;
        let mut conn = Conn {
            stream: Stream::Plain(tcp),
            buf: Vec::with_capacity(16 * 1024),
        };
        if let Some(dest) = &target.connect {
            let head = format!("CONNECT {dest} HTTP/1.1\r\nHost: {dest}\r\n\r\n");
            conn.write_all(head.as_bytes())?;
            let end = conn.read_head()?;
            let status = status_of(&conn.buf[..end])?;
            if status != 200 {
                return Err(format!("CONNECT answered {status}"));
            }
            conn.buf.drain(..end);
        }
        if let Some((config, name)) = &target.tls {
            let Stream::Plain(tcp) = conn.stream else {
                unreachable!()
            };
            let tls = ClientConnection::new(Arc::clone(config), name.clone())
                .map_err(|e| err("tls", e))?;
            conn.stream = Stream::Tls(Box::new(StreamOwned::new(tls, tcp)));
        }
        Ok(conn)
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), String> {
        let r = match &mut self.stream {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        };
        r.map_err(|e| err("write", e))
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = match &mut self.stream {
            Stream::Plain(s) => s.read(&mut chunk),
            Stream::Tls(s) => s.read(&mut chunk),
        }
        .map_err(|e| err("read", e))?;
        if n == 0 {
            return Err("connection closed by the server".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Until the buffer holds a whole head: its length with the blank line.
    fn read_head(&mut self) -> Result<usize, String> {
        loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(i + 4);
            }
            self.fill()?;
        }
    }

    fn need(&mut self, n: usize) -> Result<(), String> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(())
    }

    /// Sends one request and reads its whole answer; a status other than
    /// 2xx is an error.
    pub fn exchange(&mut self, req: &[u8]) -> Result<(), String> {
        self.write_all(req)?;
        let end = self.read_head()?;
        let head = String::from_utf8_lossy(&self.buf[..end]).to_ascii_lowercase();
        let status = status_of(head.as_bytes())?;
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| {
                v.trim()
                    .parse::<usize>()
                    .map_err(|e| err("content-length", e))
            })
            .transpose()?;
        let chunked = head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
        self.buf.drain(..end);
        if let Some(n) = length {
            self.need(n)?;
            self.buf.drain(..n);
        } else if chunked {
            self.read_chunks()?;
        }
        if !(200..300).contains(&status) {
            return Err(format!("answered {status}"));
        }
        Ok(())
    }

    fn read_chunks(&mut self) -> Result<(), String> {
        loop {
            let line = loop {
                if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                self.fill()?;
            };
            let text = String::from_utf8_lossy(&self.buf[..line]).to_string();
            let size = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|e| err("chunk size", e))?;
            // The chunk, its CRLF (for the last chunk: no trailers, the final CRLF).
            self.need(line + 2 + size + 2)?;
            self.buf.drain(..line + 2 + size + 2);
            if size == 0 {
                return Ok(());
            }
        }
    }
}

fn status_of(head: &[u8]) -> Result<u16, String> {
    let text = String::from_utf8_lossy(head);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {}", text.lines().next().unwrap_or("")))
}
