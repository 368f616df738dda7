//! `gnapd serve` settings: a TOML file, overridden by flags, over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::authz::{AllowRule, AsConfig, Policy, RsRule};
use crate::http::DEFAULT_MAX_BODY;
use crate::upstream::credential::Credential;
use crate::upstream::server::{Upstream, UpstreamEntry};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./gnapd-data";

/// The TOML file. Every key is optional; unknown keys are an error, so a typo
/// cannot silently leave a default in force.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen = "127.0.0.1:8470"`
    pub listen: Option<SocketAddr>,
    /// `data_dir = "./gnapd-data"`
    pub data_dir: Option<PathBuf>,
    /// `public_url = "https://as.example.com"`
    pub public_url: Option<String>,
    /// `tls_cert = "cert.pem"` (PEM chain)
    pub tls_cert: Option<PathBuf>,
    /// `tls_key = "key.pem"` (PEM private key)
    pub tls_key: Option<PathBuf>,
    /// `dev = true`: approve everything (never in production).
    pub dev: Option<bool>,
    /// Access token lifetime, seconds.
    pub token_lifetime: Option<i64>,
    /// Grant lifetime, seconds.
    pub grant_lifetime: Option<i64>,
    /// `wait` for continuation calls, seconds.
    pub poll_wait: Option<u64>,
    /// Signature clock-skew allowance, seconds.
    pub max_skew: Option<i64>,
    /// Maximum signature age, seconds.
    pub max_age: Option<i64>,
    /// Request body limit, bytes.
    pub max_body: Option<usize>,
    /// Signatures the replay cache holds at once (default 4,000,000).
    pub replay_capacity: Option<usize>,
    /// `allow_bearer = true`: grant bearer tokens to clients that ask.
    pub allow_bearer: Option<bool>,
    /// `require_interaction = true`: every grant waits for a person.
    pub require_interaction: Option<bool>,
    /// Seconds an interaction (its user code) stays usable.
    pub interaction_lifetime: Option<i64>,
    /// `allow_private_push = true`: push finish messages may go to
    /// private, loopback and link-local addresses (tests, local dev).
    pub allow_private_push: Option<bool>,
    /// `operator_login = false`: no operator sign-in link; outside `--dev`
    /// the pages then decide only through `[login]` (or nobody: the admin
    /// decides on the server). On by default.
    pub operator_login: Option<bool>,
    /// Seconds an operator's browser session lasts (default 12 h).
    pub operator_session_lifetime: Option<i64>,
    /// `[[allow]]` rules.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// `[[resource_server]]`: the resource servers that may introspect
    /// tokens and register resource sets (RFC 9767), by key thumbprint.
    #[serde(default)]
    pub resource_server: Vec<RsRule>,
    /// `[[issuer]]`: OpenID providers whose ID tokens about the user are
    /// accepted as grant request assertions.
    #[serde(default)]
    pub issuer: Vec<IssuerEntry>,
    /// `[[assertion_rule]]`: decisions for users those ID tokens vouch for.
    #[serde(default)]
    pub assertion_rule: Vec<crate::authz::assertion::AssertionRule>,
    /// Seconds an upstream gets to answer (its response head) before the
    /// gateway answers 504.
    pub upstream_timeout: Option<u64>,
    /// `batch_signatures = false`: the gateway checks every call's signature
    /// alone instead of in batches under load (`crate::gateway::batching`).
    pub batch_signatures: Option<bool>,
    /// `[[upstream]]` MCP servers the gateway fronts.
    #[serde(default)]
    pub upstream: Vec<UpstreamEntry>,
    /// `master_key_file = "/etc/gnapd/master.key"`: the key (0600,
    /// base64url) that seals upstream credentials at rest.
    pub master_key_file: Option<PathBuf>,
    /// `upstream_ca_files = ["ca.pem"]`: CA certificates (PEM) trusted for
    /// HTTPS upstreams besides the system's roots.
    #[serde(default)]
    pub upstream_ca_files: Vec<PathBuf>,
    /// `[stdio]`: limits on the processes of stdio upstreams.
    #[serde(default)]
    pub stdio: StdioFile,
    /// `[login]`: who the person deciding on a consent page is (an OIDC
    /// login at an enterprise IdP; `crate::authz::login`).
    pub login: Option<crate::authz::login::LoginEntry>,
    /// `trusted_proxy = { header = "X-Forwarded-For", hops = 1 }`: the
    /// reverse proxy in front of gnapd, whose header names the client
    /// address user code attempts count by. Off by default: the header is
    /// then ignored.
    pub trusted_proxy: Option<crate::http::client_address::TrustedProxyEntry>,
    /// `user_code_failure_budget = 1000`: failed user code entries allowed
    /// to all addresses together per 10 minutes.
    pub user_code_failure_budget: Option<u32>,
    /// `metrics_listen = "127.0.0.1:9100"` (a listener of their own),
    /// `"off"`, or `"main"` (the default: beside the AS and the gateway).
    pub metrics_listen: Option<crate::http::metrics::MetricsListen>,
    // Bounds on connections, sign-ins and sessions (issue 14).
    /// `[connections]`: how many client connections are held, and the
    /// deadlines on what clients send (`crate::http::limits`).
    #[serde(default)]
    pub connections: crate::http::limits::ConnectionsFile,
    /// `[sign_ins]`: sign-ins under way (login, connecting an upstream)
    /// per grant, per address and in all (`crate::upstream::oauth_client`).
    #[serde(default)]
    pub sign_ins: crate::upstream::oauth_client::SignInsFile,
    /// `[sessions]`: MCP sessions the gateway remembers, in all and per
    /// agent key, and when an unused one may give its place
    /// (`crate::gateway::sessions`).
    #[serde(default)]
    pub sessions: crate::gateway::sessions::SessionsFile,
    // Bounds on requests and the state they create (`authz::limits`;
    // defaults there). Rates are `{ burst = N, per_minute = M }`.
    /// Signatures of keys nobody approved the replay memory holds at once
    /// (grant endpoint, continuations of unapproved grants).
    pub replay_capacity_unapproved: Option<usize>,
    /// Signatures one key may hold in the bound-token budget.
    pub replay_key_quota: Option<usize>,
    /// Signatures one key may hold in the unapproved budget.
    pub replay_key_quota_unapproved: Option<usize>,
    /// Grant requests per source address (IPv6 per /64).
    pub grant_rate_per_address: Option<crate::authz::limits::RateLimit>,
    /// Grant requests per key.
    pub grant_rate_per_key: Option<crate::authz::limits::RateLimit>,
    /// Calls on continuation URIs per source address.
    pub continue_rate_per_address: Option<crate::authz::limits::RateLimit>,
    /// Page requests (the user code form included) per source address.
    pub page_rate_per_address: Option<crate::authz::limits::RateLimit>,
    /// Grants waiting for a person, per key.
    pub pending_per_key: Option<usize>,
    /// Grants waiting for a person, per source address.
    pub pending_per_address: Option<usize>,
    /// Grants waiting for a person, in all.
    pub pending_total: Option<usize>,
    /// Bytes of request one pending grant keeps (as stored).
    pub pending_request_max_bytes: Option<usize>,
}

