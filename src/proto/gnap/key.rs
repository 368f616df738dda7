//! Keys on the wire (RFC 9635 §7.1) and their proofing method (§7.3).
//!
//! A key by value is an object with a REQUIRED `proof` and the key in "one and
//! only one supported format" (§7.1): `jwk`, `cert` or `cert#S256`. A key by
//! reference is a string (§7.1.1). gnapd has no key registry and speaks one
//! proofing method family over JWKs, so a presented client key narrows to
//! [`PresentedKey`]: a [`Proof`] and a JWK. Anything else
//! is refused while parsing, with `invalid_client` in a grant request ("a
//! client that was not recognized or allowed by the AS", §3.6); the rotation
//! request maps the same reasons to its own codes (see
//! [`super::continuation`]).
//!
//! The JWK stays the JSON object the client sent: turning it into a
//! verifying key (private members refused, RSA size, `alg` agreeing with the
//! key type) is [`crate::proto::jwk`]'s job, called with
//! [`HttpSigProof::algorithm`] as the algorithm the proof fixes.
//!
//! §7.1 also says "A JWK MUST contain the `alg` (Algorithm) and `kid` (Key
//! ID) parameters"; this module does not enforce that, because the key layer
//! derives the algorithm from the key type when `alg` is absent and binds
//! `keyid` only to a `kid` that exists (see `spec-notes/rfc9635.md`).
//!
//! Three proofing methods are read ([`Proof`]): `httpsig` in either form,
//! and `jwsd` (§7.3.3) and `jws` (§7.3.4), which §7.3 defines as strings
//! only. `mtls` is refused as before. A key is bound with its method
//! ([`ProofKind`]) and every later request must be proved with it.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap as _, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ErrorCode;
use super::limits::MAX_EXTRA_MEMBERS;
use super::reader::{self, Path, Reason, RequestError};
use crate::proto::client_cert::ClientCert;
use crate::proto::digest::DigestAlgorithm;
use crate::proto::httpsig::Algorithm;

/// The registered key formats (§7.1, §10.16); exactly one must be present.
const KEY_FORMATS: [&str; 3] = ["jwk", "cert", "cert#S256"];

/// The `httpsig` proofing method (§7.3.1), in either form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpSigProof {
    /// `"proof": "httpsig"`: "the signing algorithm MUST be derived from the
    /// key material … and the content digest algorithm MUST be `sha-256`".
    Derived,
    /// `"proof": {"method": "httpsig", "alg": …, "content-digest-alg": …}`,
    /// both parameters REQUIRED in this form.
    Explicit {
        /// `alg`: from the HTTP Signature Algorithms registry (RFC 9421 §6.2).
        alg: Algorithm,
        /// `content-digest-alg`: the algorithm of the `Content-Digest` field.
        content_digest_alg: DigestAlgorithm,
    },
}

impl HttpSigProof {
    /// The signature algorithm the proof fixes, if any; `None` means "derive
    /// it from the key".
    pub fn algorithm(self) -> Option<Algorithm> {
        match self {
            Self::Derived => None,
            Self::Explicit { alg, .. } => Some(alg),
        }
    }

    /// The `Content-Digest` algorithm signed requests with content must use.
    pub fn content_digest_alg(self) -> DigestAlgorithm {
        match self {
            Self::Derived => DigestAlgorithm::Sha256,
            Self::Explicit {
                content_digest_alg, ..
            } => content_digest_alg,
        }
    }
}

impl Serialize for HttpSigProof {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Derived => serializer.serialize_str("httpsig"),
            Self::Explicit {
                alg,
                content_digest_alg,
            } => {
                let mut map = serializer.serialize_map(Some(3))?;
                map.serialize_entry("method", "httpsig")?;
                map.serialize_entry("alg", alg.name())?;
                map.serialize_entry("content-digest-alg", content_digest_alg.key())?;
                map.end()
            }
        }
    }
}

/// The `proof` of a presented key (§7.3): the methods gnapd verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// `httpsig` (§7.3.1), string or object form.
    HttpSig(HttpSigProof),
    /// `"jwsd"` (§7.3.3): a detached JWS in the `Detached-JWS` field.
    Jwsd,
    /// `"jws"` (§7.3.4): the body is a JWS, or a detached one without content.
    Jws,
    /// `"mtls"` (§7.3.2): the TLS client certificate of the connection.
    Mtls,
}

