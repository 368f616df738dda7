//! JSON Web Keys (RFC 7517) as client identities: parsing, the algorithm a key
//! implies, RFC 7638 thumbprints, and the sign/verify primitives behind them.
//!
//! A GNAP client instance *is* its key, so parsing is strict: a presented key
//! carrying private members is refused (it would mean the client leaked its
//! secret), RSA keys must have a 2048–4096-bit modulus and the exponent
//! 65537, and the algorithm comes from the key (its `alg` member, else its
//! type and curve), never from a message.
//!
//! Ed25519, the agents' default, runs on `ed25519-dalek` (`verify_strict`, the
//! hot path); ECDSA, RSA and HMAC run on josekit's JWS primitives, which are
//! the same operations RFC 9421 §3.3 names.

use std::fmt;

use josekit::jwk::Jwk;
use josekit::jws::{ES256, ES384, HS256, JwsSigner, JwsVerifier, PS512, RS256};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use thiserror::Error;

use super::alg::Algorithm;
use super::b64;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted, in bits. Keys are free to mint and every
/// request makes the server check a signature under the key it presents;
/// the cost of an RSA check grows with the square of the modulus size
/// (measured here: 4096 bits ~0.09 ms, 16384 bits ~1.0 ms, an Ed25519 check
/// ~0.045 ms; see spec-notes/rfc9421.md), so a larger key would buy an
/// attacker CPU.
pub const MAX_RSA_BITS: usize = 4096;

/// The one RSA public exponent accepted, as the minimal big-endian bytes
/// of 65537. Every common generator uses it (OpenSSL, Web Crypto, Go, Java,
/// Python `cryptography`); small exponents such as 3 are what classic
/// PKCS #1 v1.5 forgeries against lenient parsers need, and large ones cost
/// the verifier (one multiplication per exponent bit).
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Largest JWK document accepted, in bytes (an RSA-8192 public key is ~1.5 KiB).
pub const MAX_JWK_LEN: usize = 8 * 1024;

/// Members that only a private (or symmetric) key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a JWK was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// Not a JSON object, or too large.
    #[error("the key is not a JSON object")]
    NotAnObject,
    /// A member the key type requires is absent or not a string.
    #[error("the key lacks the member `{0}`")]
    MissingMember(&'static str),
    /// A presented public key carries a private member.
    #[error("a presented key must not carry the private member `{0}`")]
    PrivateMember(&'static str),
    /// `kty` (with `crv`) is not one gnapd supports.
    #[error("unsupported key type or curve `{0}`")]
    UnsupportedKeyType(String),
    /// The JWK's `alg` member names an algorithm RFC 9421 has no entry for.
    #[error("unsupported key algorithm `{0}`")]
    UnsupportedAlgorithm(String),
    /// The algorithm asked for does not fit the key's type or `alg` member.
    #[error("algorithm {wanted} does not fit this key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        wanted: Algorithm,
    },
    /// The RSA modulus is below [`MIN_RSA_BITS`].
    #[error("RSA key of {0} bits is below the 2048-bit minimum")]
    RsaTooSmall(usize),
    /// The RSA modulus is above [`MAX_RSA_BITS`].
    #[error("RSA key of {0} bits is above the 4096-bit maximum")]
    RsaTooLarge(usize),
    /// The RSA public exponent is not 65537.
    #[error("RSA public exponent must be 65537 (AQAB)")]
    RsaExponent,
    /// A big-endian integer member has leading zero octets (RFC 7518 §2,
    /// Base64urlUInt: "MUST utilize the minimum number of octets"). The same
    /// key would otherwise have several thumbprints, i.e. identities.
    #[error("the member `{0}` is not minimally encoded (leading zero octets)")]
    NotMinimal(&'static str),
    /// The key material does not decode to a valid key.
    #[error("the key material is invalid")]
    InvalidKey,
    /// A symmetric key offered where only an asymmetric one is acceptable.
    #[error("a symmetric key cannot identify a client")]
    Symmetric,
    /// Key generation or signing failed inside the crypto library.
    #[error("the crypto library failed")]
    Crypto,
}

/// An RFC 7638 JWK thumbprint (SHA-256, base64url): a client's identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thumbprint(String);

impl Thumbprint {
    /// The base64url text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Thumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Thumbprint({})", self.0)
    }
}

