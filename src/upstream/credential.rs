//! How the gateway authenticates at an upstream: a header for HTTP
//! upstreams (bearer, basic, a named header, an OAuth 2.0 grant it
//! refreshes), environment variables for stdio ones. Checked when read, so
//! nothing the gateway or the child process would misread is accepted.

use std::collections::BTreeMap;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::store::CredentialKind;

use super::Secret;
use super::oauth2::OAuth2Credential;

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
    /// Environment variables given to a stdio upstream's process (names
    /// checked by [`valid_env_name`]); never logged.
    Env(BTreeMap<String, Secret>),
}

/// Whether `name` can name an environment variable: `[A-Za-z_][A-Za-z0-9_]*`,
/// at most 256 bytes. (`=` or NUL would corrupt the child's environment.)
pub fn valid_env_name(name: &str) -> bool {
    name.len() <= 256
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks an environment variable for a child process. Errors name the
/// variable, never its value.
pub(super) fn check_env_var(name: &str, value: &str) -> Result<(), String> {
    if !valid_env_name(name) {
        return Err(format!(
            "`{name}` is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        ));
    }
    if value.contains('\0') {
        return Err(format!("the value of `{name}` contains a NUL byte"));
    }
    Ok(())
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
    /// `basic:USER:PASS`, `oauth2:{JSON}`, `env:VAR=VALUE` (one variable;
    /// repeat the flag for more, see [`Credential::merge`]) or `none`. Errors
    /// never echo the
    /// secret.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "none" if rest.is_empty() => Ok(Self::None),
            "env" => {
                let (name, value) = rest
                    .split_once('=')
                    .ok_or("an env credential is env:VAR=VALUE")?;
                check_env_var(name, value)?;
                Ok(Self::Env(BTreeMap::from([(
                    name.to_owned(),
                    Secret::new(value),
                )])))
            }
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
                "a credential is bearer:VALUE, header:Header-Name:VALUE, basic:USER:PASS, oauth2:{JSON}, env:VAR=VALUE or none"
                    .into(),
            ),
        }
    }

    /// An `env` credential from a map of variables, names and values checked.
    pub fn env(vars: BTreeMap<String, Secret>) -> Result<Self, String> {
        if vars.is_empty() {
            return Err("an env credential needs at least one variable".into());
        }
        for (name, value) in &vars {
            check_env_var(name, value.expose())?;
        }
        Ok(Self::Env(vars))
    }

    /// Two credentials given for one upstream on the command line: `env`
    /// variables collect into one set (a variable given twice is an error);
    /// any other pair is ambiguous and refused.
    pub fn merge(self, other: Self) -> Result<Self, String> {
        match (self, other) {
            (Self::Env(mut vars), Self::Env(more)) => {
                for (name, value) in more {
                    if vars.contains_key(&name) {
                        return Err(format!("the variable `{name}` is given twice"));
                    }
                    vars.insert(name, value);
                }
                Ok(Self::Env(vars))
            }
            _ => Err("only env credentials may be given more than once".into()),
        }
    }

    /// The kind's name, for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer(_) => "bearer",
            Self::Header { .. } => "header",
            Self::Basic { .. } => "basic",
            Self::Env(_) => "env",
            Self::OAuth2(_) => "oauth2",
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
    /// `header`) and secret bytes (`USER:PASS` for `basic`, a JSON object of
    /// names to values for `env`); `None` for `none`.
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
            Self::Env(vars) => {
                let plain: BTreeMap<&str, &str> = vars
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.expose()))
                    .collect();
                // Serializing string pairs cannot fail; an empty object
                // would open as an error rather than leak anything.
                let bytes = serde_json::to_vec(&plain).unwrap_or_default();
                Some((CredentialKind::Env, None, Zeroizing::new(bytes)))
            }
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
            CredentialKind::Env => {
                let vars: BTreeMap<String, Secret> = serde_json::from_str(secret)
                    .map_err(|_| "an env credential set is not a JSON object of strings")?;
                Self::env(vars)
            }
        }
    }

    /// The environment variables to give a stdio upstream's process.
    pub fn env_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        let vars = match self {
            Self::Env(vars) => Some(vars),
            _ => None,
        };
        vars.into_iter()
            .flat_map(|v| v.iter().map(|(n, s)| (n.as_str(), s.expose())))
    }

    /// The header to add to every upstream request, if any. The value is
    /// marked sensitive (never indexed by HPACK, hidden from `Debug`).
    pub fn header_to_inject(
        &self,
    ) -> Option<(hyper::header::HeaderName, hyper::header::HeaderValue)> {
        use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let (name, value) = match self {
            Self::None | Self::Env(_) => return None,
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
