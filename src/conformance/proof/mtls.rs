//! `mtls` (RFC 9635 §7.3.2): the proof is the TLS handshake. The suite
//! makes a self-signed certificate of its own (§7.3.2 lets the AS trust it
//! by the key the request presents, not by a PKI), presents it through an
//! HTTP client of this signer's, and names it in the key object by value
//! (`cert`) or by thumbprint (`cert#S256`). There is nothing to add to the
//! request itself.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::{Value, json};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::ProofSigner;
use crate::client::http::Http;
use crate::http_client::ClientIdentity;
use crate::proto::b64;
use crate::proto::client_cert::ClientCert;
use crate::proto::httpsig::HttpRequest;

/// How the key object names the certificate (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertForm {
    /// `cert`: the certificate itself, base64 DER.
    Cert,
    /// `cert#S256`: its RFC 8705 thumbprint.
    Thumbprint,
}

/// A self-signed certificate and the HTTP client that presents it.
pub struct Mtls {
    cert: ClientCert,
    form: CertForm,
    http: Http,
}

impl std::fmt::Debug for Mtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mtls")
            .field("cert", &self.cert)
            .field("form", &self.form)
            .finish_non_exhaustive()
    }
}

impl Mtls {
    /// A fresh P-256 certificate named `cn`, named in the key object as
    /// `form` says; its client trusts `roots` beside the system's.
    pub fn generate(
        cn: &str,
        form: CertForm,
        roots: &[CertificateDer<'static>],
    ) -> Result<Self, String> {
        let (der, key) = self_signed(cn).map_err(|e| format!("cannot make a certificate: {e}"))?;
        let identity = ClientIdentity {
            chain: vec![CertificateDer::from(der.clone())],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        };
        let http = Http::with_tls(false, roots, Some(identity)).map_err(|e| e.to_string())?;
        Ok(Self {
            cert: ClientCert::from_der(der),
            form,
            http,
        })
    }
}

/// A self-signed P-256 client certificate for `cn`, valid from an hour
/// ago for a day: its DER and its key's PKCS#8 DER.
fn self_signed(cn: &str) -> Result<(Vec<u8>, Vec<u8>), ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    let name = name.build();
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (not_before, not_after) = (
        Asn1Time::from_unix(now - 3600)?,
        Asn1Time::from_unix(now + 86_400)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    builder.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build().to_der()?, key.private_key_to_pkcs8()?))
}

impl ProofSigner for Mtls {
    fn method(&self) -> &'static str {
        "mtls"
    }

    fn key_object(&self) -> Value {
        match self.form {
            CertForm::Cert => json!({"proof": "mtls", "cert": b64::encode_std(self.cert.der())}),
            CertForm::Thumbprint => json!({"proof": "mtls", "cert#S256": self.cert.thumbprint()}),
        }
    }

    /// The handshake is the proof: the request carries nothing more.
    fn sign(&self, _request: &mut HttpRequest, _now: i64) -> Result<(), String> {
        Ok(())
    }

    fn transport(&self) -> Option<&Http> {
        Some(&self.http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_object_names_the_presented_certificate_by_value_or_thumbprint() {
        let by_value = Mtls::generate("t", CertForm::Cert, &[]).unwrap();
        let text = by_value.key_object()["cert"].as_str().unwrap().to_owned();
        let read = ClientCert::from_key_text(&text).unwrap();
        assert_eq!(read.der(), by_value.cert.der());
        assert!(X509::from_der(read.der()).is_ok());
        assert!(by_value.transport().is_some());

        let by_thumbprint = Mtls::generate("t", CertForm::Thumbprint, &[]).unwrap();
        let x5t = by_thumbprint.key_object()["cert#S256"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(x5t, by_thumbprint.cert.thumbprint());
        assert_eq!(x5t.len(), 43);
    }
}
