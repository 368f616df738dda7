//! Keys that sign: the agent side, the connector, tests.

use super::*;

pub(super) enum Signer {
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
        count(Operation::KeyGen, algorithm.key_label());
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
                // The probe is real work, counted as an RFC 9421 signature.
                const PROBE: &[u8] = b"gnapd private key consistency probe";
                count(Operation::Sign, algorithm.name());
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

    /// Signs `message` (an RFC 9421 signature base; counted under the
    /// algorithm's RFC 9421 name).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        count(Operation::Sign, self.algorithm.name());
        self.sign_uncounted(message)
    }

    /// Signs a JWS signing input (`header.payload`: DPoP proofs, client
    /// assertions; counted under the JWS `alg`, lower-cased).
    pub fn sign_jws(&self, signing_input: &[u8]) -> Result<Vec<u8>, KeyError> {
        count(Operation::Sign, self.algorithm.jws_label());
        self.sign_uncounted(signing_input)
    }

    fn sign_uncounted(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.signer {
            Signer::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                Ok(key.sign(message).to_bytes().to_vec())
            }
            Signer::Jose(s) => s.sign(message).map_err(|_| KeyError::Crypto),
        }
    }
}

pub(super) fn ed25519_private_map(key: &ed25519_dalek::SigningKey) -> Map<String, Value> {
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
