//! The TOML file's shape: every key optional, unknown keys refused.

use super::*;

/// The TOML file. Every key is optional; unknown keys are an error, so a typo
/// cannot silently leave a default in force.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen = "127.0.0.1:8470"`
    pub listen: Option<SocketAddr>,
    /// `data_dir = "./gnapd-data"`
    pub data_dir: Option<PathBuf>,
    /// `store = "postgres://…"` (or a libpq `key=value` conninfo): keep
    /// the store in PostgreSQL. Absent: sled in `data_dir`.
    pub store: Option<String>,
    /// `role = "all" | "as" | "gateway"`: what this node answers (several
    /// nodes on one PostgreSQL store). Absent: `all`.
    pub role: Option<String>,
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
    /// Seconds between sweeps of expired tokens, grants and other lapsed
    /// records (default 60, at least 1).
    pub sweep_interval: Option<u64>,
    /// sled's page cache, MiB (default 1024, 1 to 65,536).
    pub store_cache_mb: Option<u64>,
    /// `wait` for continuation calls, seconds.
    pub poll_wait: Option<u64>,
    /// Signature clock-skew allowance, seconds.
    pub max_skew: Option<i64>,
    /// Maximum signature age, seconds.
    pub max_age: Option<i64>,
    /// Request body limit, bytes.
    pub max_body: Option<usize>,
    /// Signatures the replay cache holds at once (default 4,600,000).
    pub replay_capacity: Option<usize>,
    /// `tls_client_certificates = true`: the TLS listener asks clients for
    /// a certificate (any is accepted, none too) for the `mtls` proofing
    /// method (RFC 9635 §7.3.2).
    pub tls_client_certificates: Option<bool>,
    /// `allow_bearer = true`: grant bearer tokens to clients that ask.
    pub allow_bearer: Option<bool>,
    /// `require_interaction = true`: every grant waits for a person.
    pub require_interaction: Option<bool>,
    /// Seconds an interaction (its user code) stays usable.
    pub interaction_lifetime: Option<i64>,
    /// `allow_private_push = true`: push finish messages may go to
    /// private, loopback and link-local addresses (tests, local dev).
    pub allow_private_push: Option<bool>,
    // OAuth clients (issue 16, `crate::authz::oauth_clients`).
    /// `oauth_registration = true|false`: dynamic client registration
    /// (RFC 7591) at `/oauth/register`; on by default only in `--dev`.
    pub oauth_registration: Option<bool>,
    /// `allow_private_metadata_documents = true`: client metadata
    /// documents may be fetched from private, loopback and link-local
    /// addresses (tests, local dev).
    pub allow_private_metadata_documents: Option<bool>,
    /// `[[oauth_introspector]]`: resource servers that may introspect
    /// OAuth tokens (RFC 7662) with HTTP Basic.
    #[serde(default)]
    pub oauth_introspector: Vec<crate::authz::oauth_clients::IntrospectorEntry>,
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
    /// Requests to the OAuth endpoints per source address (default: the
    /// grant endpoint's rate).
    pub oauth_rate_per_address: Option<crate::authz::limits::RateLimit>,
    /// OAuth client registrations (RFC 7591) per source address.
    pub oauth_registration_rate_per_address: Option<crate::authz::limits::RateLimit>,
    /// Grants waiting for a person, per key.
    pub pending_per_key: Option<usize>,
    /// Grants waiting for a person, per source address.
    pub pending_per_address: Option<usize>,
    /// Grants waiting for a person, in all.
    pub pending_total: Option<usize>,
    /// Bytes of request one pending grant keeps (as stored).
    pub pending_request_max_bytes: Option<usize>,
    // The OAuth face (issue 16).
    /// `[[oauth_client]]`: OAuth clients pre-registered by the operator.
    #[serde(default)]
    pub oauth_client: Vec<crate::authz::oauth::OAuthClientEntry>,
    /// Lifetime of OAuth access tokens, seconds (default 900).
    pub oauth_token_lifetime: Option<i64>,
    /// `[external_oauth_as]`: an OAuth AS whose access tokens the gateway
    /// accepts by introspecting them (RFC 7662).
    pub external_oauth_as: Option<crate::gateway::external::ExternalAsEntry>,
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
