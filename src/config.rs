//! `gnapd serve` settings: a TOML file, overridden by flags, over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::authz::{AllowRule, AsConfig, Policy, RsRule};
use crate::http::DEFAULT_MAX_BODY;
use crate::upstream::credential::Credential;
use crate::upstream::server::{Upstream, UpstreamEntry};

mod file;
mod limits;
mod upstreams;

pub use file::FileConfig;
use limits::limits;
use upstreams::assemble_upstreams;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./gnapd-data";
/// Seconds between sweeps of the store unless `sweep_interval` says
/// otherwise: lapsed records wait at most this long past their expiry.
pub const DEFAULT_SWEEP_INTERVAL_SECS: u64 = 60;
/// The largest `store_cache_mb`: 64 GiB, beyond any machine gnapd is
/// sized for (and far from overflowing a byte count).
pub const MAX_STORE_CACHE_MB: u64 = 65_536;
/// The longest `sweep_interval`: a day. Longer lets lapsed records pile up
/// for nothing (and a timer that far away overflows the clock's range).
pub const MAX_SWEEP_INTERVAL_SECS: u64 = 86_400;

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

/// Interop mode answers anyone who reaches it with approvals, so it stays
/// on this machine: a loopback listener, a loopback public URL, no TLS
/// (which would only be there to serve others). `--interop-force` lifts it.
fn check_interop_is_local(
    listen: SocketAddr,
    tls: bool,
    public_url: Option<&str>,
) -> Result<(), ConfigError> {
    let refuse = |why: String| {
        Err(ConfigError::Invalid(format!(
            "--interop serves only this machine: {why} (add --interop-force to run it anyway)"
        )))
    };
    if !listen.ip().is_loopback() {
        return refuse(format!("the listen address {listen} is not loopback"));
    }
    if tls {
        return refuse("TLS is configured".into());
    }
    if let Some(url) = public_url {
        let authority = crate::proto::httpsig::message::TargetUri::parse(url)
            .map(|u| u.normalized_authority())
            .unwrap_or_default();
        // `host[:port]`, `[v6][:port]`; userinfo has no place in a public URL.
        let host = match authority.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or_default(),
            None => authority
                .rsplit_once(':')
                .map_or(authority.as_str(), |(h, _)| h),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return refuse(format!("the public URL {url} is not on loopback"));
        }
    }
    Ok(())
}

/// Where the AS keeps its records.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// sled: at the path `store = "sled:PATH"` names, else in
    /// `<data_dir>/store` (the default).
    Sled(Option<PathBuf>),
    /// A PostgreSQL database (`store = "postgres://…"`).
    Postgres(Box<crate::store::postgres::Conninfo>),
}

/// The prefix of a sled store's location.
const SLED_PREFIX: &str = "sled:";

impl StoreLocation {
    /// Reads `store`/`--store`: `sled:PATH`, a PostgreSQL conninfo, or
    /// nothing for sled in the data dir. The error never repeats the
    /// text: it may hold a password.
    fn from_setting(text: Option<&str>) -> Result<Self, ConfigError> {
        use crate::store::postgres::Conninfo;
        let Some(text) = text else {
            return Ok(Self::Sled(None));
        };
        if let Some(path) = text.strip_prefix(SLED_PREFIX) {
            if path.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "store = \"sled:PATH\" needs the path of the sled database".into(),
                ));
            }
            return Ok(Self::Sled(Some(PathBuf::from(path))));
        }
        if !Conninfo::looks_like(text) {
            return Err(ConfigError::Invalid(
                "store must be sled:PATH or a PostgreSQL conninfo (postgres://… or key=value …); \
                 leave it out to keep the store in data_dir"
                    .into(),
            ));
        }
        Conninfo::parse(text)
            .map(|c| Self::Postgres(Box::new(c)))
            .map_err(|e| ConfigError::Invalid(format!("store: {e}")))
    }

    /// Where the sled database is, for a server with `data_dir`; `None`
    /// on PostgreSQL.
    pub fn sled_path(&self, data_dir: &Path) -> Option<PathBuf> {
        match self {
            Self::Sled(Some(path)) => Some(path.clone()),
            Self::Sled(None) => Some(data_dir.join("store")),
            Self::Postgres(_) => None,
        }
    }
}

/// The environment variable that may name the store: below `--store`,
/// above the config file's `store`.
pub const STORE_ENV: &str = "GNAPD_STORE";