impl Proof {
    /// The method, without its parameters: what a key binding records.
    pub fn kind(self) -> ProofKind {
        match self {
            Self::HttpSig(_) => ProofKind::HttpSig,
            Self::Jwsd => ProofKind::Jwsd,
            Self::Jws => ProofKind::Jws,
            Self::Mtls => ProofKind::Mtls,
        }
    }

    /// The signature algorithm the proof fixes, if any (only the `httpsig`
    /// object form does; a JWS names its `alg` per request).
    pub fn algorithm(self) -> Option<Algorithm> {
        match self {
            Self::HttpSig(p) => p.algorithm(),
            Self::Jwsd | Self::Jws | Self::Mtls => None,
        }
    }
}

impl From<HttpSigProof> for Proof {
    fn from(proof: HttpSigProof) -> Self {
        Self::HttpSig(proof)
    }
}

impl Serialize for Proof {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::HttpSig(p) => p.serialize(serializer),
            Self::Jwsd => serializer.serialize_str("jwsd"),
            Self::Jws => serializer.serialize_str("jws"),
            Self::Mtls => serializer.serialize_str("mtls"),
        }
    }
}

/// The proofing method a key is bound with, as a stored binding records
/// it. Absent in records written before JWS proofs existed: `httpsig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProofKind {
    /// `httpsig`.
    #[default]
    #[serde(rename = "httpsig")]
    HttpSig,
    /// `jwsd`.
    #[serde(rename = "jwsd")]
    Jwsd,
    /// `jws`.
    #[serde(rename = "jws")]
    Jws,
    /// `mtls`: the binding's thumbprint is its certificate's `x5t#S256`.
    #[serde(rename = "mtls")]
    Mtls,
}

impl ProofKind {
    /// True for `httpsig`, the default a record leaves out.
    pub fn is_httpsig(&self) -> bool {
        *self == Self::HttpSig
    }

    /// The method's registered name (§10.16).
    pub fn name(self) -> &'static str {
        match self {
            Self::HttpSig => "httpsig",
            Self::Jwsd => "jwsd",
            Self::Jws => "jws",
            Self::Mtls => "mtls",
        }
    }
}

/// A public key presented by value, with its proofing method: a JWK, or
/// for `mtls` a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresentedKey {
    /// How possession of the key is proved.
    pub proof: Proof,
    /// The JWK as sent (RFC 7517); parse it with
    /// [`crate::proto::jwk::VerifyingKey::from_public_jwk`]. Empty for an
    /// `mtls` key, which is its certificate.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub jwk: Map<String, Value>,
    /// An `mtls` key's certificate, by value or by thumbprint.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertKey>,
}

/// The certificate an `mtls` key is (§7.1 `cert`, `cert#S256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CertKey {
    /// `cert`: the certificate (PEM, armour and whitespace optional).
    #[serde(rename = "cert", serialize_with = "pem_body")]
    Cert(ClientCert),
    /// `cert#S256`: its RFC 8705 thumbprint, base64url SHA-256.
    #[serde(rename = "cert#S256")]
    Thumbprint(String),
}

impl CertKey {
    /// The `x5t#S256` the TLS client certificate must have.
    pub fn thumbprint(&self) -> String {
        match self {
            Self::Cert(cert) => cert.thumbprint(),
            Self::Thumbprint(x5t) => x5t.clone(),
        }
    }
}

fn pem_body<S: Serializer>(cert: &ClientCert, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::proto::b64::encode_std(cert.der()))
}

impl PresentedKey {
    /// The JWK as a JSON value, the form the key layer parses.
    pub fn jwk_value(&self) -> Value {
        Value::Object(self.jwk.clone())
    }
}

/// A key where RFC 9635 allows either form: the `key` of a rotation request
/// (§6.1.1) or of an access token response (§3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// By value.
    Value(PresentedKey),
    /// By reference: an opaque string naming a key both sides know (§7.1.1).
    Reference(String),
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(key) => key.serialize(serializer),
            Self::Reference(name) => serializer.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_key(&value, &Path::root().key("key")).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for PresentedKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_presented_key(&value, &Path::root().key("key")).map_err(de::Error::custom)
    }
}

/// Reads a key that may be a value or a reference.
pub(crate) fn parse_key(value: &Value, at: &Path<'_>) -> Result<Key, RequestError> {
    match value {
        Value::String(_) => Ok(Key::Reference(
            reader::nonempty_string(value, at)?.to_owned(),
        )),
        _ => parse_presented_key(value, at).map(Key::Value),
    }
}

