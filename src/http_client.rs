//! The one HTTP client the gateway forwards with: pooled connections to
//! every upstream, plain HTTP or HTTPS.
//!
//! HTTPS upstreams are verified against the system's trust roots (an
//! enterprise's own CA is normally installed there) plus any CA
//! certificates the config names (`upstream_ca_files`, `--upstream-ca`):
//! the test suite's self-signed upstream, or a private CA kept out of the
//! system store. rustls on ring, as the server side. HTTP/2 is offered by
//! ALPN on TLS; plain HTTP stays HTTP/1.1, which every Streamable HTTP
//! server speaks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read, said as `what` ("CA certificates from
    /// x.pem", "the certificate chain x.pem").
    #[error("cannot read {what}: {source}")]
    Read {
        /// What was being read, and from where.
        what: String,
        /// Why.
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    /// A PEM file without a certificate.
    #[error("{} holds no certificate", .0.display())]
    NoCertificate(PathBuf),
    /// A CA certificate rustls refuses.
    #[error("an upstream CA certificate is not usable: {0}")]
    UnusableCa(tokio_rustls::rustls::Error),
    /// A certificate and key that do not go together.
    #[error("the certificate and key do not form a usable pair: {0}")]
    Pair(tokio_rustls::rustls::Error),
    /// rustls refused its own defaults.
    #[error("{0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
}

/// The client type.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long an upstream gets to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the CA certificates in the PEM file at `path`.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read {
            what: format!("CA certificates from {}", path.display()),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// The system's trust roots plus `extra`. A system root that does not
/// parse is skipped (and counted in the log), never fatal.
pub(crate) fn roots(extra: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = system_roots().clone();
    for cert in extra {
        store.add(cert.clone()).map_err(TlsError::UnusableCa)?;
    }
    Ok(store)
}

/// The system's trust roots, read once per process: the gateway, the
/// outbound fetcher and the upstream OAuth client each need them, and
/// reading them is ~4 ms (every file of `SSL_CERT_DIR` too, when it is set),
/// a tenth of start-up.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: std::sync::OnceLock<RootCertStore> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!(%error, "a system trust root could not be loaded");
        }
        let (added, ignored) = store.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system trust roots");
        store
    })
}

/// A certificate chain and its private key, presented in the handshake
/// when a server asks for a client certificate (the `mtls` proofing
/// method of RFC 9635 §7.3.2).
pub struct ClientIdentity {
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of every log line.
        f.debug_struct("ClientIdentity")
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The pooled client, trusting the system roots and `extra`.
pub fn build(extra: &[CertificateDer<'static>]) -> Result<UpstreamClient, TlsError> {
    build_presenting(extra, None)
}

/// [`build`], presenting `identity` to a server that asks for a client
/// certificate.
pub fn build_presenting(
    extra: &[CertificateDer<'static>],
    identity: Option<ClientIdentity>,
) -> Result<UpstreamClient, TlsError> {
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(extra)?);
    let tls = match identity {
        None => builder.with_no_client_auth(),
        Some(ClientIdentity { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(TlsError::Pair)?,
    };
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector))
}