/// `--store`, else [`STORE_ENV`] (set but empty counts as unset).
pub fn store_flag_or_env(flag: Option<String>) -> Option<String> {
    flag.or_else(|| {
        std::env::var(STORE_ENV)
            .ok()
            .filter(|text| !text.trim().is_empty())
    })
}

/// Where `gnapd store …` looks: the store and the data dir, from the
/// flags (`store_flag` already [`store_flag_or_env`]), then the file, then
/// the defaults. Nothing else in the file is assembled: a maintenance
/// command needs no upstream, key or listener.
pub fn store_location(
    path: Option<&Path>,
    store_flag: Option<String>,
    data_dir_flag: Option<PathBuf>,
) -> Result<(StoreLocation, PathBuf), ConfigError> {
    let mut file = read_file(path)?;
    let store = StoreLocation::from_setting(store_flag.or(file.store.take()).as_deref())?;
    let data_dir = data_dir_flag
        .or(file.data_dir.take())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    Ok((store, data_dir))
}

/// The config file at `path`, parsed; none is the defaults.
fn read_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e.to_string()))
}

/// Reads `role`/`--role`. A node that serves only part of gnapd needs the
/// other part running elsewhere on the same records: a PostgreSQL store.
/// sled is one process's (it locks its directory), so there a split role
/// could only answer with tokens nobody else can issue or use.
fn role_of(setting: Option<&str>, store: &StoreLocation) -> Result<crate::http::Role, ConfigError> {
    use crate::http::Role;
    let role = match setting {
        None => Role::All,
        Some(text) => Role::parse(text).ok_or_else(|| {
            ConfigError::Invalid(format!("role must be all, as or gateway, not {text:?}"))
        })?,
    };
    if role != Role::All && matches!(store, StoreLocation::Sled(_)) {
        return Err(ConfigError::Invalid(format!(
            "role = {:?} needs a store the other nodes share (store = \"postgres://…\"); \
             with sled in data_dir a node serves everything",
            role.name()
        )));
    }
    Ok(role)
}

/// Flags that override the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--store` (a PostgreSQL conninfo)
    pub store: Option<String>,
    /// `--role` (`all`, `as`, `gateway`)
    pub role: Option<String>,
    /// `--public-url`
    pub public_url: Option<String>,
    /// `--tls-cert`
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    pub tls_key: Option<PathBuf>,
    /// `--tls-client-certs`
    pub tls_client_certs: bool,
    /// `--dev`
    pub dev: bool,
    /// `--require-interaction`
    pub require_interaction: bool,
    /// `--interop`: dev mode for conformance suites ([`Interop`]).
    pub interop: bool,
    /// `--interop-force`: interop mode even off loopback or with TLS.
    pub interop_force: bool,
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
    /// The TLS listener asks for client certificates (`mtls`).
    pub tls_client_certs: bool,
    /// Development mode.
    pub dev: bool,
    /// Interop mode (`--interop`, implies dev): suites may complete every
    /// interaction through an automation endpoint, and `/rs/echo` is served.
    pub interop: bool,
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
    /// How often lapsed records are swept from the store.
    pub sweep_interval: std::time::Duration,
    /// sled's page cache, in bytes (`store_cache_mb`).
    pub store_cache_bytes: u64,
    /// Where the store is (`store`, `--store`).
    pub store: StoreLocation,
    /// What this node answers (`role`, `--role`).
    pub role: crate::http::Role,
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
    /// The external OAuth AS whose access tokens the gateway accepts
    /// (`[external_oauth_as]`); `Debug` shows no secret.
    pub external_oauth_as: Option<crate::gateway::external::ExternalAsSettings>,
    /// AS settings other than the public URL.
    file: FileConfig,
}