/// The `[stdio]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdioFile {
    /// `max_children = 16`: most stdio upstream processes at once (one per
    /// MCP session); past it, `initialize` gets 503 with `Retry-After`.
    pub max_children: Option<usize>,
    /// `idle_timeout = 300`: seconds a session may go without traffic (and
    /// without a request in flight) before its process is stopped.
    pub idle_timeout: Option<u64>,
    /// `max_children_per_address = 12`: most processes started for calls
    /// from one client address (an IPv6 /64); default three quarters of
    /// `max_children`, rounded up.
    pub max_children_per_address: Option<usize>,
}

/// An `[[issuer]]` as the file writes it:
///
/// ```toml
/// [[issuer]]
/// issuer = "https://idp.example.com"
/// audience = "gnapd"
/// jwks_file = "/etc/gnapd/idp-jwks.json"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    /// The issuer identifier the ID tokens carry in `iss`.
    pub issuer: String,
    /// The audience they must name (gnapd's client id at the provider).
    pub audience: String,
    /// The provider's public keys (a JWKS document).
    pub jwks_file: PathBuf,
}

/// Why the settings could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML for these settings.
    #[error("invalid config {0}: {1}")]
    Parse(PathBuf, String),
    /// A value is out of range or inconsistent.
    #[error("invalid setting: {0}")]
    Invalid(String),
}

