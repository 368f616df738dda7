//! Upstream MCP servers as the gateway forwards to them: a name, a
//! Streamable HTTP URL, and how the gateway authenticates there.
//!
//! Secrets given in the config file or on the command line are parsed into
//! [`Secret`] (whose `Debug` redacts and whose memory is wiped on drop), then
//! at serve start sealed under the master key into the store as each
//! upstream's enterprise-held credential set ([`enroll`]); the plaintext is
//! dropped, and the gateway opens the set a token is mapped to per call.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::oauth2::OAuth2Credential;
use crate::proto::httpsig::message::TargetUri;
use crate::store::{CredentialKind, CredentialSetRecord, RECORD_VERSION, Store};
use crate::upstream::vault::MasterKey;

/// A secret string: never printed, wiped on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The secret itself, for injection into an upstream request only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Serializing exposes the secret: only for sealing it (`oauth2`
/// credentials are sealed as JSON).
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

/// How the gateway authenticates at an upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// Nothing is injected.
    #[default]
    None,
    /// `Authorization: Bearer VALUE`.
    Bearer(Secret),
    /// `NAME: VALUE`.
    Header {
        /// The header name (validated, lowercase).
        name: String,
        /// Its value.
        value: Secret,
    },
    /// `Authorization: Basic base64(USER:PASS)`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer ACCESS`, refreshed by the gateway.
    OAuth2(Box<OAuth2Credential>),
}

/// Headers a `header` credential may not name: the gateway sets or strips
/// them itself.
const RESERVED: [&str; 8] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "mcp-session-id",
    "mcp-protocol-version",
    "accept",
];

impl Credential {
    /// Parses a command-line spec: `bearer:VALUE`, `header:Header-Name:VALUE`,
    /// `basic:USER:PASS`, `oauth2:{JSON}` or `none`. Errors never echo the
    /// secret.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "none" if rest.is_empty() => Ok(Self::None),
            "bearer" if !rest.is_empty() => Ok(Self::Bearer(Secret::new(rest))),
            "header" => {
                let (name, value) = rest
                    .split_once(':')
                    .ok_or("a header credential is header:Header-Name:VALUE")?;
                Self::header(name, Secret::new(value))
            }
            "basic" => {
                let (user, password) = rest
                    .split_once(':')
                    .ok_or("a basic credential is basic:USER:PASS")?;
                Ok(Self::Basic {
                    user: user.to_owned(),
                    password: Secret::new(password),
                })
            }
            "oauth2" => Ok(Self::OAuth2(Box::new(OAuth2Credential::from_json(rest)?))),
            _ => Err(
                "a credential is bearer:VALUE, header:Header-Name:VALUE, basic:USER:PASS, oauth2:{JSON} or none"
                    .into(),
            ),
        }
    }

    /// A `header` credential, with its name checked.
    pub fn header(name: &str, value: Secret) -> Result<Self, String> {
        let lower = name.to_ascii_lowercase();
        if hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_err()
            || RESERVED.contains(&lower.as_str())
        {
            return Err(format!("`{name}` cannot carry an upstream credential"));
        }
        if hyper::header::HeaderValue::from_str(value.expose()).is_err() {
            return Err(format!(
                "the value for header `{name}` is not a valid header value"
            ));
        }
        Ok(Self::Header { name: lower, value })
    }

    /// What to seal for this credential: its kind, header name (for
    /// `header`) and secret bytes (`USER:PASS` for `basic`); `None` for
    /// `none`.
    pub fn to_sealable(&self) -> Option<(CredentialKind, Option<String>, Zeroizing<Vec<u8>>)> {
        match self {
            Self::None => None,
            Self::Bearer(token) => Some((
                CredentialKind::Bearer,
                None,
                Zeroizing::new(token.expose().as_bytes().to_vec()),
            )),
            Self::Header { name, value } => Some((
                CredentialKind::Header,
                Some(name.clone()),
                Zeroizing::new(value.expose().as_bytes().to_vec()),
            )),
            Self::Basic { user, password } => Some((
                CredentialKind::Basic,
                None,
                Zeroizing::new(format!("{user}:{}", password.expose()).into_bytes()),
            )),
            Self::OAuth2(grant) => Some((CredentialKind::OAuth2, None, grant.to_json())),
        }
    }

    /// The credential an opened set describes. Errors never echo the secret.
    pub fn from_opened(
        kind: CredentialKind,
        header_name: Option<&str>,
        secret: &[u8],
    ) -> Result<Self, String> {
        let secret = std::str::from_utf8(secret)
            .map_err(|_| "a credential set's secret is not UTF-8".to_owned())?;
        match kind {
            CredentialKind::Bearer => Ok(Self::Bearer(Secret::new(secret))),
            CredentialKind::Header => Self::header(
                header_name.ok_or("a header credential set has no header name")?,
                Secret::new(secret),
            ),
            CredentialKind::Basic => {
                let (user, password) = secret
                    .split_once(':')
                    .ok_or("a basic credential set is not USER:PASS")?;
                Ok(Self::Basic {
                    user: user.to_owned(),
                    password: Secret::new(password),
                })
            }
            CredentialKind::OAuth2 => {
                Ok(Self::OAuth2(Box::new(OAuth2Credential::from_json(secret)?)))
            }
        }
    }

    /// The header to add to every upstream request, if any. The value is
    /// marked sensitive (never indexed by HPACK, hidden from `Debug`).
    pub fn header_to_inject(
        &self,
    ) -> Option<(hyper::header::HeaderName, hyper::header::HeaderValue)> {
        use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let (name, value) = match self {
            Self::None => return None,
            Self::Bearer(token) => (AUTHORIZATION, format!("Bearer {}", token.expose())),
            Self::OAuth2(grant) => (
                AUTHORIZATION,
                format!("Bearer {}", grant.access_token.expose()),
            ),
            Self::Header { name, value } => (
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                value.expose().to_owned(),
            ),
            Self::Basic { user, password } => {
                let pair = Zeroizing::new(format!("{user}:{}", password.expose()));
                (
                    AUTHORIZATION,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
                    ),
                )
            }
        };
        let value = Zeroizing::new(value);
        let mut value = HeaderValue::from_str(&value).ok()?;
        value.set_sensitive(true);
        Some((name, value))
    }
}