/// The key types gnapd understands, with the members RFC 7638 §3.2 hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Okp,
    Ec,
    Rsa,
    Oct,
}

impl KeyKind {
    fn of(map: &Map<String, Value>) -> Result<Self, KeyError> {
        match str_member(map, "kty")? {
            "OKP" => Ok(Self::Okp),
            "EC" => Ok(Self::Ec),
            "RSA" => Ok(Self::Rsa),
            "oct" => Ok(Self::Oct),
            other => Err(KeyError::UnsupportedKeyType(other.to_owned())),
        }
    }

    /// The required members in lexicographic order (RFC 7638 §3.2, §3.3).
    fn thumbprint_members(self) -> &'static [&'static str] {
        match self {
            Self::Okp => &["crv", "kty", "x"],
            Self::Ec => &["crv", "kty", "x", "y"],
            Self::Rsa => &["e", "kty", "n"],
            Self::Oct => &["k", "kty"],
        }
    }

    /// The algorithm a key of this kind implies when it has no `alg` member.
    ///
    /// RSA is ambiguous between PSS and v1.5; PSS is the one RFC 9421 lists
    /// first and the safer construction, so it is the default (see
    /// spec-notes/rfc9421.md).
    fn default_algorithm(self, map: &Map<String, Value>) -> Result<Algorithm, KeyError> {
        match self {
            Self::Okp => match str_member(map, "crv")? {
                "Ed25519" => Ok(Algorithm::Ed25519),
                other => Err(KeyError::UnsupportedKeyType(format!("OKP/{other}"))),
            },
            Self::Ec => match str_member(map, "crv")? {
                "P-256" => Ok(Algorithm::EcdsaP256Sha256),
                "P-384" => Ok(Algorithm::EcdsaP384Sha384),
                other => Err(KeyError::UnsupportedKeyType(format!("EC/{other}"))),
            },
            Self::Rsa => Ok(Algorithm::RsaPssSha512),
            Self::Oct => Ok(Algorithm::HmacSha256),
        }
    }

    fn fits(self, alg: Algorithm, map: &Map<String, Value>) -> bool {
        match alg {
            Algorithm::Ed25519 => {
                self == Self::Okp && str_member(map, "crv").ok() == Some("Ed25519")
            }
            Algorithm::EcdsaP256Sha256 => {
                self == Self::Ec && str_member(map, "crv").ok() == Some("P-256")
            }
            Algorithm::EcdsaP384Sha384 => {
                self == Self::Ec && str_member(map, "crv").ok() == Some("P-384")
            }
            Algorithm::RsaPssSha512 | Algorithm::RsaV15Sha256 => self == Self::Rsa,
            Algorithm::HmacSha256 => self == Self::Oct,
        }
    }
}

fn str_member<'m>(map: &'m Map<String, Value>, name: &'static str) -> Result<&'m str, KeyError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::MissingMember(name))
}

/// Maps a JWK `alg` member to the RFC 9421 algorithm. `Ed25519` is accepted
/// beside `EdDSA` because RFC 9864 registers it as the fully specified name.
fn algorithm_from_jwk_alg(alg: &str) -> Result<Algorithm, KeyError> {
    match alg {
        "EdDSA" | "Ed25519" => Ok(Algorithm::Ed25519),
        "ES256" => Ok(Algorithm::EcdsaP256Sha256),
        "ES384" => Ok(Algorithm::EcdsaP384Sha384),
        "PS512" => Ok(Algorithm::RsaPssSha512),
        "RS256" => Ok(Algorithm::RsaV15Sha256),
        "HS256" => Ok(Algorithm::HmacSha256),
        other => Err(KeyError::UnsupportedAlgorithm(other.to_owned())),
    }
}

/// Resolves the algorithm for a key: `wanted` (from the verifier's context)
/// must agree with the key's `alg` member and type when both are known.
fn resolve_algorithm(
    map: &Map<String, Value>,
    kind: KeyKind,
    wanted: Option<Algorithm>,
) -> Result<Algorithm, KeyError> {
    let from_key = match map.get("alg") {
        Some(Value::String(alg)) => Some(algorithm_from_jwk_alg(alg)?),
        Some(_) => return Err(KeyError::UnsupportedAlgorithm("non-string alg".into())),
        None => None,
    };
    let alg = match (wanted, from_key) {
        (Some(w), Some(k)) if w != k => return Err(KeyError::AlgorithmMismatch { wanted: w }),
        (Some(w), _) => w,
        (None, Some(k)) => k,
        (None, None) => kind.default_algorithm(map)?,
    };
    if !kind.fits(alg, map) {
        return Err(KeyError::AlgorithmMismatch { wanted: alg });
    }
    Ok(alg)
}

