//! TLS to the database: tokio-postgres's `MakeTlsConnect`/`TlsConnect`
//! over tokio-rustls, on the ring provider the rest of gnapd uses.
//!
//! Our own adapter rather than a crate: the traits are small, and it keeps
//! the dependency tree as it was (one rustls, one provider).
//!
//! The server's certificate is verified whenever TLS is used, whatever the
//! `sslmode` (spec-notes/store.md, "TLS to the database", has the table):
//! libpq's `prefer` and `require` take any certificate; here they verify
//! the chain and the host name, as `verify-full` does. `verify-ca` checks
//! the chain and not the name. Trusted roots: the system's, or only the
//! certificates in the file `sslrootcert` names.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};

use crate::store::StoreError;

/// libpq's `sslmode` values gnapd accepts (`allow` is refused: it tries
/// a plain connection first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS if the server offers it (verified), else plain: the default.
    Prefer,
    /// TLS or nothing; verified as `verify-full` (stricter than libpq).
    Require,
    /// TLS or nothing; the chain verified, not the host name.
    VerifyCa,
    /// TLS or nothing; the chain and the host name verified.
    VerifyFull,
}

impl SslMode {
    /// Reads a libpq `sslmode` value.
    pub fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(StoreError::Backend(format!(
                "sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
            ))),
        }
    }

    /// Its libpq name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What the driver knows: whether to ask for TLS and whether a server
    /// without it is refused. Verification is ours, in [`Connector`].
    pub(super) fn driver(self) -> postgres::config::SslMode {
        use postgres::config::SslMode as Driver;
        match self {
            Self::Disable => Driver::Disable,
            Self::Prefer => Driver::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Driver::Require,
        }
    }
}

/// The `sslmode` and `sslrootcert` of a conninfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// `None`: not given (`prefer`).
    pub mode: Option<SslMode>,
    /// A CA file; `None` (or libpq's `system`) for the system's roots.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    pub fn mode(&self) -> SslMode {
        self.mode.unwrap_or(SslMode::Prefer)
    }

    /// The connector these settings ask for. Reads the CA file (or the
    /// system's roots) now, so a missing file fails the open, not a call.
    pub fn connector(&self) -> Result<Connector, StoreError> {
        if self.mode() == SslMode::Disable {
            // Never used: the driver asks for no TLS.
            return Connector::new(RootCertStore::empty(), false);
        }
        let roots = match &self.root_cert {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                let certs = crate::http_client::load_ca_file(path)
                    .map_err(|e| StoreError::Backend(format!("sslrootcert: {e}")))?;
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        StoreError::Backend(format!(
                            "sslrootcert {}: an unusable CA certificate: {e}",
                            path.display()
                        ))
                    })?;
                }
                roots
            }
            None => crate::http_client::roots(&[])
                .map_err(|e| StoreError::Backend(format!("the system's trust roots: {e}")))?,
        };
        Connector::new(roots, self.mode() != SslMode::VerifyCa)
    }
}

/// Makes TLS sessions to the database, verified against its roots.
#[derive(Clone)]
pub(super) struct Connector {
    config: Arc<ClientConfig>,
}

impl Connector {
    fn new(roots: RootCertStore, check_name: bool) -> Result<Self, StoreError> {
        let provider = Arc::new(ring::default_provider());
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Backend(format!("TLS to PostgreSQL: {e}")))?;
        let config = match verifier {
            Ok(verifier) if check_name => {
                builder.with_webpki_verifier(verifier).with_no_client_auth()
            }
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly { verifier }))
                .with_no_client_auth(),
            // No root at all (disable's empty store): nothing will verify.
            Err(_) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Nothing(provider)))
                .with_no_client_auth(),
        };
        Ok(Self {
            config: Arc::new(config),
        })
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Handshake;
    type Error = io::Error;

    /// `domain` is empty for a Unix socket: the server then declines TLS
    /// and no handshake happens, so only a handshake needs a valid name.
    fn make_tls_connect(&mut self, domain: &str) -> Result<Handshake, io::Error> {
        Ok(Handshake {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_owned()).ok(),
        })
    }
}

/// One handshake, with the host name the conninfo gave.
pub(super) struct Handshake {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Stream<S>, io::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the host is not a name or address a certificate can be checked against",
                )
            })?;
            let session = tokio_rustls::TlsConnector::from(self.config)
                .connect(name, stream)
                .await?;
            Ok(Stream(session))
        })
    }
}

/// A TLS session to the database.
pub(super) struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    /// No `tls-server-end-point` binding: SCRAM runs without channel
    /// binding (the certificate check is what rules out a middleman).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// `verify-ca`: the chain to a trusted root, whatever name the
/// certificate is for. webpki checks the name last, after the chain, so
/// only a name mismatch is forgiven.
#[derive(Debug)]
struct ChainOnly {
    verifier: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self.verifier.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier.supported_verify_schemes()
    }
}

/// Trusts no certificate (a connector that is never meant to connect).
#[derive(Debug)]
struct Nothing(Arc<CryptoProvider>);

impl ServerCertVerifier for Nothing {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Err(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