/// One upstream MCP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The name agents use: `{public}/mcp/{name}`, `mcp:{name}`.
    pub name: String,
    /// The Streamable HTTP endpoint (`http://host:port/path`).
    pub url: String,
    /// How the gateway authenticates there, as configured. [`enroll`] seals
    /// it into the store and leaves `None` here.
    pub credential: Credential,
    /// The enterprise-held credential set for this upstream, once
    /// [`enroll`]ed: a token must be mapped to a set here to be forwarded.
    pub credential_set: Option<String>,
}

/// The id of the enterprise-held credential set for `upstream`.
pub fn enterprise_set_id(upstream: &str) -> String {
    format!("enterprise:{upstream}")
}

/// Seals each upstream's configured credential under `key` into `store` as
/// its enterprise-held credential set (replacing the one from an earlier
/// start), and drops the plaintext: afterwards `credential` is `None` and
/// `credential_set` names the set. Upstreams with kind `none` need no set.
pub fn enroll(
    upstreams: &mut [Upstream],
    store: &dyn Store,
    key: &MasterKey,
    now: i64,
) -> Result<(), String> {
    for upstream in upstreams {
        let id = enterprise_set_id(&upstream.name);
        if let Credential::OAuth2(grant) = &mut upstream.credential {
            let seed = grant.seed_digest();
            if kept_oauth2_state(store, key, &id, &seed)? {
                upstream.credential = Credential::None;
                upstream.credential_set = Some(id);
                continue;
            }
            grant.seed = Some(seed);
        }
        let Some((kind, header_name, secret)) = upstream.credential.to_sealable() else {
            continue;
        };
        let sealed = key
            .seal(&id, &secret)
            .map_err(|e| format!("upstream `{}`: {e}", upstream.name))?;
        store
            .put_credential_set(&CredentialSetRecord {
                v: RECORD_VERSION,
                id: id.clone(),
                upstream: upstream.name.clone(),
                kind,
                header_name,
                sealed,
                created_at: now,
            })
            .map_err(|e| {
                format!(
                    "upstream `{}`: storing its credential set: {e}",
                    upstream.name
                )
            })?;
        upstream.credential = Credential::None;
        upstream.credential_set = Some(id);
    }
    Ok(())
}

/// Whether set `id` already holds the refreshed state of the `oauth2`
/// credential configured as `seed`: then it is kept, not reset to the
/// configured (possibly rotated-away) tokens.
fn kept_oauth2_state(
    store: &dyn Store,
    key: &MasterKey,
    id: &str,
    seed: &str,
) -> Result<bool, String> {
    let Some(set) = store
        .credential_set(id)
        .map_err(|e| format!("reading credential set `{id}`: {e}"))?
    else {
        return Ok(false);
    };
    if set.kind != CredentialKind::OAuth2 {
        return Ok(false);
    }
    let Ok(opened) = key.open(id, &set.sealed) else {
        return Ok(false);
    };
    Ok(matches!(
        Credential::from_opened(set.kind, None, &opened),
        Ok(Credential::OAuth2(stored)) if stored.seed.as_deref() == Some(seed)
    ))
}

