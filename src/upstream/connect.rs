//! "Connect the upstream": how a person, on a grant's consent page, gives
//! gnapd the credential the agent's token will use at an upstream, instead
//! of (or where there is none) the enterprise-held one. Sans I/O: the
//! config, the credential a pasted key makes, the probe request that checks
//! it. The page and the probe's sending live in `crate::http::pages`.
//!
//! ```toml
//! [[upstream]]
//! name = "tracker"
//! url = "https://tracker.example/mcp"
//! connect = { kind = "api_key", header = "Authorization", scheme = "Bearer", probe = true }
//! ```
//!
//! A connected credential is sealed under the master key as a
//! _person-connected_ credential set: id `person:<256 random bits>`
//! ([`PERSON_SET_PREFIX`]), the upstream's name recorded in the set. The
//! approved grant's tokens map to it at that upstream.

use serde::Deserialize;

use crate::gateway::upstream::{Credential, Secret};

/// The id prefix of person-connected credential sets.
pub const PERSON_SET_PREFIX: &str = "person:";

/// Longest key a person may paste (bytes).
pub const MAX_KEY: usize = 4096;

/// How a person connects an upstream, as the config writes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Connect {
    /// The person pastes an API key or token, sent in `header` (with
    /// `scheme` and a space before it, when given).
    ApiKey {
        /// The header the key goes in (e.g. `Authorization`, `X-Api-Key`).
        header: String,
        /// An auth scheme before the key (e.g. `Bearer`).
        #[serde(default)]
        scheme: Option<String>,
        /// Check the key with one MCP `initialize` call before accepting it.
        #[serde(default)]
        probe: bool,
    },
}

impl Connect {
    /// Checks the config: a header that can carry a credential, a scheme
    /// that is one token.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Self::ApiKey { header, scheme, .. } => {
                Credential::header(header, Secret::new("x"))?;
                if let Some(scheme) = scheme
                    && (scheme.is_empty()
                        || !scheme
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
                {
                    return Err(format!("connect scheme `{scheme}` is not an auth scheme"));
                }
                Ok(())
            }
        }
    }

    /// Whether a pasted key is checked with a probe call.
    pub fn probes(&self) -> bool {
        match self {
            Self::ApiKey { probe, .. } => *probe,
        }
    }

    /// The credential a pasted `key` makes. Errors never echo the key.
    pub fn credential(&self, key: &str) -> Result<Credential, String> {
        match self {
            Self::ApiKey { header, scheme, .. } => {
                let key = key.trim();
                if key.is_empty() {
                    return Err("the key is empty".into());
                }
                if key.len() > MAX_KEY || key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                    return Err("the key has characters a key cannot have".into());
                }
                let value = match scheme {
                    Some(scheme) => Secret::new(format!("{scheme} {key}")),
                    None => Secret::new(key),
                };
                Credential::header(header, value).map_err(|_| "the key is not usable".into())
            }
        }
    }
}

/// The probe: an MCP `initialize` request (Streamable HTTP POST). The
/// upstream's status says whether it took the credential: 2xx yes, 401 or
/// 403 no, anything else "could not tell".
pub const PROBE_BODY: &str = r#"{"jsonrpc":"2.0","id":"gnapd-connect-probe","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"gnapd-connect-probe","version":"1"}}}"#;

/// What a probe's status means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// 2xx: the upstream took the credential.
    Accepted,
    /// 401 or 403: it refused it.
    Refused,
    /// Anything else: the upstream could not tell us.
    Unknown,
}

impl Probed {
    /// The meaning of `status`.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Self::Accepted,
            401 | 403 => Self::Refused,
            _ => Self::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_configs_parse_and_pasted_keys_become_header_credentials() {
        let bearer: Connect = toml::from_str(
            r#"kind = "api_key"
header = "Authorization"
scheme = "Bearer"
probe = true"#,
        )
        .unwrap();
        bearer.check().unwrap();
        assert!(bearer.probes());
        let (name, value) = bearer
            .credential("  k-123 ")
            .unwrap()
            .header_to_inject()
            .unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value.to_str().unwrap(), "Bearer k-123");

        let plain: Connect = toml::from_str("kind = \"api_key\"\nheader = \"X-Api-Key\"").unwrap();
        assert!(!plain.probes());
        let (name, value) = plain.credential("k").unwrap().header_to_inject().unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("x-api-key", "k"));

        for bad in ["", "   ", "a b", "k\u{e9}", "a\nb"] {
            let err = plain.credential(bad).unwrap_err();
            assert!(bad.trim().is_empty() || !err.contains(bad.trim()), "{err}");
        }
        assert!(
            toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"Host\"")
                .unwrap()
                .check()
                .is_err()
        );
        assert!(
            toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"A\"\nscheme = \"a b\"")
                .unwrap()
                .check()
                .is_err()
        );
        assert!(toml::from_str::<Connect>("kind = \"api_key\"\nheader = \"A\"\nx = 1").is_err());
    }

    #[test]
    fn probe_statuses_mean_accepted_refused_or_unknown() {
        assert_eq!(Probed::of(200), Probed::Accepted);
        assert_eq!(Probed::of(202), Probed::Accepted);
        assert_eq!(Probed::of(401), Probed::Refused);
        assert_eq!(Probed::of(403), Probed::Refused);
        assert_eq!(Probed::of(404), Probed::Unknown);
        assert_eq!(Probed::of(500), Probed::Unknown);
        assert!(serde_json::from_str::<serde_json::Value>(PROBE_BODY).is_ok());
    }
}
