//! A TLS client certificate, as the `mtls` proofing method (RFC 9635
//! §7.3.2) binds a client instance to it.
//!
//! Trust in the certificate is not a PKI's: the verifier compares the
//! certificate the client proved in the TLS handshake with the one its key
//! names (`cert`, or its RFC 8705 §3.1 thumbprint `cert#S256`). So a
//! certificate is known by that thumbprint, the SHA-256 of its DER bytes,
//! base64url: the same string whichever form the client presented.

use std::sync::Arc;

use super::{b64, hash};

/// Largest certificate read from a key object (a few KB in practice; the
/// bound keeps a hostile request from making the AS decode megabytes).
pub const MAX_CERT_TEXT: usize = 16 * 1024;

/// A certificate's DER bytes, shared cheaply between the connection and
/// its requests.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert(Arc<[u8]>);

impl std::fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCert(x5t#S256={})", self.thumbprint())
    }
}

/// Why a `cert` value is not a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Longer than [`MAX_CERT_TEXT`].
    #[error("the certificate is longer than {MAX_CERT_TEXT} characters")]
    TooLong,
    /// Not PEM or base64 of anything.
    #[error("the certificate is not PEM or base64")]
    NotBase64,
    /// A PEM label other than `CERTIFICATE`.
    #[error("the PEM label is not CERTIFICATE")]
    Label,
}

impl ClientCert {
    /// The certificate with DER bytes `der`.
    pub fn from_der(der: impl Into<Arc<[u8]>>) -> Self {
        Self(der.into())
    }

    /// Reads the `cert` key format (§7.1): "PEM serialized value of the
    /// certificate …, with optional internal whitespace per RFC 7468. The PEM
    /// header and footer are optionally removed."
    pub fn from_key_text(text: &str) -> Result<Self, CertError> {
        if text.len() > MAX_CERT_TEXT {
            return Err(CertError::TooLong);
        }
        let mut body = text.trim();
        if let Some(rest) = body.strip_prefix("-----BEGIN ") {
            let (label, rest) = rest.split_once("-----").ok_or(CertError::Label)?;
            if label != "CERTIFICATE" {
                return Err(CertError::Label);
            }
            body = rest
                .trim_end()
                .strip_suffix("-----END CERTIFICATE-----")
                .ok_or(CertError::Label)?;
        }
        let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let der = b64::decode_std(&compact).ok_or(CertError::NotBase64)?;
        if der.is_empty() {
            return Err(CertError::NotBase64);
        }
        Ok(Self::from_der(der))
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.0
    }

    /// RFC 8705 §3.1 `x5t#S256`: base64url SHA-256 of the DER bytes.
    pub fn thumbprint(&self) -> String {
        b64::encode_url(&hash::sha256(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DER: &[u8] = b"\x30\x03\x02\x01\x01";

    #[test]
    fn pem_with_or_without_its_armour_and_whitespace_reads_as_the_same_certificate() {
        let body = b64::encode_std(DER);
        let armoured = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
        let split = format!("{}\n  {}", &body[..3], &body[3..]);
        for text in [armoured.as_str(), body.as_str(), split.as_str()] {
            assert_eq!(
                ClientCert::from_key_text(text).unwrap().der(),
                DER,
                "{text}"
            );
        }
    }

    #[test]
    fn other_pem_labels_nonsense_and_oversized_text_are_refused() {
        let body = b64::encode_std(DER);
        let key = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----");
        assert_eq!(ClientCert::from_key_text(&key), Err(CertError::Label));
        assert_eq!(
            ClientCert::from_key_text("not base64!"),
            Err(CertError::NotBase64)
        );
        assert_eq!(ClientCert::from_key_text(""), Err(CertError::NotBase64));
        let long = "A".repeat(MAX_CERT_TEXT + 1);
        assert_eq!(ClientCert::from_key_text(&long), Err(CertError::TooLong));
    }

    #[test]
    fn the_thumbprint_is_base64url_sha256_of_the_der_bytes() {
        // SHA-256 of the 5 bytes above, computed apart (python hashlib).
        let cert = ClientCert::from_der(DER.to_vec());
        assert_eq!(
            cert.thumbprint(),
            "G2X2ilIshYcV9d2VHNBALcFmkXeIFL8HWYIreiV0IdA"
        );
    }
}