/// An upstream as the TOML file writes it:
///
/// ```toml
/// [[upstream]]
/// name = "github"
/// url = "http://127.0.0.1:9000/mcp"
/// credential = { kind = "bearer", token = "..." }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamEntry {
    /// The upstream's name.
    pub name: String,
    /// Its Streamable HTTP URL.
    pub url: String,
    /// How to authenticate there (default: none).
    #[serde(default)]
    pub credential: CredentialEntry,
}

/// A credential as the TOML file writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum CredentialEntry {
    /// Nothing injected.
    #[default]
    None,
    /// `{ kind = "bearer", token = "..." }`
    Bearer {
        /// The token.
        token: Secret,
    },
    /// `{ kind = "header", name = "X-Api-Key", value = "..." }`
    Header {
        /// The header name.
        name: String,
        /// Its value.
        value: Secret,
    },
    /// `{ kind = "basic", user = "...", password = "..." }`
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// `{ kind = "oauth2", access_token = "...", refresh_token = "...",
    /// token_endpoint = "https://...", client_id = "...", client_secret =
    /// "...", expires_at = 1700000000 }` (refresh token, expiry and client
    /// secret optional)
    #[serde(rename = "oauth2")]
    OAuth2(OAuth2Credential),
}

impl CredentialEntry {
    /// The credential it describes.
    pub fn into_credential(self) -> Result<Credential, String> {
        Ok(match self {
            Self::None => Credential::None,
            Self::Bearer { token } => Credential::Bearer(token),
            Self::Header { name, value } => Credential::header(&name, value)?,
            Self::Basic { user, .. } if user.contains(':') => {
                return Err("a basic credential's user may not contain `:`".into());
            }
            Self::Basic { user, password } => Credential::Basic { user, password },
            Self::OAuth2(grant) => {
                grant.check()?;
                Credential::OAuth2(Box::new(grant))
            }
        })
    }
}

/// Whether `name` can name an upstream (a URL path segment and the suffix of
/// an `mcp:` reference): 1–64 of `A-Z a-z 0-9 - _ .`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Upstream {
    /// Checks and builds an upstream: an `http` or `https` URL without
    /// user information.
    pub fn new(name: &str, url: &str, credential: Credential) -> Result<Self, String> {
        if !valid_name(name) {
            return Err(format!(
                "upstream name `{name}` must be 1-64 of A-Z a-z 0-9 - _ ."
            ));
        }
        let parsed = TargetUri::parse(url)
            .map_err(|_| format!("upstream `{name}`: the URL is not absolute"))?;
        if !matches!(parsed.normalized_scheme().as_ref(), "http" | "https") {
            return Err(format!(
                "upstream `{name}`: the URL must be http:// or https://"
            ));
        }
        let uri = url
            .parse::<hyper::Uri>()
            .map_err(|_| format!("upstream `{name}`: the URL is not usable"))?;
        // The URL is logged: credentials belong in the credential, where
        // they are kept secret.
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "upstream `{name}`: put credentials in the upstream's credential, not in its URL"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            url: url.to_owned(),
            credential,
            credential_set: None,
        })
    }
}