impl ServeConfig {
    /// Reads `path` (if given) and applies `flags`.
    pub fn load(path: Option<&Path>, flags: Overrides) -> Result<Self, ConfigError> {
        Self::assemble(read_file(path)?, flags)
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
        let tls_client_certs =
            flags.tls_client_certs || file.tls_client_certificates.unwrap_or(false);
        if tls_client_certs && tls.is_none() {
            return Err(ConfigError::Invalid(
                "tls_client_certificates needs tls_cert and tls_key: client certificates \
                 come in the TLS handshake"
                    .into(),
            ));
        }
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
            ("oauth_token_lifetime", file.oauth_token_lifetime),
        ] {
            if value.is_some_and(|v| v <= 0) {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        let limits = limits(&file)?;
        crate::authz::oauth::ConfiguredClients::new(&file.oauth_client).map_err(invalid)?;
        if file
            .store_cache_mb
            .is_some_and(|mb| !(1..=MAX_STORE_CACHE_MB).contains(&mb))
        {
            return Err(ConfigError::Invalid(format!(
                "store_cache_mb must be between 1 and {MAX_STORE_CACHE_MB}"
            )));
        }
        if file
            .sweep_interval
            .is_some_and(|s| !(1..=MAX_SWEEP_INTERVAL_SECS).contains(&s))
        {
            return Err(ConfigError::Invalid(format!(
                "sweep_interval must be between 1 and {MAX_SWEEP_INTERVAL_SECS} seconds"
            )));
        }
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
        let interop = flags.interop;
        if interop && !flags.interop_force {
            check_interop_is_local(listen, tls.is_some(), public_url.as_deref())?;
        }
        let dev = interop || flags.dev || file.dev.unwrap_or(false);
        if interop {
            // The suite's finish listener is on loopback.
            file.allow_private_push = Some(true);
        }
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
        let external_oauth_as = file
            .external_oauth_as
            .as_ref()
            .map(crate::gateway::external::ExternalAsEntry::to_settings)
            .transpose()
            .map_err(ConfigError::Invalid)?;
        let master_key_file = flags.master_key_file.or(file.master_key_file.take());
        // Taken out of the file (kept in the config, `Debug`): it may hold a
        // password, which only `Conninfo` keeps from the log.
        let file_store = file.store.take();
        let store = StoreLocation::from_setting(flags.store.as_deref().or(file_store.as_deref()))?;
        let role = role_of(flags.role.as_deref().or(file.role.as_deref()), &store)?;
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
            tls_client_certs,
            dev,
            interop,
            max_body: file.max_body.unwrap_or(DEFAULT_MAX_BODY),
            limits,
            policy: Policy {
                dev,
                require_interaction: flags.require_interaction
                    || file.require_interaction.unwrap_or(false),
                interact_when_offered: interop,
                allow: std::mem::take(&mut file.allow),
                allow_bearer: file.allow_bearer.unwrap_or(false),
                resource_servers: std::mem::take(&mut file.resource_server),
                issuers,
                assertion_rules: std::mem::take(&mut file.assertion_rule),
            },
            upstreams,
            batch_signatures: !flags.no_signature_batching && file.batch_signatures.unwrap_or(true),
            sweep_interval: std::time::Duration::from_secs(
                file.sweep_interval.unwrap_or(DEFAULT_SWEEP_INTERVAL_SECS),
            ),
            store,
            role,
            store_cache_bytes: file
                .store_cache_mb
                .map_or(crate::store::sled::DEFAULT_CACHE_BYTES, |mb| {
                    mb.saturating_mul(1 << 20)
                }),
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
            external_oauth_as,
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
        config.mtls = self.tls_client_certs;
        if let Some(v) = self.file.user_code_failure_budget {
            config.user_code_failure_budget = v;
        }
        config.limits = self.limits;
        if let Some(v) = self.file.oauth_token_lifetime {
            config.oauth_token_lifetime = v;
        }
        config
    }

    /// The OAuth clients of the file (`[[oauth_client]]`), checked at load.
    pub fn oauth_clients(&self) -> crate::authz::oauth::ConfiguredClients {
        crate::authz::oauth::ConfiguredClients::new(&self.file.oauth_client).unwrap_or_default()
    }

    /// The OAuth client settings (`crate::authz::oauth_clients`):
    /// registration open by `oauth_registration`, by default only in dev.
    pub fn oauth_client_settings(
        &self,
    ) -> Result<crate::authz::oauth_clients::Settings, ConfigError> {
        let mut settings = crate::authz::oauth_clients::Settings::new(
            self.file.oauth_registration.unwrap_or(self.dev),
        );
        settings.allow_private_documents =
            self.file.allow_private_metadata_documents.unwrap_or(false);
        if let Some(rate) = self.file.oauth_registration_rate_per_address {
            rate.check("oauth_registration_rate_per_address")
                .map_err(invalid)?;
            settings.per_address = rate;
        }
        settings.introspectors = self
            .file
            .oauth_introspector
            .iter()
            .map(|e| e.to_introspector().map_err(ConfigError::Invalid))
            .collect::<Result<_, _>>()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// True if the file `text` parses but the configuration it makes is
    /// refused.
    fn refused(text: &str) -> bool {
        let file: FileConfig = toml::from_str(text).unwrap();
        ServeConfig::assemble(file, Overrides::default()).is_err()
    }

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
    fn interop_stays_on_loopback_unless_forced_and_implies_dev_with_interaction_when_offered() {
        let interop = |listen: &str, public_url: Option<&str>, force: bool| {
            let flags = Overrides {
                listen: Some(listen.parse().unwrap()),
                public_url: public_url.map(str::to_owned),
                interop: true,
                interop_force: force,
                ..Overrides::default()
            };
            ServeConfig::assemble(FileConfig::default(), flags)
        };
        for (listen, url) in [
            ("0.0.0.0:8470", None),
            ("[::]:8470", None),
            ("10.0.0.5:8470", None),
            ("127.0.0.1:8470", Some("https://gnap.example.com")),
            ("127.0.0.1:8470", Some("http://127.0.0.1.example.com:8470")),
        ] {
            let refused = interop(listen, url, false).unwrap_err().to_string();
            assert!(
                refused.contains("--interop-force"),
                "{listen} {url:?}: {refused}"
            );
            assert!(
                interop(listen, url, true).is_ok(),
                "{listen} {url:?} forced"
            );
        }
        for (listen, url) in [
            ("127.0.0.1:8470", None),
            ("[::1]:8470", Some("http://[::1]:8470")),
            ("127.0.0.1:8470", Some("http://localhost:8470")),
        ] {
            let config = interop(listen, url, false).unwrap();
            assert!(config.interop && config.dev && config.policy.dev);
            assert!(config.policy.interact_when_offered);
            assert!(config.as_config("http://127.0.0.1:8470").allow_private_push);
        }
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
            assert!(refused(bad), "{bad}");
        }
    }

    #[test]
    fn the_external_oauth_as_table_is_checked_and_its_secret_never_shown() {
        let good = "[external_oauth_as]\nissuer = \"http://127.0.0.1:1\"\nintrospection_endpoint = \"http://127.0.0.1:1/token/introspection\"\nclient_id = \"gnapd-gateway\"\nclient_secret = \"EXTERNAL-SECRET\"\ncache_seconds = 30\n";
        let file: FileConfig = toml::from_str(good).unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        let external = config.external_oauth_as.as_ref().unwrap();
        assert_eq!(external.cache_seconds, 30);
        assert_eq!(external.issuer, "http://127.0.0.1:1");
        assert!(!format!("{config:?}").contains("EXTERNAL-SECRET"));
        let default = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert!(default.external_oauth_as.is_none());
        for bad in [
            good.replace("http://127.0.0.1:1\"\nintro", "127.0.0.1:1\"\nintro"),
            good.replace("http://127.0.0.1:1/token", "/token"),
            good.replace("\"gnapd-gateway\"", "\"\""),
        ] {
            let file: FileConfig = toml::from_str(&bad).unwrap();
            let err = ServeConfig::assemble(file, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(!err.contains("EXTERNAL-SECRET"), "{err}");
        }
        let empty_secret = good.replace("EXTERNAL-SECRET", "");
        assert!(refused(&empty_secret));
        assert!(toml::from_str::<FileConfig>(&format!("{good}typo = 1\n")).is_err());
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
    fn the_store_cache_is_sleds_default_unless_set_and_zero_or_beyond_64_gib_is_refused() {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(config.store_cache_bytes, 1 << 30);
        let file: FileConfig = toml::from_str("store_cache_mb = 32\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert_eq!(config.store_cache_bytes, 32 << 20);
        for bad in ["store_cache_mb = 0\n", "store_cache_mb = 65537\n"] {
            assert!(refused(bad), "{bad}");
        }
    }

    #[test]
    fn the_store_is_sled_unless_a_postgres_conninfo_is_given_and_anything_else_is_refused() {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert!(matches!(config.store, StoreLocation::Sled(None)));
        // `sled:PATH` puts it elsewhere; `sled:` alone names nothing.
        let file: FileConfig = toml::from_str("store = \"sled:/var/lib/gnapd/db\"\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert_eq!(
            config.store.sled_path(&config.data_dir),
            Some(PathBuf::from("/var/lib/gnapd/db"))
        );
        let file: FileConfig = toml::from_str("store = \"sled:\"\n").unwrap();
        assert!(ServeConfig::assemble(file, Overrides::default()).is_err());
        let file: FileConfig =
            toml::from_str("store = \"postgres://gnapd:s3cret@db.example/gnapd\"\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        let StoreLocation::Postgres(conninfo) = &config.store else {
            panic!("not PostgreSQL: {:?}", config.store);
        };
        assert_eq!(
            conninfo.to_string(),
            "host=db.example port=5432 user=gnapd dbname=gnapd"
        );
        assert!(!format!("{config:?}").contains("s3cret"));
        // The flag wins over the file, in libpq's key=value form too.
        let file: FileConfig = toml::from_str("store = \"postgres://db.example/a\"\n").unwrap();
        let flags = Overrides {
            store: Some("host=/run/postgresql dbname=b".into()),
            ..Overrides::default()
        };
        let config = ServeConfig::assemble(file, flags).unwrap();
        assert!(
            matches!(&config.store, StoreLocation::Postgres(c) if c.to_string().ends_with("dbname=b"))
        );
        for bad in [
            "store = \"./gnapd-data\"\n",
            "store = \"mysql://db/gnapd\"\n",
            "store = \"host=db password='s3cret\"\n",
        ] {
            let file: FileConfig = toml::from_str(bad).unwrap();
            let Err(e) = ServeConfig::assemble(file, Overrides::default()) else {
                panic!("accepted: {bad}");
            };
            assert!(matches!(e, ConfigError::Invalid(_)), "{bad}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn the_sweep_interval_defaults_to_a_minute_and_zero_or_more_than_a_day_is_refused() {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(config.sweep_interval, std::time::Duration::from_secs(60));
        let file: FileConfig = toml::from_str("sweep_interval = 5\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert_eq!(config.sweep_interval, std::time::Duration::from_secs(5));
        let file: FileConfig = toml::from_str("sweep_interval = 0\n").unwrap();
        assert!(matches!(
            ServeConfig::assemble(file, Overrides::default()),
            Err(ConfigError::Invalid(_))
        ));
        for too_long in [
            "sweep_interval = 86401\n",
            "sweep_interval = 18446744073709551615\n",
        ] {
            let file: FileConfig = toml::from_str(too_long).unwrap();
            assert!(matches!(
                ServeConfig::assemble(file, Overrides::default()),
                Err(ConfigError::Invalid(_))
            ));
        }
        // Negative and fractional values are not seconds the file can say.
        assert!(toml::from_str::<FileConfig>("sweep_interval = -1\n").is_err());
        assert!(toml::from_str::<FileConfig>("sweep_interval = 0.5\n").is_err());
    }

    #[test]
    fn the_replay_capacity_defaults_to_what_fifteen_thousand_calls_a_second_need_and_must_be_positive()
     {
        let config = ServeConfig::assemble(FileConfig::default(), Overrides::default()).unwrap();
        assert_eq!(config.limits.replay.bound.capacity, 4_600_000);
        let file: FileConfig = toml::from_str("replay_capacity = 100\n").unwrap();
        let config = ServeConfig::assemble(file, Overrides::default()).unwrap();
        assert_eq!(config.limits.replay.bound.capacity, 100);
        let file: FileConfig = toml::from_str("replay_capacity = 0\n").unwrap();
        assert!(matches!(
            ServeConfig::assemble(file, Overrides::default()),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn oauth_rates_follow_the_grant_rate_unless_set_and_must_be_positive() {
        use crate::authz::limits::RateLimit;
        let rate = |burst, per_minute| RateLimit { burst, per_minute };
        let assemble = |text: &str| {
            let file: FileConfig = toml::from_str(text).unwrap();
            ServeConfig::assemble(file, Overrides::default())
        };
        let config = assemble("").unwrap();
        assert_eq!(
            config.limits.oauth_per_address,
            config.limits.grant_per_address
        );
        assert_eq!(
            config.oauth_client_settings().unwrap().per_address,
            rate(10, 2)
        );
        let config = assemble("grant_rate_per_address = { burst = 7, per_minute = 8 }\n").unwrap();
        assert_eq!(config.limits.oauth_per_address, rate(7, 8));
        let config = assemble(
            "oauth_rate_per_address = { burst = 50, per_minute = 60 }\n\
             oauth_registration_rate_per_address = { burst = 30, per_minute = 40 }\n",
        )
        .unwrap();
        assert_eq!(config.limits.oauth_per_address, rate(50, 60));
        assert_eq!(config.limits.grant_per_address, rate(300, 600));
        assert_eq!(
            config.oauth_client_settings().unwrap().per_address,
            rate(30, 40)
        );
        for zero in [
            "oauth_rate_per_address = { burst = 0, per_minute = 1 }\n",
            "oauth_registration_rate_per_address = { burst = 1, per_minute = 0 }\n",
        ] {
            let refused = assemble(zero).and_then(|c| c.oauth_client_settings().map(|_| c));
            assert!(matches!(refused, Err(ConfigError::Invalid(_))), "{zero}");
        }
    }
}