/// Reads a key that must be presented by value as an `httpsig` JWK.
///
/// Codes: a member of the wrong JSON type, or no/several key formats, is
/// `invalid_request`; a key gnapd cannot use (a reference, a `cert`, a
/// proofing method other than `httpsig`, an algorithm it does not accept) is
/// `invalid_client`.
pub(crate) fn parse_presented_key(
    value: &Value,
    at: &Path<'_>,
) -> Result<PresentedKey, RequestError> {
    if value.is_string() {
        return Err(RequestError::new(
            ErrorCode::InvalidClient,
            at,
            Reason::KeyReference,
        ));
    }
    let map = reader::object(value, at)?;
    let proof = parse_proof(reader::required(map, "proof", at)?, &at.key("proof"))?;

    let present: Vec<&str> = KEY_FORMATS
        .into_iter()
        .filter(|f| map.contains_key(*f))
        .collect();
    if present.len() != 1 {
        return Err(RequestError::invalid(at, Reason::NotOneKeyFormat));
    }
    if proof == Proof::Mtls {
        return parse_cert_key(map, present[0], at).map(|cert| PresentedKey {
            proof,
            jwk: Map::new(),
            cert: Some(cert),
        });
    }
    let Some(jwk) = map.get("jwk") else {
        return Err(RequestError::new(
            ErrorCode::InvalidClient,
            &at.key(present[0]),
            Reason::UnsupportedKeyFormat,
        ));
    };
    let at_jwk = at.key("jwk");
    let jwk = reader::object(jwk, &at_jwk)?;
    if jwk.len() > MAX_EXTRA_MEMBERS {
        return Err(RequestError::invalid(
            &at_jwk,
            Reason::TooMany {
                max: MAX_EXTRA_MEMBERS,
            },
        ));
    }
    Ok(PresentedKey {
        proof,
        jwk: jwk.clone(),
        cert: None,
    })
}

/// An `mtls` key: its certificate or the certificate's thumbprint (gnapd
/// compares the TLS client certificate with it; a `jwk` would need the
/// certificate's key compared instead, which it does not do).
fn parse_cert_key(
    map: &Map<String, Value>,
    format: &str,
    at: &Path<'_>,
) -> Result<CertKey, RequestError> {
    let at_format = at.key(format);
    let unusable = || {
        RequestError::new(
            ErrorCode::InvalidClient,
            &at_format,
            Reason::UnsupportedKeyFormat,
        )
    };
    if format == "jwk" {
        return Err(unusable());
    }
    let text = map
        .get(format)
        .map(|v| reader::string(v, &at_format))
        .transpose()?;
    match (format, text) {
        ("cert", Some(text)) => ClientCert::from_key_text(text)
            .map(CertKey::Cert)
            .map_err(|_| unusable()),
        // The shape of a base64url SHA-256, not its decoding: the RFC's own
        // example (Appendix B) ends in non-canonical bits, and a value that
        // is not some certificate's thumbprint never matches one anyway.
        ("cert#S256", Some(x5t))
            if x5t.len() == 43
                && x5t
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(CertKey::Thumbprint(x5t.to_owned()))
        }
        _ => Err(unusable()),
    }
}