/// A refused value, said by its own error's message.
fn invalid(error: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(error.to_string())
}

/// Flags that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--public-url`
    pub public_url: Option<String>,
    /// `--tls-cert`
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    pub tls_key: Option<PathBuf>,
    /// `--dev`
    pub dev: bool,
    /// `--require-interaction`
    pub require_interaction: bool,
    /// `--upstream NAME=URL` (adds an upstream, or replaces the file's URL).
    pub upstreams: Vec<(String, String)>,
    /// `--upstream-credential NAME=SPEC`, parsed (`Debug` redacts).
    pub upstream_credentials: Vec<(String, Credential)>,
    /// `--master-key-file`
    pub master_key_file: Option<PathBuf>,
    /// `--upstream-ca` (added to the file's).
    pub upstream_ca_files: Vec<PathBuf>,
    /// `--stdio-max-children`
    pub stdio_max_children: Option<usize>,
    /// `--stdio-idle-timeout` (seconds)
    pub stdio_idle_timeout: Option<u64>,
    /// `--no-signature-batching`
    pub no_signature_batching: bool,
    /// `--metrics-listen ADDR|off|main`
    pub metrics_listen: Option<crate::http::metrics::MetricsListen>,
}

/// The assembled settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where sled lives.
    pub data_dir: PathBuf,
    /// The public URL, if configured; else derived from the bound address.
    pub public_url: Option<String>,
    /// Certificate chain and key, for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Development mode.
    pub dev: bool,
    /// Request body limit.
    pub max_body: usize,
    /// Rate limits, caps and replay budgets (`authz::limits`): past one,
    /// requests are refused (fail closed) with `Retry-After`.
    pub limits: crate::authz::limits::Limits,
    /// Approval rules.
    pub policy: Policy,
    /// The MCP servers behind the gateway.
    pub upstreams: Vec<Upstream>,
    /// How long an upstream gets to answer.
    pub upstream_timeout: std::time::Duration,
    /// Whether the gateway checks signatures in batches under load.
    pub batch_signatures: bool,
    /// The master key file (flag, else file); `GNAPD_MASTER_KEY` is read at
    /// serve start when neither is given.
    pub master_key_file: Option<PathBuf>,
    /// CA certificate files trusted for HTTPS upstreams (file, then flags).
    pub upstream_ca_files: Vec<PathBuf>,
    /// Limits on stdio upstreams' processes.
    pub stdio: crate::gateway::stdio::Limits,
    /// The login of the person deciding, when `[login]` configures one.
    pub login: Option<std::sync::Arc<crate::authz::login::Login>>,
    /// The operator's sign-in (`crate::authz::operator`), unless
    /// `operator_login = false`.
    pub operator: Option<crate::authz::operator::OperatorSettings>,
    /// The reverse proxy whose client address header is believed.
    pub trusted_proxy: Option<crate::http::client_address::TrustedProxy>,
    /// Where `/metrics` is served.
    pub metrics_listen: crate::http::metrics::MetricsListen,
    // Bounds on connections, sign-ins and sessions (issue 14).
    /// Client connection bounds and request deadlines.
    pub connections: crate::http::limits::ConnectionLimits,
    /// Bounds on sign-ins under way.
    pub sign_ins: crate::upstream::oauth_client::SignInBounds,
    /// Bounds on the gateway's session table.
    pub sessions: crate::gateway::sessions::Bounds,
    /// AS settings other than the public URL.
    file: FileConfig,
}