/// Parses `NAME=VALUE` (the shape of `--upstream` and
/// `--upstream-credential`).
pub fn split_assignment(spec: &str) -> Result<(&str, &str), String> {
    spec.split_once('=')
        .filter(|(name, _)| valid_name(name))
        .ok_or_else(|| "expected NAME=VALUE with a valid upstream name".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_specs_parse_and_never_print_their_secret() {
        let c = Credential::parse("bearer:s3cr3t").unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(name, "authorization");
        assert_eq!(value.to_str().unwrap(), "Bearer s3cr3t");
        assert!(value.is_sensitive());

        let c = Credential::parse("header:X-Api-Key:k:with:colons").unwrap();
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(name, "x-api-key");
        assert_eq!(value.to_str().unwrap(), "k:with:colons");

        let c = Credential::parse("basic:alice:pw:x").unwrap();
        assert!(!format!("{c:?}").contains("pw:x"));
        let (_, value) = c.header_to_inject().unwrap();
        assert_eq!(value.to_str().unwrap(), "Basic YWxpY2U6cHc6eA==");

        assert_eq!(Credential::parse("none").unwrap(), Credential::None);
        for bad in [
            "bearer:",
            "header:Host:x",
            "header:nocolon",
            "basic:nopass",
            "oauth:x",
            "header:Bad Name:x",
        ] {
            let err = Credential::parse(bad).unwrap_err();
            assert!(!err.contains("nopass"), "{err}");
        }
    }

    #[test]
    fn upstreams_need_a_valid_name_and_an_http_or_https_url() {
        assert!(Upstream::new("github", "http://127.0.0.1:9/mcp", Credential::None).is_ok());
        assert!(Upstream::new("github", "https://mcp.example.com/mcp", Credential::None).is_ok());
        assert!(Upstream::new("git/hub", "http://127.0.0.1:9/mcp", Credential::None).is_err());
        assert!(Upstream::new("..", "http://127.0.0.1:9/mcp", Credential::None).is_err());
        assert!(Upstream::new("github", "ftp://x/", Credential::None).is_err());
        assert!(Upstream::new("github", "not a url", Credential::None).is_err());
        let err = Upstream::new("gh", "http://u:pw@127.0.0.1:9/", Credential::None).unwrap_err();
        assert!(!err.contains("pw"), "{err}");
        assert_eq!(
            split_assignment("gh=bearer:x=y").unwrap(),
            ("gh", "bearer:x=y")
        );
        assert!(split_assignment("=x").is_err());
    }

    #[test]
    fn enroll_seals_credentials_into_the_store_and_drops_the_plaintext() {
        use crate::store::memory::MemoryStore;
        let key = MasterKey::from_text(&crate::proto::b64::encode_url(&[3u8; 32])).unwrap();
        let store = MemoryStore::new();
        let mut upstreams = vec![
            Upstream::new(
                "gh",
                "http://127.0.0.1:9/mcp",
                Credential::parse("header:X-Api-Key:s3cr3t-value").unwrap(),
            )
            .unwrap(),
            Upstream::new("open", "http://127.0.0.1:9/mcp", Credential::None).unwrap(),
        ];
        enroll(&mut upstreams, &store, &key, 1_000).unwrap();
        assert_eq!(upstreams[0].credential, Credential::None);
        assert_eq!(
            upstreams[0].credential_set.as_deref(),
            Some("enterprise:gh")
        );
        assert_eq!(upstreams[1].credential_set, None);
        assert_eq!(store.credential_set("enterprise:open").unwrap(), None);

        let set = store.credential_set("enterprise:gh").unwrap().unwrap();
        assert_eq!(set.kind, CredentialKind::Header);
        assert_eq!(set.header_name.as_deref(), Some("x-api-key"));
        let shown = format!("{set:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let sealed_b64 = crate::proto::b64::encode_url(&set.sealed);
        assert!(!shown.contains(&sealed_b64), "{shown}");
        assert!(!set.sealed.windows(6).any(|w| w == b"s3cr3t"));
        let json = serde_json::to_string(&set).unwrap();
        assert!(!json.contains("s3cr3t"), "{json}");

        let opened = key.open(&set.id, &set.sealed).unwrap();
        let credential =
            Credential::from_opened(set.kind, set.header_name.as_deref(), &opened).unwrap();
        assert_eq!(
            credential.header_to_inject().unwrap().1.to_str().unwrap(),
            "s3cr3t-value"
        );
        // Moved to another id, the sealed secret does not open.
        assert!(key.open("enterprise:other", &set.sealed).is_err());

        let basic = Credential::parse("basic:alice:pw:x").unwrap();
        let (kind, _, secret) = basic.to_sealable().unwrap();
        assert_eq!(Credential::from_opened(kind, None, &secret).unwrap(), basic);
    }

    #[test]
    fn toml_entries_build_credentials() {
        #[derive(Deserialize)]
        struct F {
            upstream: Vec<UpstreamEntry>,
        }
        let f: F = toml::from_str(
            "[[upstream]]\nname = \"gh\"\nurl = \"http://127.0.0.1:1/mcp\"\ncredential = { kind = \"bearer\", token = \"t0k\" }\n\n[[upstream]]\nname = \"open\"\nurl = \"http://127.0.0.1:2/mcp\"\n",
        )
        .unwrap();
        assert!(!format!("{:?}", f.upstream).contains("t0k"));
        let c = f.upstream[0].credential.clone().into_credential().unwrap();
        assert_eq!(c, Credential::Bearer(Secret::new("t0k")));
        assert!(matches!(f.upstream[1].credential, CredentialEntry::None));

        let f: F = toml::from_str(
            "[[upstream]]\nname = \"gh\"\nurl = \"http://127.0.0.1:1/mcp\"\ncredential = { kind = \"oauth2\", access_token = \"at-0\", refresh_token = \"rt-0\", token_endpoint = \"http://127.0.0.1:1/token\", client_id = \"gnapd\" }\n",
        )
        .unwrap();
        assert!(!format!("{:?}", f.upstream).contains("at-0"));
        let c = f.upstream[0].credential.clone().into_credential().unwrap();
        let (name, value) = c.header_to_inject().unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("authorization", "Bearer at-0")
        );
        let (kind, _, sealed) = c.to_sealable().unwrap();
        assert_eq!(Credential::from_opened(kind, None, &sealed).unwrap(), c);
    }
}
