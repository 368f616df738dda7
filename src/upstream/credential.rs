//! How the gateway authenticates at an upstream: a header for HTTP
//! upstreams (bearer, basic, a named header, an OAuth 2.0 grant it
//! refreshes), environment variables for stdio ones. Checked when read, so
//! nothing the gateway or the child process would misread is accepted.

use std::collections::BTreeMap;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::store::CredentialKind;

use super::Secret;
use super::oauth2::{OAuth2ConfigError, OAuth2Credential};

/// Why a credential was refused. Messages name variables and headers,
/// never a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// An environment variable name outside `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("`{0}` is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)")]
    EnvName(String),
    /// An environment variable value with a NUL byte.
    #[error("the value of `{0}` contains a NUL byte")]
    EnvNul(String),
    /// `env:` without `=`.
    #[error("an env credential is env:VAR=VALUE")]
    EnvShape,
    /// `header:` without a second `:`.
    #[error("a header credential is header:Header-Name:VALUE")]
    HeaderShape,
    /// `basic:` without a second `:`.
    #[error("a basic credential is basic:USER:PASS")]
    BasicShape,
    /// A kind gnapd does not know.
    #[error(
        "a credential is bearer:VALUE, header:Header-Name:VALUE, basic:USER:PASS, oauth2:{{JSON}}, env:VAR=VALUE or none"
    )]
    UnknownKind,
    /// An `env` credential with no variable.
    #[error("an env credential needs at least one variable")]
    EnvEmpty,
    /// One variable given twice.
    #[error("the variable `{0}` is given twice")]
    EnvTwice(String),
    /// Two credentials for one upstream that do not merge.
    #[error("only env credentials may be given more than once")]
    NotMergeable,
    /// A header name that is invalid or that gnapd sets itself.
    #[error("`{0}` cannot carry an upstream credential")]
    HeaderName(String),
    /// A header value that is not a valid header value.
    #[error("the value for header `{0}` is not a valid header value")]
    HeaderValue(String),
    /// A basic credential's user with a `:`.
    #[error("a basic credential's user may not contain `:`")]
    BasicUserColon,
    /// An opened set whose secret is not UTF-8.
    #[error("a credential set's secret is not UTF-8")]
    SetNotUtf8,
    /// An opened header set without its header name.
    #[error("a header credential set has no header name")]
    SetNoHeaderName,
    /// An opened basic set that is not `USER:PASS`.
    #[error("a basic credential set is not USER:PASS")]
    SetNotUserPass,
    /// An opened env set that is not a JSON object of strings.
    #[error("an env credential set is not a JSON object of strings")]
    SetNotEnv,
    /// An `oauth2` credential's own problem.
    #[error(transparent)]
    OAuth2(#[from] OAuth2ConfigError),
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
pub(super) fn check_env_var(name: &str, value: &str) -> Result<(), CredentialError> {
    if !valid_env_name(name) {
        return Err(CredentialError::EnvName(name.to_owned()));
    }
    if value.contains('\0') {
        return Err(CredentialError::EnvNul(name.to_owned()));
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
    pub fn parse(spec: &str) -> Result<Self, CredentialError> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        match kind {
            "none" if rest.is_empty() => Ok(Self::None),
            "env" => {
                let (name, value) = rest.split_once('=').ok_or(CredentialError::EnvShape)?;
                check_env_var(name, value)?;
                Ok(Self::Env(BTreeMap::from([(
                    name.to_owned(),
                    Secret::new(value),
                )])))
            }
            "bearer" if !rest.is_empty() => Ok(Self::Bearer(Secret::new(rest))),
            "header" => {
                let (name, value) = rest.split_once(':').ok_or(CredentialError::HeaderShape)?;
                Self::header(name, Secret::new(value))
            }
            "basic" => {
                let (user, password) = rest.split_once(':').ok_or(CredentialError::BasicShape)?;
                Ok(Self::Basic {
                    user: user.to_owned(),
                    password: Secret::new(password),
                })
            }
            "oauth2" => Ok(Self::OAuth2(Box::new(OAuth2Credential::from_json(rest)?))),
            _ => Err(CredentialError::UnknownKind),
        }
    }

    /// An `env` credential from a map of variables, names and values checked.
    pub fn env(vars: BTreeMap<String, Secret>) -> Result<Self, CredentialError> {
        if vars.is_empty() {
            return Err(CredentialError::EnvEmpty);
        }
        for (name, value) in &vars {
            check_env_var(name, value.expose())?;
        }
        Ok(Self::Env(vars))
    }

    /// Two credentials given for one upstream on the command line: `env`
    /// variables collect into one set (a variable given twice is an error);
    /// any other pair is ambiguous and refused.
    pub fn merge(self, other: Self) -> Result<Self, CredentialError> {
        match (self, other) {
            (Self::Env(mut vars), Self::Env(more)) => {
                for (name, value) in more {
                    if vars.contains_key(&name) {
                        return Err(CredentialError::EnvTwice(name));
                    }
                    vars.insert(name, value);
                }
                Ok(Self::Env(vars))
            }
            _ => Err(CredentialError::NotMergeable),
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
    pub fn header(name: &str, value: Secret) -> Result<Self, CredentialError> {
        let lower = name.to_ascii_lowercase();
        if hyper::header::HeaderName::from_bytes(lower.as_bytes()).is_err()
            || RESERVED.contains(&lower.as_str())
        {
            return Err(CredentialError::HeaderName(name.to_owned()));
        }
        if hyper::header::HeaderValue::from_str(value.expose()).is_err() {
            return Err(CredentialError::HeaderValue(name.to_owned()));
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
    ) -> Result<Self, CredentialError> {
        let secret = std::str::from_utf8(secret).map_err(|_| CredentialError::SetNotUtf8)?;
        match kind {
            CredentialKind::Bearer => Ok(Self::Bearer(Secret::new(secret))),
            CredentialKind::Header => Self::header(
                header_name.ok_or(CredentialError::SetNoHeaderName)?,
                Secret::new(secret),
            ),
            CredentialKind::Basic => {
                let (user, password) = secret
                    .split_once(':')
                    .ok_or(CredentialError::SetNotUserPass)?;
                Ok(Self::Basic {
                    user: user.to_owned(),
                    password: Secret::new(password),
                })
            }
            CredentialKind::OAuth2 => {
                Ok(Self::OAuth2(Box::new(OAuth2Credential::from_json(secret)?)))
            }
            CredentialKind::Env => {
                let vars: BTreeMap<String, Secret> =
                    serde_json::from_str(secret).map_err(|_| CredentialError::SetNotEnv)?;
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