impl ServeConfig {
    /// Reads `path` (if given) and applies `flags`.
    pub fn load(path: Option<&Path>, flags: Overrides) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read(path.to_owned(), e))?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse(path.to_owned(), e.to_string()))?
            }
            None => FileConfig::default(),
        };
        Self::assemble(file, flags)
    }

    /// Merges flags over a parsed file over defaults.
    pub fn assemble(mut file: FileConfig, flags: Overrides) -> Result<Self, ConfigError> {
        let listen = match flags.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("default listen address".into()))?,
        };
        let tls = match (
            flags.tls_cert.or(file.tls_cert.take()),
            flags.tls_key.or(file.tls_key.take()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "tls_cert and tls_key go together".into(),
                ));
            }
        };
        let public_url = flags.public_url.or(file.public_url.take());
        if let Some(url) = &public_url {
            let parsed = crate::proto::httpsig::message::TargetUri::parse(url).map_err(|_| {
                ConfigError::Invalid(format!("public_url {url} is not an absolute URL"))
            })?;
            if !matches!(parsed.normalized_scheme().as_str(), "http" | "https")
                || parsed.query.is_some()
            {
                return Err(ConfigError::Invalid(format!(
                    "public_url {url} must be http(s) without a query"
                )));
            }
        }
        for (name, value) in [
            ("token_lifetime", file.token_lifetime),
            ("grant_lifetime", file.grant_lifetime),
            ("max_age", file.max_age),
            ("interaction_lifetime", file.interaction_lifetime),
            ("operator_session_lifetime", file.operator_session_lifetime),
        ] {
            if value.is_some_and(|v| v <= 0) {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        let limits = limits(&file)?;
        if file.upstream_timeout == Some(0) {
            return Err(ConfigError::Invalid(
                "upstream_timeout must be positive".into(),
            ));
        }
        let stdio_defaults = crate::gateway::stdio::Limits::default();
        let stdio = crate::gateway::stdio::Limits {
            max_children: flags
                .stdio_max_children
                .or(file.stdio.max_children)
                .unwrap_or(stdio_defaults.max_children),
            idle_timeout: flags
                .stdio_idle_timeout
                .or(file.stdio.idle_timeout)
                .map(std::time::Duration::from_secs)
                .unwrap_or(stdio_defaults.idle_timeout),
            max_children_per_address: file.stdio.max_children_per_address,
        };
        if stdio.max_children == 0
            || stdio.idle_timeout.is_zero()
            || stdio.max_children_per_address == Some(0)
        {
            return Err(ConfigError::Invalid(
                "stdio max_children, max_children_per_address and idle_timeout must be positive"
                    .into(),
            ));
        }
        let dev = flags.dev || file.dev.unwrap_or(false);
        let issuers = std::mem::take(&mut file.issuer)
            .into_iter()
            .map(|entry| {
                let jwks = std::fs::read(&entry.jwks_file)
                    .map_err(|e| ConfigError::Read(entry.jwks_file.clone(), e))?;
                crate::authz::assertion::TrustedIssuer::from_jwks(
                    &entry.issuer,
                    &entry.audience,
                    &jwks,
                )
                .map_err(|e| ConfigError::Invalid(format!("issuer `{}`: {e}", entry.issuer)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(rule) = file
            .assertion_rule
            .iter()
            .find(|r| !issuers.iter().any(|i| i.issuer == r.issuer))
        {
            return Err(ConfigError::Invalid(format!(
                "an assertion_rule names issuer `{}`, which no [[issuer]] configures",
                rule.issuer
            )));
        }
        let sign_ins = crate::upstream::oauth_client::SignInBounds::from_file(&file.sign_ins)
            .map_err(invalid)?;
        let login = match file.login.take() {
            Some(entry) => {
                let crate::authz::login::LoginEntry::Oidc { jwks_file, .. } = &entry;
                let jwks = std::fs::read(jwks_file)
                    .map_err(|e| ConfigError::Read(jwks_file.clone(), e))?;
                let login = crate::authz::login::Login::new(entry, &jwks)
                    .map_err(|e| ConfigError::Invalid(format!("[login]: {e}")))?
                    .with_sign_in_bounds(sign_ins);
                Some(std::sync::Arc::new(login))
            }
            None => None,
        };
        let operator = file.operator_login.unwrap_or(true).then(|| {
            let mut settings = crate::authz::operator::OperatorSettings::default();
            if let Some(lifetime) = file.operator_session_lifetime {
                settings.session_lifetime = lifetime;
            }
            settings
        });
        let trusted_proxy = match &file.trusted_proxy {
            Some(entry) => Some(
                crate::http::client_address::TrustedProxy::from_entry(entry).map_err(invalid)?,
            ),
            None => None,
        };
        if file.user_code_failure_budget == Some(0) {
            return Err(ConfigError::Invalid(
                "user_code_failure_budget must be positive".into(),
            ));
        }
        // Bounds on connections, sign-ins and sessions (issue 14).
        let connections = crate::http::limits::ConnectionLimits::from_file(
            &file.connections,
            trusted_proxy.is_some(),
        )
        .map_err(invalid)?;
        let sessions =
            crate::gateway::sessions::Bounds::from_file(&file.sessions).map_err(invalid)?;
        let master_key_file = flags.master_key_file.or(file.master_key_file.take());
        let upstreams = assemble_upstreams(
            std::mem::take(&mut file.upstream),
            flags.upstreams,
            flags.upstream_credentials,
        )?;
        Ok(Self {
            listen,
            data_dir: flags
                .data_dir
                .or(file.data_dir.take())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            public_url,
            tls,
            dev,
            max_body: file.max_body.unwrap_or(DEFAULT_MAX_BODY),
            limits,
            policy: Policy {
                dev,
                require_interaction: flags.require_interaction
                    || file.require_interaction.unwrap_or(false),
                allow: std::mem::take(&mut file.allow),
                allow_bearer: file.allow_bearer.unwrap_or(false),
                resource_servers: std::mem::take(&mut file.resource_server),
                issuers,
                assertion_rules: std::mem::take(&mut file.assertion_rule),
            },
            upstreams,
            batch_signatures: !flags.no_signature_batching && file.batch_signatures.unwrap_or(true),
            upstream_timeout: std::time::Duration::from_secs(
                file.upstream_timeout
                    .unwrap_or(crate::gateway::forward::RESPONSE_TIMEOUT.as_secs()),
            ),
            master_key_file,
            upstream_ca_files: std::mem::take(&mut file.upstream_ca_files)
                .into_iter()
                .chain(flags.upstream_ca_files)
                .collect(),
            stdio,
            login,
            operator,
            trusted_proxy,
            metrics_listen: flags
                .metrics_listen
                .or(file.metrics_listen)
                .unwrap_or_default(),
            connections,
            sign_ins,
            sessions,
            file,
        })
    }

    /// The AS settings, once the public URL is known.
    pub fn as_config(&self, public_url: &str) -> AsConfig {
        let mut config = AsConfig::new(public_url);
        if let Some(v) = self.file.token_lifetime {
            config.token_lifetime = v;
        }
        if let Some(v) = self.file.grant_lifetime {
            config.grant_lifetime = v;
        }
        if let Some(v) = self.file.poll_wait {
            config.poll_wait = v;
        }
        if let Some(v) = self.file.max_skew {
            config.profile.max_skew = v;
        }
        if let Some(v) = self.file.max_age {
            config.profile.max_age = v;
        }
        if let Some(v) = self.file.interaction_lifetime {
            config.interaction_lifetime = v;
        }
        config.allow_private_push = self.file.allow_private_push.unwrap_or(false);
        if let Some(v) = self.file.user_code_failure_budget {
            config.user_code_failure_budget = v;
        }
        config.limits = self.limits;
        config
    }
}

/// The file's upstreams, then the flags': `--upstream` adds one (or moves an
/// existing one to a new URL or command, keeping its credential), and
/// `--upstream-credential` sets the credential of a named one (several `env`
/// ones for one upstream collect into one set). Last, every credential must
/// fit its upstream's transport.
fn assemble_upstreams(
    entries: Vec<UpstreamEntry>,
    specs: Vec<(String, String)>,
    credentials: Vec<(String, Credential)>,
) -> Result<Vec<Upstream>, ConfigError> {
    let mut upstreams: Vec<Upstream> = Vec::new();
    for entry in entries {
        if upstreams.iter().any(|u| u.name == entry.name) {
            return Err(ConfigError::Invalid(format!(
                "upstream `{}` is defined twice",
                entry.name
            )));
        }
        upstreams.push(entry.into_upstream().map_err(invalid)?);
    }
    for (name, spec) in specs {
        let credential = match upstreams.iter().position(|u| u.name == name) {
            Some(i) => upstreams.remove(i).credential,
            None => Credential::None,
        };
        upstreams.push(Upstream::from_spec(&name, &spec, credential).map_err(invalid)?);
    }
    let mut given: Vec<(String, Credential)> = Vec::new();
    for (name, credential) in credentials {
        match given.iter().position(|(n, _)| *n == name) {
            Some(i) => {
                let (_, earlier) = given.remove(i);
                let merged = earlier.merge(credential).map_err(|e| {
                    ConfigError::Invalid(format!("--upstream-credential for `{name}`: {e}"))
                })?;
                given.push((name, merged));
            }
            None => given.push((name, credential)),
        }
    }
    for (name, credential) in given {
        let upstream = upstreams
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "a credential is given for upstream `{name}`, which is not configured"
                ))
            })?;
        upstream.credential = credential;
    }
    for upstream in &upstreams {
        upstream.check_credential().map_err(invalid)?;
    }
    Ok(upstreams)
}

