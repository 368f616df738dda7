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
//! - [`outbound::CONNECT_TIMEOUT`] per address, [`TOTAL_TIMEOUT`] for everything;
//! - redirects are not followed (a 3xx is a failed push), and the answer's
//!   body is not read.
//!
//! A failed push is logged by the caller and does not undo the decision.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::http::outbound::{self, NotConnected};

pub use crate::http::outbound::CONNECT_TIMEOUT;
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
        Ok(Self {
            allow_internal,
            tls: outbound::tls_connector(extra)?,
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
        let Some(host) = outbound::bare_host(&parsed) else {
            return PushOutcome::Refused("no host".into());
        };
        let port = parsed.port_u16().unwrap_or(if https { 443 } else { 80 });
        let stream = match outbound::connect(&host, port, self.allow_internal).await {
            Ok(stream) => stream,
            Err(NotConnected::Refused(why)) => return PushOutcome::Refused(why),
            Err(NotConnected::Failed(why)) => return PushOutcome::Failed(why),
        };
        let (path, authority) = outbound::target_and_authority(&parsed);
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