/// Computes the RFC 7638 thumbprint: SHA-256 over the required members,
/// lexicographically ordered, no whitespace.
fn thumbprint(map: &Map<String, Value>, kind: KeyKind) -> Result<Thumbprint, KeyError> {
    let mut canonical = String::with_capacity(160);
    canonical.push('{');
    for (i, name) in kind.thumbprint_members().iter().enumerate() {
        let Some(Value::String(value)) = map.get(*name) else {
            return Err(KeyError::MissingMember(name));
        };
        if i > 0 {
            canonical.push(',');
        }
        // serde_json string serialization is the JSON escaping RFC 7638 §3.3
        // asks for; member names here need none.
        canonical.push('"');
        canonical.push_str(name);
        canonical.push_str("\":");
        canonical.push_str(&Value::String(value.clone()).to_string());
    }
    canonical.push('}');
    Ok(Thumbprint(b64::encode_url(&Sha256::digest(
        canonical.as_bytes(),
    ))))
}

fn object(value: &Value) -> Result<&Map<String, Value>, KeyError> {
    value.as_object().ok_or(KeyError::NotAnObject)
}

/// Checks an RSA public key's size and exponent before any library builds
/// it, so that a key the server would spend too long on never becomes one.
fn check_rsa_public(map: &Map<String, Value>) -> Result<(), KeyError> {
    let n = b64::decode_url(str_member(map, "n")?).ok_or(KeyError::InvalidKey)?;
    let first = *n.first().ok_or(KeyError::InvalidKey)?;
    if first == 0 {
        return Err(KeyError::NotMinimal("n"));
    }
    let bits = n.len() * 8 - first.leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaTooSmall(bits));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError::RsaTooLarge(bits));
    }
    let e = b64::decode_url(str_member(map, "e")?).ok_or(KeyError::InvalidKey)?;
    if e.first() == Some(&0) {
        return Err(KeyError::NotMinimal("e"));
    }
    if e != RSA_EXPONENT {
        return Err(KeyError::RsaExponent);
    }
    Ok(())
}

fn ed25519_public(map: &Map<String, Value>) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
    let x = b64::decode_url(str_member(map, "x")?).ok_or(KeyError::InvalidKey)?;
    let x: [u8; 32] = x.try_into().map_err(|_| KeyError::InvalidKey)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| KeyError::InvalidKey)?;
    // A point of small order verifies no signature under `verify_strict`,
    // and under a batch equation it would verify forged ones: it is no key.
    if key.is_weak() {
        return Err(KeyError::InvalidKey);
    }
    Ok(key)
}

fn jose_jwk(map: &Map<String, Value>) -> Result<Jwk, KeyError> {
    Jwk::from_map(map.clone()).map_err(|_| KeyError::InvalidKey)
}

/// The verification half of a key.
enum Verifier {
    Ed25519(ed25519_dalek::VerifyingKey),
    Jose(Box<dyn JwsVerifier>),
    /// HMAC verification recomputes the MAC; josekit's own verifier compares
    /// with `!=`, so the comparison is done here in constant time.
    Hmac(Box<dyn JwsSigner>),
}

/// A key that verifies signatures: a client's public key, or (for
/// `hmac-sha256` only, never as a client identity) a shared secret.
pub struct VerifyingKey {
    algorithm: Algorithm,
    kid: Option<String>,
    thumbprint: Thumbprint,
    public_jwk: Option<Value>,
    verifier: Verifier,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// A signature did not verify under the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the signature does not verify under the key")]
pub struct BadSignature;

impl VerifyingKey {
    /// Parses a key a client presents (`client.key.jwk`): public only,
    /// asymmetric only, algorithm from the key.
    pub fn from_presented_jwk(value: &Value) -> Result<Self, KeyError> {
        Self::from_public_jwk(value, None)
    }

    /// Parses JWK text a client presents; see [`Self::from_presented_jwk`].
    pub fn from_presented_jwk_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() > MAX_JWK_LEN {
            return Err(KeyError::NotAnObject);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|_| KeyError::NotAnObject)?;
        Self::from_presented_jwk(&value)
    }