/// The file's bounds over the defaults of `authz::limits`; every number
/// positive (a zero would refuse everything).
fn limits(file: &FileConfig) -> Result<crate::authz::limits::Limits, ConfigError> {
    let mut limits = crate::authz::limits::Limits::default();
    let replay = &mut limits.replay;
    let pending = &mut limits.pending;
    for (name, value, slot) in [
        (
            "replay_capacity",
            file.replay_capacity,
            &mut replay.bound.capacity,
        ),
        (
            "replay_key_quota",
            file.replay_key_quota,
            &mut replay.bound.key_quota,
        ),
        (
            "replay_capacity_unapproved",
            file.replay_capacity_unapproved,
            &mut replay.unapproved.capacity,
        ),
        (
            "replay_key_quota_unapproved",
            file.replay_key_quota_unapproved,
            &mut replay.unapproved.key_quota,
        ),
        (
            "pending_per_key",
            file.pending_per_key,
            &mut pending.per_key,
        ),
        (
            "pending_per_address",
            file.pending_per_address,
            &mut pending.per_address,
        ),
        ("pending_total", file.pending_total, &mut pending.total),
        (
            "pending_request_max_bytes",
            file.pending_request_max_bytes,
            &mut pending.request_bytes,
        ),
    ] {
        match value {
            Some(0) => return Err(ConfigError::Invalid(format!("{name} must be positive"))),
            Some(v) => *slot = v,
            None => {}
        }
    }
    for (name, value, slot) in [
        (
            "grant_rate_per_address",
            file.grant_rate_per_address,
            &mut limits.grant_per_address,
        ),
        (
            "grant_rate_per_key",
            file.grant_rate_per_key,
            &mut limits.grant_per_key,
        ),
        (
            "continue_rate_per_address",
            file.continue_rate_per_address,
            &mut limits.continue_per_address,
        ),
        (
            "page_rate_per_address",
            file.page_rate_per_address,
            &mut limits.pages_per_address,
        ),
    ] {
        if let Some(rate) = value {
            rate.check(name).map_err(invalid)?;
            *slot = rate;
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let file: FileConfig = toml::from_str(
            "listen = \"127.0.0.1:9000\"\npoll_wait = 1\n[[allow]]\nthumbprint = \"abc\"\naccess = [\"mcp:github\"]\n[[resource_server]]\nthumbprint = \"rs1\"\naccess = [\"type:photo-api\"]\n",
        )
        .unwrap();
        let flags = Overrides {
            listen: Some("127.0.0.1:9001".parse().unwrap()),
            dev: true,
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(file, flags).unwrap();
        assert_eq!(config.listen.port(), 9001);
        assert!(config.dev && config.policy.dev);
        assert_eq!(config.policy.allow.len(), 1);
        assert_eq!(config.policy.resource_servers[0].access, ["type:photo-api"]);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.as_config("http://x").poll_wait, 1);
    }

    #[test]
    fn upstreams_come_from_the_file_and_the_flags() {
        let file: FileConfig = toml::from_str(
            "[[upstream]]\nname = \"gh\"\nurl = \"http://127.0.0.1:1/mcp\"\ncredential = { kind = \"header\", name = \"X-Api-Key\", value = \"k3y\" }\n",
        )
        .unwrap();
        let flags = Overrides {
            upstreams: vec![
                ("gh".into(), "http://127.0.0.1:2/mcp".into()),
                ("slack".into(), "http://127.0.0.1:3/mcp".into()),
            ],
            upstream_credentials: vec![(
                "slack".into(),
                Credential::parse("bearer:t0k3n").unwrap(),
            )],
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(file, flags).unwrap();
        assert!(!format!("{config:?}").contains("k3y") && !format!("{config:?}").contains("t0k3n"));
        let gh = config.upstreams.iter().find(|u| u.name == "gh").unwrap();
        assert_eq!(gh.url(), Some("http://127.0.0.1:2/mcp"));
        assert!(matches!(gh.credential, Credential::Header { .. }));
        let slack = config.upstreams.iter().find(|u| u.name == "slack").unwrap();
        assert!(matches!(slack.credential, Credential::Bearer(_)));

        let orphan = Overrides {
            upstream_credentials: vec![("nope".into(), Credential::None)],
            ..Overrides::default()
        };
        assert!(ServeConfig::assemble(FileConfig::default(), orphan).is_err());
        let twice: FileConfig = toml::from_str(
            "[[upstream]]\nname = \"a\"\nurl = \"http://x/\"\n[[upstream]]\nname = \"a\"\nurl = \"http://y/\"\n",
        )
        .unwrap();
        assert!(ServeConfig::assemble(twice, Overrides::default()).is_err());
    }

    #[test]
    fn stdio_upstreams_collect_env_credentials_and_refuse_mismatched_kinds() {
        let flags = Overrides {
            upstreams: vec![("everything".into(), "stdio:node server.js stdio".into())],
            upstream_credentials: vec![
                (
                    "everything".into(),
                    Credential::parse("env:API_KEY=a").unwrap(),
                ),
                (
                    "everything".into(),
                    Credential::parse("env:OTHER=b").unwrap(),
                ),
            ],
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(FileConfig::default(), flags).unwrap();
        let vars: Vec<_> = config.upstreams[0].credential.env_vars().collect();
        assert_eq!(vars, [("API_KEY", "a"), ("OTHER", "b")]);
        assert_eq!(config.stdio, crate::gateway::stdio::Limits::default());

        let mismatched = [
            ("stdio:node s.js", "bearer:MISMATCH-SECRET"),
            ("http://127.0.0.1:1/mcp", "env:API_KEY=MISMATCH-SECRET"),
        ];
        for (spec, credential) in mismatched {
            let flags = Overrides {
                upstreams: vec![("u".into(), spec.into())],
                upstream_credentials: vec![("u".into(), Credential::parse(credential).unwrap())],
                ..Overrides::default()
            };
            let err = ServeConfig::assemble(FileConfig::default(), flags)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("upstream `u`") && !err.contains("MISMATCH-SECRET"),
                "{err}"
            );
        }
        // A file's stdio credential meets a flag that moves the upstream to HTTP.
        let file: FileConfig = toml::from_str(
            "[stdio]\nmax_children = 2\nidle_timeout = 7\n[[upstream]]\nname = \"e\"\ncommand = \"node\"\ncredential = { kind = \"env\", vars = { K = \"v\" } }\n",
        )
        .unwrap();
        let config = ServeConfig::assemble(file.clone(), Overrides::default()).unwrap();
        assert_eq!(config.stdio.max_children, 2);
        assert_eq!(config.stdio.idle_timeout, std::time::Duration::from_secs(7));
        let flags = Overrides {
            upstreams: vec![("e".into(), "http://127.0.0.1:1/mcp".into())],
            stdio_idle_timeout: Some(9),
            ..Overrides::default()
        };
        assert!(ServeConfig::assemble(file.clone(), flags).is_err());
        let flags = Overrides {
            stdio_idle_timeout: Some(9),
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(file, flags).unwrap();
        assert_eq!(config.stdio.idle_timeout, std::time::Duration::from_secs(9));
        let zero: FileConfig = toml::from_str("[stdio]\nmax_children = 0\n").unwrap();
        assert!(ServeConfig::assemble(zero, Overrides::default()).is_err());
    }

    #[test]
    fn unknown_keys_and_half_tls_are_refused() {
        assert!(toml::from_str::<FileConfig>("lisen = \"x\"").is_err());
        let file = FileConfig {
            tls_cert: Some("c.pem".into()),
            ..FileConfig::default()
        };
        assert!(matches!(
            ServeConfig::assemble(file, Overrides::default()),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn trusted_proxy_is_off_by_default_and_checked_when_given() {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert!(config.trusted_proxy.is_none());
        assert_eq!(
            config.as_config("http://x").user_code_failure_budget,
            crate::authz::usercode::DEFAULT_FAILURE_BUDGET
        );
        let file: FileConfig = toml::from_str(
            "trusted_proxy = { header = \"X-Forwarded-For\", hops = 2 }\nuser_code_failure_budget = 50\n",
        )
        .unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert!(config.trusted_proxy.is_some());
        assert_eq!(config.as_config("http://x").user_code_failure_budget, 50);
        for bad in [
            "trusted_proxy = { header = \"X Forwarded\" }\n",
            "trusted_proxy = { header = \"X-Forwarded-For\", hops = 0 }\n",
            "user_code_failure_budget = 0\n",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            assert!(
                ServeConfig::assemble(file, Overrides::default()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn metrics_stay_on_the_main_listener_unless_moved_or_turned_off() {
        use crate::http::metrics::MetricsListen;
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(config.metrics_listen, MetricsListen::Main);
        let file: FileConfig = toml::from_str("metrics_listen = \"127.0.0.1:9100\"\n").unwrap();
        let config = ServeConfig::assemble(file.clone(), Overrides::default()).unwrap();
        assert_eq!(
            config.metrics_listen,
            MetricsListen::At("127.0.0.1:9100".parse().unwrap())
        );
        let flags = Overrides {
            metrics_listen: Some(MetricsListen::Off),
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(file, flags).unwrap();
        assert_eq!(config.metrics_listen, MetricsListen::Off);
        assert!(toml::from_str::<FileConfig>("metrics_listen = \"nowhere\"\n").is_err());
    }

    #[test]
    fn the_replay_capacity_defaults_to_four_million_and_must_be_positive() {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(config.limits.replay.bound.capacity, 4_000_000);
        let file: FileConfig = toml::from_str("replay_capacity = 100\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert_eq!(config.limits.replay.bound.capacity, 100);
        let file: FileConfig = toml::from_str("replay_capacity = 0\n").unwrap();
        assert!(matches!(
            ServeConfig::assemble(file, Overrides::default()),
            Err(ConfigError::Invalid(_))
        ));
    }
}
