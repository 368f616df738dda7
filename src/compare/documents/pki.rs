//! A throwaway certificate authority and a leaf for 127.0.0.1, made in
//! process for the metadata-document host: gnapd trusts the CA through
//! `upstream_ca_files`, so its document fetches are real https on
//! loopback. P-256 keys, valid from an hour ago for two days.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

/// The CA certificate (PEM) and the leaf's certificate and key (DER).
#[derive(Debug)]
pub struct Pki {
    /// The CA certificate, PEM: what gnapd is told to trust.
    pub ca_pem: Vec<u8>,
    /// The leaf certificate, DER.
    pub leaf_der: Vec<u8>,
    /// The leaf's private key, PKCS#8 DER.
    pub leaf_key_pkcs8: Vec<u8>,
}

/// Makes a CA and a leaf for `127.0.0.1` signed by it.
pub fn make() -> Result<Pki, ErrorStack> {
    let ca_key = p256()?;
    let ca = certificate("gnapd compare CA", &ca_key, None, &ca_key)?;
    let leaf_key = p256()?;
    let leaf = certificate("127.0.0.1", &leaf_key, Some(&ca), &ca_key)?;
    Ok(Pki {
        ca_pem: ca.to_pem()?,
        leaf_der: leaf.to_der()?,
        leaf_key_pkcs8: leaf_key.private_key_to_pkcs8()?,
    })
}

fn p256() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// A certificate for `key` named `cn`, signed by `issuer_key`: a CA when
/// `issuer` is `None` (self-signed), else a server leaf for 127.0.0.1.
fn certificate(
    cn: &str,
    key: &PKey<Private>,
    issuer: Option<&X509>,
    issuer_key: &PKey<Private>,
) -> Result<X509, ErrorStack> {
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
    builder.set_issuer_name(issuer.map_or(&*name, |ca| ca.subject_name()))?;
    builder.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (not_before, not_after) = (
        Asn1Time::from_unix(now - 3600)?,
        Asn1Time::from_unix(now + 2 * 86_400)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    match issuer {
        None => {
            builder.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            builder.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        }
        Some(ca) => {
            builder.append_extension(BasicConstraints::new().critical().build()?)?;
            builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .build(&builder.x509v3_context(Some(ca), None))?;
            builder.append_extension(san)?;
        }
    }
    builder.sign(issuer_key, MessageDigest::sha256())?;
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leaf_is_signed_by_the_ca_for_127_0_0_1() {
        let pki = make().unwrap();
        let ca = X509::from_pem(&pki.ca_pem).unwrap();
        let leaf = X509::from_der(&pki.leaf_der).unwrap();
        assert!(leaf.verify(&ca.public_key().unwrap()).unwrap());
        let sans = leaf.subject_alt_names().unwrap();
        assert_eq!(
            sans.iter().next().unwrap().ipaddress(),
            Some(&[127, 0, 0, 1][..])
        );
    }
}