    /// Parses a public key, with the algorithm fixed by the verifier's context
    /// when `wanted` is given (it must agree with the key).
    pub fn from_public_jwk(value: &Value, wanted: Option<Algorithm>) -> Result<Self, KeyError> {
        let map = object(value)?;
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| map.contains_key(**m)) {
            return Err(KeyError::PrivateMember(member));
        }
        let kind = KeyKind::of(map)?;
        if kind == KeyKind::Oct {
            return Err(KeyError::Symmetric);
        }
        let algorithm = resolve_algorithm(map, kind, wanted)?;
        let verifier = match algorithm {
            Algorithm::Ed25519 => Verifier::Ed25519(ed25519_public(map)?),
            Algorithm::EcdsaP256Sha256 => Verifier::Jose(Box::new(
                ES256
                    .verifier_from_jwk(&jose_jwk(map)?)
                    .map_err(|_| KeyError::InvalidKey)?,
            )),
            Algorithm::EcdsaP384Sha384 => Verifier::Jose(Box::new(
                ES384
                    .verifier_from_jwk(&jose_jwk(map)?)
                    .map_err(|_| KeyError::InvalidKey)?,
            )),
            Algorithm::RsaPssSha512 | Algorithm::RsaV15Sha256 => {
                check_rsa_public(map)?;
                // josekit checks a JWK `alg` member against the JWS name, so
                // hand it a copy that names the algorithm we resolved.
                let mut jwk = jose_jwk(map)?;
                jwk.set_algorithm(algorithm.jws_name());
                let verifier: Box<dyn JwsVerifier> = if algorithm == Algorithm::RsaPssSha512 {
                    Box::new(
                        PS512
                            .verifier_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    )
                } else {
                    Box::new(
                        RS256
                            .verifier_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    )
                };
                Verifier::Jose(verifier)
            }
            Algorithm::HmacSha256 => return Err(KeyError::Symmetric),
        };
        Ok(Self {
            algorithm,
            kid: map.get("kid").and_then(Value::as_str).map(str::to_owned),
            thumbprint: thumbprint(map, kind)?,
            public_jwk: Some(public_members(map, kind)),
            verifier,
        })
    }

    /// A shared-secret key for `hmac-sha256` (RFC 9421 §3.3.3) from an `oct`
    /// JWK. Never a client identity; used where both ends hold the secret.
    pub fn from_shared_secret_jwk(value: &Value) -> Result<Self, KeyError> {
        let map = object(value)?;
        let kind = KeyKind::of(map)?;
        if kind != KeyKind::Oct {
            return Err(KeyError::UnsupportedKeyType(
                str_member(map, "kty")?.to_owned(),
            ));
        }
        let algorithm = resolve_algorithm(map, kind, Some(Algorithm::HmacSha256))?;
        let secret = b64::decode_url(str_member(map, "k")?).ok_or(KeyError::InvalidKey)?;
        let signer = HS256
            .signer_from_bytes(&secret)
            .map_err(|_| KeyError::InvalidKey)?;
        Ok(Self {
            algorithm,
            kid: map.get("kid").and_then(Value::as_str).map(str::to_owned),
            thumbprint: thumbprint(map, kind)?,
            public_jwk: None,
            verifier: Verifier::Hmac(Box::new(signer)),
        })
    }

    /// The algorithm this key verifies with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The JWK `kid`, if the key has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The RFC 7638 thumbprint: the client's identity.
    pub fn thumbprint(&self) -> &Thumbprint {
        &self.thumbprint
    }

    /// The public JWK (required members plus `kid` and `alg`); `None` for a
    /// shared secret.
    pub fn public_jwk(&self) -> Option<&Value> {
        self.public_jwk.as_ref()
    }

    /// The Ed25519 key, for checks made in a batch
    /// ([`crate::proto::httpsig::batch`]). Never a point of small order:
    /// those are refused when the key is read.
    pub(crate) fn ed25519(&self) -> Option<&ed25519_dalek::VerifyingKey> {
        match &self.verifier {
            Verifier::Ed25519(key) => Some(key),
            Verifier::Jose(_) | Verifier::Hmac(_) => None,
        }
    }

    /// Verifies `signature` over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        match &self.verifier {
            Verifier::Ed25519(key) => {
                let bytes: &[u8; 64] = signature.try_into().map_err(|_| BadSignature)?;
                let sig = ed25519_dalek::Signature::from_bytes(bytes);
                key.verify_strict(message, &sig).map_err(|_| BadSignature)
            }
            Verifier::Jose(v) => v.verify(message, signature).map_err(|_| BadSignature),
            Verifier::Hmac(mac) => {
                let expected = mac.sign(message).map_err(|_| BadSignature)?;
                if bool::from(expected.ct_eq(signature)) {
                    Ok(())
                } else {
                    Err(BadSignature)
                }
            }
        }
    }
}

