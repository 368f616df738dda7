//! The TLS listener's client certificates, for the `mtls` proofing method
//! (RFC 9635 §7.3.2).
//!
//! The listener asks every client for a certificate and accepts any, or
//! none: GNAP does not trust the certificate through a PKI but through the
//! key the client presents (§7.3.2: "the verifier will not do a full
//! certificate chain validation … the means of trust … could be … trust-on-
//! first-use"). What the handshake still proves is possession: rustls checks
//! the client's CertificateVerify signature with the certificate's key, so
//! a request arriving with a certificate came from its key's holder. Whether
//! that certificate is the one the request's key names is the AS's and the
//! gateway's check.
//!
//! A client with no certificate is served as before; so are browsers,
//! which an empty list of acceptable authorities does not make prompt for
//! one they do not have.

use std::sync::Arc;

use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Accepts any client certificate, and no certificate; checks the
/// handshake signature made with it.
#[derive(Debug)]
pub(crate) struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    /// With the signature algorithms of `provider`.
    pub(crate) fn new(provider: &Arc<CryptoProvider>) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // Trust comes from the key binding, not a chain (module comment).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