/// Reads `proof` (§7.3): `"httpsig"`, `"jwsd"`, `"jws"` or
/// `{"method": "httpsig", "alg": …, "content-digest-alg": …}`.
fn parse_proof(value: &Value, at: &Path<'_>) -> Result<Proof, RequestError> {
    let unsupported =
        |at: &Path<'_>, reason| RequestError::new(ErrorCode::InvalidClient, at, reason);
    if let Value::String(method) = value {
        return match method.as_str() {
            "httpsig" => Ok(Proof::HttpSig(HttpSigProof::Derived)),
            "jwsd" => Ok(Proof::Jwsd),
            "jws" => Ok(Proof::Jws),
            "mtls" => Ok(Proof::Mtls),
            _ => Err(unsupported(at, Reason::UnsupportedProof)),
        };
    }
    let map = reader::object(value, at).map_err(|_| {
        RequestError::invalid(
            at,
            Reason::WrongType {
                expected: "string or object",
            },
        )
    })?;
    let at_method = at.key("method");
    if reader::string(reader::required(map, "method", at)?, &at_method)? != "httpsig" {
        return Err(unsupported(&at_method, Reason::UnsupportedProof));
    }
    // The object form defines exactly these parameters; one gnapd does not
    // know could change what the client means the proof to cover.
    if let Some(other) = map
        .keys()
        .find(|k| !matches!(k.as_str(), "method" | "alg" | "content-digest-alg"))
    {
        return Err(unsupported(&at.key(other), Reason::UnsupportedProof));
    }
    let at_alg = at.key("alg");
    let alg = reader::string(reader::required(map, "alg", at)?, &at_alg)?;
    // A key presented by value is public; HMAC would need the shared secret
    // in the request, which §2.3 forbids ("MUST NOT send a symmetric key by
    // value").
    let alg = Algorithm::from_name(alg)
        .filter(|a| !a.is_symmetric())
        .ok_or_else(|| unsupported(&at_alg, Reason::UnsupportedAlgorithm))?;
    let at_digest = at.key("content-digest-alg");
    let digest = reader::string(reader::required(map, "content-digest-alg", at)?, &at_digest)?;
    let content_digest_alg = DigestAlgorithm::from_key(digest)
        .ok_or_else(|| unsupported(&at_digest, Reason::UnsupportedAlgorithm))?;
    Ok(Proof::HttpSig(HttpSigProof::Explicit {
        alg,
        content_digest_alg,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn presented(value: Value) -> Result<PresentedKey, RequestError> {
        parse_presented_key(&value, &Path::root().key("key"))
    }

    #[test]
    fn section_7_1_jwk_example_parses_with_the_derived_proof() {
        let key = presented(json!({
            "proof": "httpsig",
            "jwk": {
                "kty": "RSA",
                "e": "AQAB",
                "kid": "xyz-1",
                "alg": "RS256",
                "n": "kOB5rR4Jv0GMeLaY6_It_r3ORwdf8ci_JtffXyaSx8xY..."
            }
        }))
        .unwrap();
        assert_eq!(key.proof, Proof::HttpSig(HttpSigProof::Derived));
        assert_eq!(key.proof.algorithm(), None);
        assert_eq!(key.jwk["kid"], "xyz-1");
    }

    #[test]
    fn section_7_3_1_object_form_fixes_algorithm_and_digest() {
        let key = presented(json!({
            "proof": {
                "method": "httpsig",
                "alg": "ecdsa-p384-sha384",
                "content-digest-alg": "sha-512"
            },
            "jwk": {"kty": "EC", "crv": "P-384", "x": "x", "y": "y"}
        }))
        .unwrap();
        assert_eq!(
            key.proof,
            Proof::HttpSig(HttpSigProof::Explicit {
                alg: Algorithm::EcdsaP384Sha384,
                content_digest_alg: DigestAlgorithm::Sha512,
            })
        );
        let wire = serde_json::to_value(&key).unwrap();
        assert_eq!(
            wire["proof"],
            json!({"method": "httpsig", "alg": "ecdsa-p384-sha384", "content-digest-alg": "sha-512"})
        );
    }

    #[test]
    fn jwsd_and_jws_are_read_in_their_string_form_and_round_trip() {
        for (name, proof) in [("jwsd", Proof::Jwsd), ("jws", Proof::Jws)] {
            let wire = json!({"proof": name, "jwk": {"kty": "OKP"}});
            let key = presented(wire.clone()).unwrap();
            assert_eq!(key.proof, proof);
            assert_eq!(key.proof.kind().name(), name);
            assert_eq!(serde_json::to_value(&key).unwrap(), wire);
        }
    }

    #[test]
    fn other_proofing_methods_are_invalid_client() {
        for proof in [
            json!("MTLS"),
            json!({"method": "mtls"}),
            json!("JWSD"),
            json!({"method": "jwsd"}),
            json!({"method": "jws"}),
        ] {
            let err = presented(json!({"proof": proof, "jwk": {"kty": "OKP"}})).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{proof}");
            assert_eq!(err.reason(), Reason::UnsupportedProof);
        }
    }

    #[test]
    fn an_mtls_key_is_a_certificate_or_its_thumbprint_never_a_jwk() {
        let der = b"\x30\x03\x02\x01\x01";
        let pem = crate::proto::b64::encode_std(der);
        let by_value = presented(json!({"proof": "mtls", "cert": pem})).unwrap();
        let x5t = ClientCert::from_der(der.to_vec()).thumbprint();
        assert_eq!(by_value.cert.as_ref().unwrap().thumbprint(), x5t);
        assert!(by_value.jwk.is_empty());
        // It goes back on the wire as it came.
        assert_eq!(
            serde_json::to_value(&by_value).unwrap(),
            json!({"proof": "mtls", "cert": pem})
        );
        let by_thumbprint = presented(json!({"proof": "mtls", "cert#S256": x5t})).unwrap();
        assert_eq!(by_thumbprint.cert.unwrap().thumbprint(), x5t);
        for (key, field) in [
            (json!({"proof": "mtls", "jwk": {"kty": "OKP"}}), "key.jwk"),
            (json!({"proof": "mtls", "cert": "not base64!"}), "key.cert"),
            (
                json!({"proof": "mtls", "cert#S256": "short"}),
                "key.cert#S256",
            ),
            (json!({"proof": "httpsig", "cert": pem}), "key.cert"),
        ] {
            let err = presented(key.clone()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient, "{key}");
            assert_eq!(err.field(), field, "{key}");
        }
    }

    #[test]
    fn the_object_form_needs_both_parameters_and_no_others() {
        let missing = presented(json!({
            "proof": {"method": "httpsig", "alg": "ed25519"},
            "jwk": {}
        }))
        .unwrap_err();
        assert_eq!(missing.field(), "key.proof.content-digest-alg");
        assert_eq!(missing.code(), ErrorCode::InvalidRequest);

        let extra = presented(json!({
            "proof": {"method": "httpsig", "alg": "ed25519", "content-digest-alg": "sha-256", "x": 1},
            "jwk": {}
        }))
        .unwrap_err();
        assert_eq!(extra.field(), "key.proof.x");
        assert_eq!(extra.code(), ErrorCode::InvalidClient);
    }

    #[test]
    fn hmac_and_unknown_algorithms_are_invalid_client() {
        for (alg, digest, field) in [
            ("hmac-sha256", "sha-256", "key.proof.alg"),
            ("rsa-pss-sha256", "sha-256", "key.proof.alg"),
            ("ed25519", "md5", "key.proof.content-digest-alg"),
        ] {
            let err = presented(json!({
                "proof": {"method": "httpsig", "alg": alg, "content-digest-alg": digest},
                "jwk": {}
            }))
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidClient);
            assert_eq!(err.reason(), Reason::UnsupportedAlgorithm);
            assert_eq!(err.field(), field);
        }
    }

    #[test]
    fn a_key_must_be_in_exactly_one_format_and_gnapd_reads_only_jwk() {
        let none = presented(json!({"proof": "httpsig"})).unwrap_err();
        assert_eq!(none.reason(), Reason::NotOneKeyFormat);
        assert_eq!(none.code(), ErrorCode::InvalidRequest);

        let two = presented(json!({"proof": "httpsig", "jwk": {}, "cert": "MIIB"})).unwrap_err();
        assert_eq!(two.reason(), Reason::NotOneKeyFormat);

        let cert = presented(
            json!({"proof": "httpsig", "cert": "MIIEHDCCAwSgAwIBAgIBATANBgkqhkiG9w0BAQsFA..."}),
        )
        .unwrap_err();
        assert_eq!(cert.reason(), Reason::UnsupportedKeyFormat);
        assert_eq!(cert.code(), ErrorCode::InvalidClient);
        assert_eq!(cert.field(), "key.cert");
    }

    #[test]
    fn a_key_reference_is_invalid_client_where_a_value_is_needed() {
        let err = presented(json!("S-P4XJQ_RYJCRTSU1.63N3E")).unwrap_err();
        assert_eq!(err.reason(), Reason::KeyReference);
        assert_eq!(err.code(), ErrorCode::InvalidClient);
        // Where either form is allowed, the §7.1.1 example is a reference.
        let key: Key = serde_json::from_value(json!("S-P4XJQ_RYJCRTSU1.63N3E")).unwrap();
        assert_eq!(key, Key::Reference("S-P4XJQ_RYJCRTSU1.63N3E".into()));
    }

    #[test]
    fn proof_and_jwk_of_the_wrong_type_are_invalid_request() {
        let err = presented(json!({"proof": 1, "jwk": {}})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
        assert_eq!(err.field(), "key.proof");
        let err = presented(json!({"proof": "httpsig", "jwk": "abc"})).unwrap_err();
        assert_eq!(err.field(), "key.jwk");
        let err = presented(json!({"jwk": {}})).unwrap_err();
        assert_eq!((err.field(), err.reason()), ("key.proof", Reason::Missing));
    }

    #[test]
    fn a_presented_key_round_trips() {
        let wire = json!({"proof": "httpsig", "jwk": {"kty": "OKP", "crv": "Ed25519", "x": "abc"}});
        let key: PresentedKey = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(serde_json::to_value(&key).unwrap(), wire);
    }
}