/// The public JWK gnapd stores and echoes: the thumbprint members plus `kid`
/// and `alg` when present. Anything else a client sent is dropped.
fn public_members(map: &Map<String, Value>, kind: KeyKind) -> Value {
    let mut out = Map::new();
    for name in kind.thumbprint_members().iter().chain(&["kid", "alg"]) {
        if let Some(v) = map.get(*name) {
            out.insert((*name).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

enum Signer {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Jose(Box<dyn JwsSigner>),
}

/// A private key that signs: the agent side, the connector, tests.
pub struct SigningKey {
    algorithm: Algorithm,
    private_jwk: Value,
    verifying: VerifyingKey,
    signer: Signer,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("thumbprint", self.verifying.thumbprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key for `algorithm` (RSA keys are 2048 bits).
    pub fn generate(algorithm: Algorithm) -> Result<Self, KeyError> {
        use josekit::jwk::KeyPair as _;
        use josekit::jwk::alg::ec::EcCurve;
        use josekit::jwk::alg::ec::EcKeyPair;
        use josekit::jwk::alg::rsa::RsaKeyPair;
        let jwk: Jwk = match algorithm {
            Algorithm::Ed25519 => {
                let mut seed = [0u8; 32];
                crate::random::fill(&mut seed).map_err(|_| KeyError::Crypto)?;
                let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                let map = ed25519_private_map(&key);
                return Self::from_private_jwk(&Value::Object(map), Some(algorithm));
            }
            Algorithm::EcdsaP256Sha256 => EcKeyPair::generate(EcCurve::P256)
                .map_err(|_| KeyError::Crypto)?
                .to_jwk_key_pair(),
            Algorithm::EcdsaP384Sha384 => EcKeyPair::generate(EcCurve::P384)
                .map_err(|_| KeyError::Crypto)?
                .to_jwk_key_pair(),
            Algorithm::RsaPssSha512 | Algorithm::RsaV15Sha256 => RsaKeyPair::generate(2048)
                .map_err(|_| KeyError::Crypto)?
                .to_jwk_key_pair(),
            Algorithm::HmacSha256 => {
                let mut secret = [0u8; 32];
                crate::random::fill(&mut secret).map_err(|_| KeyError::Crypto)?;
                let mut map = Map::new();
                map.insert("kty".into(), "oct".into());
                map.insert("k".into(), b64::encode_url(&secret).into());
                return Self::from_private_jwk(&Value::Object(map), Some(algorithm));
            }
        };
        let map: Map<String, Value> = jwk.as_ref().clone();
        Self::from_private_jwk(&Value::Object(map), Some(algorithm))
    }

    /// Parses a private JWK. The algorithm is `wanted`, else the key's.
    pub fn from_private_jwk(value: &Value, wanted: Option<Algorithm>) -> Result<Self, KeyError> {
        let map = object(value)?;
        let kind = KeyKind::of(map)?;
        let algorithm = resolve_algorithm(map, kind, wanted)?;
        let mut public = map.clone();
        for m in PRIVATE_MEMBERS {
            public.remove(m);
        }
        let (signer, verifying) = match algorithm {
            Algorithm::Ed25519 => {
                let d = b64::decode_url(str_member(map, "d")?).ok_or(KeyError::InvalidKey)?;
                let d: [u8; 32] = d.try_into().map_err(|_| KeyError::InvalidKey)?;
                let key = ed25519_dalek::SigningKey::from_bytes(&d);
                let derived = b64::encode_url(key.verifying_key().as_bytes());
                if str_member(map, "x")? != derived {
                    return Err(KeyError::InvalidKey);
                }
                let verifying =
                    VerifyingKey::from_public_jwk(&Value::Object(public), Some(algorithm))?;
                (Signer::Ed25519(Box::new(key)), verifying)
            }
            Algorithm::HmacSha256 => {
                let verifying = VerifyingKey::from_shared_secret_jwk(value)?;
                let secret = b64::decode_url(str_member(map, "k")?).ok_or(KeyError::InvalidKey)?;
                let signer = HS256
                    .signer_from_bytes(&secret)
                    .map_err(|_| KeyError::InvalidKey)?;
                (Signer::Jose(Box::new(signer)), verifying)
            }
            _ => {
                let mut jwk = jose_jwk(map)?;
                jwk.set_algorithm(algorithm.jws_name());
                let signer: Box<dyn JwsSigner> = match algorithm {
                    Algorithm::EcdsaP256Sha256 => Box::new(
                        ES256
                            .signer_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    ),
                    Algorithm::EcdsaP384Sha384 => Box::new(
                        ES384
                            .signer_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    ),
                    Algorithm::RsaPssSha512 => Box::new(
                        PS512
                            .signer_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    ),
                    _ => Box::new(
                        RS256
                            .signer_from_jwk(&jwk)
                            .map_err(|_| KeyError::InvalidKey)?,
                    ),
                };
                let verifying =
                    VerifyingKey::from_public_jwk(&Value::Object(public), Some(algorithm))?;
                // OpenSSL builds a key from `d` (EC) or the CRT members (RSA)
                // without checking them against the public members; a key
                // whose halves disagree would sign what its own JWK cannot
                // verify. One probe signature catches that at load time.
                const PROBE: &[u8] = b"gnapd private key consistency probe";
                let probe = signer.sign(PROBE).map_err(|_| KeyError::InvalidKey)?;
                verifying
                    .verify(PROBE, &probe)
                    .map_err(|_| KeyError::InvalidKey)?;
                (Signer::Jose(signer), verifying)
            }
        };
        Ok(Self {
            algorithm,
            private_jwk: value.clone(),
            verifying,
            signer,
        })
    }

    /// Sets the JWK `kid` (on both halves).
    pub fn with_kid(self, kid: &str) -> Result<Self, KeyError> {
        let mut jwk = self.private_jwk;
        if let Value::Object(map) = &mut jwk {
            map.insert("kid".into(), kid.into());
        }
        Self::from_private_jwk(&jwk, Some(self.algorithm))
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The matching verifying key (its thumbprint is the client's identity).
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The private JWK, for a key file the owner keeps (mode 0600).
    pub fn private_jwk(&self) -> &Value {
        &self.private_jwk
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            Signer::Jose(s) => s.sign(message).map_err(|_| KeyError::Crypto),
        }
    }
}

fn ed25519_private_map(key: &ed25519_dalek::SigningKey) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("kty".into(), "OKP".into());
    map.insert("crv".into(), "Ed25519".into());
    map.insert(
        "x".into(),
        b64::encode_url(key.verifying_key().as_bytes()).into(),
    );
    map.insert("d".into(), b64::encode_url(&key.to_bytes()).into());
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7638 §3.1: the example RSA key's thumbprint.
    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = VerifyingKey::from_presented_jwk(&jwk).unwrap();
        assert_eq!(
            key.thumbprint().as_str(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(key.algorithm(), Algorithm::RsaV15Sha256);
    }

    #[test]
    fn a_presented_key_with_a_private_member_is_refused() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        assert_eq!(
            VerifyingKey::from_presented_jwk(key.private_jwk()).unwrap_err(),
            KeyError::PrivateMember("d")
        );
    }

    #[test]
    fn an_oct_key_cannot_be_a_client_identity() {
        let jwk = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            VerifyingKey::from_presented_jwk(&jwk).unwrap_err(),
            KeyError::PrivateMember("k")
        );
    }

    #[test]
    fn the_jwk_alg_member_must_agree_with_the_key_type() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut public = key.verifying_key().public_jwk().unwrap().clone();
        public["alg"] = "ES256".into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&public).unwrap_err(),
            KeyError::AlgorithmMismatch {
                wanted: Algorithm::EcdsaP256Sha256
            }
        );
    }

    #[test]
    fn an_unknown_jwk_alg_is_refused() {
        let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut public = key.verifying_key().public_jwk().unwrap().clone();
        public["alg"] = "none".into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&public).unwrap_err(),
            KeyError::UnsupportedAlgorithm("none".into())
        );
    }

    #[test]
    fn an_rsa_key_below_2048_bits_is_refused() {
        // A 1024-bit modulus: 128 bytes with the top bit set.
        let mut n = vec![0xffu8; 128];
        n[127] = 0x01;
        let jwk = json!({"kty": "RSA", "n": b64::encode_url(&n), "e": "AQAB"});
        assert_eq!(
            VerifyingKey::from_presented_jwk(&jwk).unwrap_err(),
            KeyError::RsaTooSmall(1024)
        );
    }

    /// A public RSA JWK with a modulus of `bits` bits (odd, top bit set;
    /// the checks here run before the modulus is used) and exponent `e`.
    fn rsa_public(bits: usize, e: &[u8]) -> Value {
        let mut n = vec![0xffu8; bits.div_ceil(8)];
        n[0] = 0xff >> (n.len() * 8 - bits);
        json!({"kty": "RSA", "n": b64::encode_url(&n), "e": b64::encode_url(e)})
    }

    #[test]
    fn rsa_moduli_from_2048_to_4096_bits_are_read_and_larger_ones_refused() {
        for bits in [2048, 3072, 4096] {
            let key = VerifyingKey::from_presented_jwk(&rsa_public(bits, &RSA_EXPONENT));
            assert!(key.is_ok(), "{bits}: {key:?}");
        }
        for bits in [4097, 8192, 16384] {
            assert_eq!(
                VerifyingKey::from_presented_jwk(&rsa_public(bits, &RSA_EXPONENT)).unwrap_err(),
                KeyError::RsaTooLarge(bits)
            );
        }
        assert_eq!(
            VerifyingKey::from_presented_jwk(&rsa_public(2047, &RSA_EXPONENT)).unwrap_err(),
            KeyError::RsaTooSmall(2047)
        );
    }

    #[test]
    fn an_rsa_exponent_other_than_65537_is_refused() {
        for e in [
            &[3u8][..],
            &[1],
            &[0x01, 0x00, 0x03],
            &[0xff; 4],
            &[0x01; 40],
        ] {
            assert_eq!(
                VerifyingKey::from_presented_jwk(&rsa_public(2048, e)).unwrap_err(),
                KeyError::RsaExponent,
                "{e:?}"
            );
        }
    }

    #[test]
    fn rsa_members_with_leading_zero_octets_are_refused() {
        // The same key with a zero octet in front would hash to another
        // thumbprint: a second identity for one key.
        let good = rsa_public(2048, &RSA_EXPONENT);
        let mut n = b64::decode_url(good["n"].as_str().unwrap()).unwrap();
        n.insert(0, 0);
        let mut padded_n = good.clone();
        padded_n["n"] = b64::encode_url(&n).into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&padded_n).unwrap_err(),
            KeyError::NotMinimal("n")
        );
        let mut padded_e = good;
        padded_e["e"] = b64::encode_url(&[0, 1, 0, 1]).into();
        assert_eq!(
            VerifyingKey::from_presented_jwk(&padded_e).unwrap_err(),
            KeyError::NotMinimal("e")
        );
    }

    #[test]
    fn every_generated_key_signs_and_verifies() {
        for alg in Algorithm::ALL {
            let key = SigningKey::generate(alg)
                .map_err(|e| format!("{alg}: {e}"))
                .unwrap();
            let sig = key.sign(b"message").unwrap();
            key.verifying_key().verify(b"message", &sig).unwrap();
            assert_eq!(
                key.verifying_key().verify(b"messagE", &sig),
                Err(BadSignature),
                "{alg}"
            );
        }
    }

    #[test]
    fn an_ec_key_whose_d_does_not_match_x_and_y_is_refused() {
        let a = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let b = SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap();
        let mut jwk = a.private_jwk().clone();
        jwk["d"] = b.private_jwk()["d"].clone();
        assert_eq!(
            SigningKey::from_private_jwk(&jwk, None).unwrap_err(),
            KeyError::InvalidKey
        );
    }

    #[test]
    fn an_ed25519_key_whose_x_does_not_match_d_is_refused() {
        let a = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let b = SigningKey::generate(Algorithm::Ed25519).unwrap();
        let mut jwk = a.private_jwk().clone();
        jwk["x"] = b.private_jwk()["x"].clone();
        assert_eq!(
            SigningKey::from_private_jwk(&jwk, None).unwrap_err(),
            KeyError::InvalidKey
        );
    }
}
