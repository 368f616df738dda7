//! RFC 7638 thumbprints: a client's identity.

use super::*;

/// An RFC 7638 JWK thumbprint (SHA-256, base64url): a client's identity.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Thumbprint(String);

impl Thumbprint {
    /// The identity of a client whose key is an `mtls` certificate: its
    /// RFC 8705 `x5t#S256`, which serves wherever a JWK thumbprint would.
    pub fn of_certificate(x5t: &str) -> Self {
        Self(x5t.to_owned())
    }

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

/// Computes the RFC 7638 thumbprint: SHA-256 over the required members,
/// lexicographically ordered, no whitespace.
pub(super) fn thumbprint(map: &Map<String, Value>, kind: KeyKind) -> Result<Thumbprint, KeyError> {
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
    Ok(Thumbprint(b64::encode_url(&crate::proto::hash::sha256(
        canonical.as_bytes(),
    ))))
}
