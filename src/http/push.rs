//! The `push` interaction finish (RFC 9635 §4.2.2): one JSON POST to a URI
//! the client chose, made safe against server-side request forgery
//! ("the AS MUST protect itself against SSRF attacks when making this
//! call").
//!
//! - only `http` and `https`;
//! - the host is resolved here and every address checked: a name with any
//!   private, loopback, link-local or unspecified address, or an IPv6 form
//!   that reaches IPv4 through a translator or tunnel (NAT64, 6to4,
//!   IPv4-compatible; `authz::interaction::is_internal_address`) is refused
//!   unless `allow_private_push` is set;
//! - the connection goes to an address that was checked (no second lookup
//!   an attacker's DNS could answer differently);
//! - [`CONNECT_TIMEOUT`] per address, [`TOTAL_TIMEOUT`] for everything;
//! - redirects are not followed (a 3xx is a failed push), and the answer's
//!   body is not read.
//!
//! A failed push is logged by the caller and does not undo the decision.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::authz::interaction::is_internal_address;

/// How long one address gets to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the whole push (lookup, connect, TLS, request, answer head)
/// may take.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The client answered with a 2xx status.
    Delivered(u16),
    /// Not attempted: the target is not allowed.
    Refused(String),
    /// Attempted and failed.
    Failed(String),
}

impl std::fmt::Display for PushOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Delivered(status) => write!(f, "delivered ({status})"),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// Makes pushes.
pub struct Pusher {
    allow_internal: bool,
    tls: TlsConnector,
}

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher")
            .field("allow_internal", &self.allow_internal)
            .finish_non_exhaustive()
    }
}

impl Pusher {
    /// A pusher trusting the system roots and `extra` for `https` targets;
    /// `allow_internal` lets pushes reach internal addresses.
    pub fn new(
        allow_internal: bool,
        extra: &[CertificateDer<'static>],
    ) -> Result<Self, crate::http_client::TlsError> {
        let mut tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(crate::http_client::roots(extra)?)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            allow_internal,
            tls: TlsConnector::from(Arc::new(tls)),
        })
    }

    /// POSTs `body` (JSON) to `uri`.
    pub async fn push(&self, uri: &str, body: Vec<u8>) -> PushOutcome {
        match tokio::time::timeout(TOTAL_TIMEOUT, self.push_inner(uri, body)).await {
            Ok(outcome) => outcome,
            Err(_) => PushOutcome::Failed("timed out".into()),
        }
    }

    async fn push_inner(&self, uri: &str, body: Vec<u8>) -> PushOutcome {
        let Ok(parsed) = uri.parse::<hyper::Uri>() else {
            return PushOutcome::Refused("not a usable URI".into());
        };
        let https = match parsed.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return PushOutcome::Refused("only http and https".into()),
        };
        let Some(host) = parsed.host() else {
            return PushOutcome::Refused("no host".into());
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.collect(),
                Err(_) => return PushOutcome::Failed(format!("cannot resolve {host}")),
            },
        };
        if addrs.is_empty() {
            return PushOutcome::Failed(format!("{host} has no address"));
        }
        if !self.allow_internal && addrs.iter().any(|a| is_internal_address(a.ip())) {
            return PushOutcome::Refused(format!(
                "{host} resolves to a private, loopback, link-local or translated address"
            ));
        }
        let mut stream = None;
        for addr in &addrs {
            if let Ok(Ok(s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
            {
                stream = Some(s);
                break;
            }
        }
        let Some(stream) = stream else {
            return PushOutcome::Failed(format!("cannot connect to {host}"));
        };
        let path = parsed
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let authority = parsed
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let request = match hyper::Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
        {
            Ok(r) => r,
            Err(_) => return PushOutcome::Refused("cannot build the request".into()),
        };
        if https {
            let Ok(name) = ServerName::try_from(host.clone()) else {
                return PushOutcome::Refused("not a TLS server name".into());
            };
            match self.tls.connect(name, stream).await {
                Ok(tls) => send(TokioIo::new(tls), request).await,
                Err(e) => PushOutcome::Failed(format!("TLS: {e}")),
            }
        } else {
            send(TokioIo::new(stream), request).await
        }
    }
}

async fn send<T>(io: T, request: hyper::Request<Full<Bytes>>) -> PushOutcome
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = match http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return PushOutcome::Failed(format!("HTTP: {e}")),
    };
    let driver = tokio::spawn(connection);
    let outcome = match sender.send_request(request).await {
        Ok(response) if response.status().is_success() => {
            PushOutcome::Delivered(response.status().as_u16())
        }
        Ok(response) if response.status().is_redirection() => PushOutcome::Failed(format!(
            "the client answered {} (redirects are not followed)",
            response.status().as_u16()
        )),
        Ok(response) => PushOutcome::Failed(format!(
            "the client answered {}",
            response.status().as_u16()
        )),
        Err(e) => PushOutcome::Failed(format!("HTTP: {e}")),
    };
    driver.abort();
    outcome
}
