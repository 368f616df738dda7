//! Reading a JWK's members: key types, algorithms, the checks on public
//! halves, and the public members gnapd keeps.

use super::*;

/// The key types gnapd understands, with the members RFC 7638 §3.2 hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyKind {
    Okp,
    Ec,
    Rsa,
    Oct,
}

impl KeyKind {
    pub(super) fn of(map: &Map<String, Value>) -> Result<Self, KeyError> {
        match str_member(map, "kty")? {
            "OKP" => Ok(Self::Okp),
            "EC" => Ok(Self::Ec),
            "RSA" => Ok(Self::Rsa),
            "oct" => Ok(Self::Oct),
            other => Err(KeyError::UnsupportedKeyType(other.to_owned())),
        }
    }

    /// The required members in lexicographic order (RFC 7638 §3.2, §3.3).
    pub(super) fn thumbprint_members(self) -> &'static [&'static str] {
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
    pub(super) fn default_algorithm(self, map: &Map<String, Value>) -> Result<Algorithm, KeyError> {
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

    pub(super) fn fits(self, alg: Algorithm, map: &Map<String, Value>) -> bool {
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

pub(super) fn str_member<'m>(
    map: &'m Map<String, Value>,
    name: &'static str,
) -> Result<&'m str, KeyError> {
    map.get(name)
        .and_then(Value::as_str)
        .ok_or(KeyError::MissingMember(name))
}

/// Maps a JWK `alg` member to the RFC 9421 algorithm. `Ed25519` is accepted
/// beside `EdDSA` because RFC 9864 registers it as the fully specified name.
pub(super) fn algorithm_from_jwk_alg(alg: &str) -> Result<Algorithm, KeyError> {
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
pub(super) fn resolve_algorithm(
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

pub(super) fn object(value: &Value) -> Result<&Map<String, Value>, KeyError> {
    value.as_object().ok_or(KeyError::NotAnObject)
}

/// Checks an RSA public key's size and exponent before any library builds
/// it, so that a key the server would spend too long on never becomes one.
pub(super) fn check_rsa_public(map: &Map<String, Value>) -> Result<(), KeyError> {
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

pub(super) fn ed25519_public(
    map: &Map<String, Value>,
) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
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

pub(super) fn jose_jwk(map: &Map<String, Value>) -> Result<Jwk, KeyError> {
    Jwk::from_map(map.clone()).map_err(|_| KeyError::InvalidKey)
}

/// The public JWK gnapd stores and echoes: the thumbprint members plus `kid`
/// and `alg` when present. Anything else a client sent is dropped.
pub(super) fn public_members(map: &Map<String, Value>, kind: KeyKind) -> Value {
    let mut out = Map::new();
    for name in kind.thumbprint_members().iter().chain(&["kid", "alg"]) {
        if let Some(v) = map.get(*name) {
            out.insert((*name).to_owned(), v.clone());
        }
    }
    Value::Object(out)
}
