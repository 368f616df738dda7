//! Upstreams and credentials as the TOML file writes them.

use super::*;

/// An upstream as the TOML file writes it (exactly one of `url` and
/// `command`):
///
/// ```toml
/// [[upstream]]
/// name = "github"
/// url = "http://127.0.0.1:9000/mcp"
/// credential = { kind = "bearer", token = "..." }
///
/// [[upstream]]
/// name = "everything"
/// command = "npx"
/// args = ["-y", "@modelcontextprotocol/server-everything"]
/// cwd = "/srv/mcp"                       # optional
/// env = { LOG_LEVEL = "info" }            # optional, plain (not secret)
/// credential = { kind = "env", vars = { API_KEY = "..." } }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamEntry {
    /// The upstream's name.
    pub name: String,
    /// Its Streamable HTTP URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The program of a stdio upstream.
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Its working directory.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// Its plain environment variables.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// How to authenticate there (default: none).
    #[serde(default)]
    pub credential: CredentialEntry,
    /// How a person connects it on the consent page (HTTP upstreams).
    #[serde(default)]
    pub connect: Option<Connect>,
}

impl UpstreamEntry {
    /// The upstream it describes (its credential not yet checked against
    /// the transport: flags may still replace either).
    pub fn into_upstream(self) -> Result<Upstream, UpstreamError> {
        let name = self.name;
        let credential = self.credential.into_credential()?;
        if let Some(connect) = &self.connect {
            if self.command.is_some() {
                return Err(invalid(&name, Problem::ConnectNeedsUrl));
            }
            connect.check().map_err(|e| invalid(&name, e))?;
        }
        let connect = self.connect;
        let upstream = match (self.url, self.command) {
            (Some(url), None) => {
                if self.args.is_some() || self.cwd.is_some() || self.env.is_some() {
                    return Err(invalid(&name, Problem::StdioSettings));
                }
                Upstream::new(&name, &url, credential)
            }
            (None, Some(command)) => Upstream::stdio(
                &name,
                StdioCommand {
                    command,
                    args: self.args.unwrap_or_default(),
                    cwd: self.cwd,
                    env: self.env.unwrap_or_default(),
                },
                credential,
            ),
            _ => Err(invalid(&name, Problem::UrlOrCommand)),
        }?;
        Ok(Upstream {
            connect,
            ..upstream
        })
    }
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
    /// `{ kind = "env", vars = { API_KEY = "..." } }` (stdio upstreams)
    Env {
        /// Variable names to values.
        vars: BTreeMap<String, Secret>,
    },
}

impl CredentialEntry {
    /// The credential it describes.
    pub fn into_credential(self) -> Result<Credential, CredentialError> {
        Ok(match self {
            Self::None => Credential::None,
            Self::Bearer { token } => Credential::Bearer(token),
            Self::Header { name, value } => Credential::header(&name, value)?,
            Self::Basic { user, .. } if user.contains(':') => {
                return Err(CredentialError::BasicUserColon);
            }
            Self::Basic { user, password } => Credential::Basic { user, password },
            Self::OAuth2(grant) => {
                grant.check()?;
                Credential::OAuth2(Box::new(grant))
            }
            Self::Env { vars } => Credential::env(vars)?,
        })
    }
}
