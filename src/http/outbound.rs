//! Outbound requests to a URL a stranger chose (a `push` finish URI, a
//! client's metadata document URL), made safe against server-side request
//! forgery in one place:
//!
//! - the host is resolved here and every address checked against the
//!   internal ranges (`authz::interaction::is_internal_address`): one bad
//!   address refuses the whole name, unless the caller allows internal ones;
//! - the connection goes to an address that was checked, never through a
//!   second lookup an attacker's DNS could answer differently;
//! - each address gets [`CONNECT_TIMEOUT`]; TLS is HTTP/1.1 with the system
//!   roots plus the configured CAs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::CertificateDer;

use crate::authz::interaction::is_internal_address;

/// Longest wait for one address to accept a connection: the outbound
/// client's.
pub use crate::http_client::CONNECT_TIMEOUT;

/// Why no connection was made: refused by the rules (the URL is not
/// acceptable), or failed (the network did not cooperate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotConnected {
    /// The target is not one gnapd may reach.
    Refused(String),
    /// Resolution or every connection attempt failed.
    Failed(String),
}

/// The TLS client for such requests: HTTP/1.1, the system roots and `extra`.
pub(crate) fn tls_connector(
    extra: &[CertificateDer<'static>],
) -> Result<TlsConnector, crate::http_client::TlsError> {
    let mut tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(crate::http_client::roots(extra)?)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(tls)))
}

/// The host of `uri` without IPv6 brackets, as resolution and TLS name it.
pub(crate) fn bare_host(uri: &hyper::Uri) -> Option<String> {
    uri.host()
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
}

/// The request target and `Host` value of `uri`.
pub(crate) fn target_and_authority(uri: &hyper::Uri) -> (String, String) {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    (target, authority)
}

/// Connects to `host:port` after checking every address it resolves to.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    allow_internal: bool,
) -> Result<TcpStream, NotConnected> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| NotConnected::Failed(format!("cannot resolve {host}")))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(NotConnected::Failed(format!("{host} has no address")));
    }
    if !allow_internal && addrs.iter().any(|a| is_internal_address(a.ip())) {
        return Err(NotConnected::Refused(format!(
            "{host} resolves to a private, loopback, link-local or translated address"
        )));
    }
    for addr in &addrs {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            return Ok(stream);
        }
    }
    Err(NotConnected::Failed(format!("cannot connect to {host}")))
}
