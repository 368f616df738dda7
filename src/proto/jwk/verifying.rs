//! Keys that verify: a client's public key, or an HMAC secret.

use super::*;

/// The verification half of a key.
pub(super) enum Verifier {
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

    /// Verifies `signature` over `message` (an RFC 9421 signature base;
    /// counted under the algorithm's RFC 9421 name).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        count(Operation::Verify, self.algorithm.name());
        self.verify_uncounted(message, signature)
    }

    /// Verifies a JWS signature over its signing input (DPoP proofs,
    /// client assertions, ID tokens, ID-JAGs; counted under the JWS `alg`,
    /// lower-cased).
    pub fn verify_jws(&self, signing_input: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
        count(Operation::Verify, self.algorithm.jws_label());
        self.verify_uncounted(signing_input, signature)
    }

    fn verify_uncounted(&self, message: &[u8], signature: &[u8]) -> Result<(), BadSignature> {
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
