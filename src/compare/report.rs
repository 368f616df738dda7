//! The report's types: what `report.json` holds, field for field. These
//! types *are* the schema (`spec-notes/compare.md` documents it, and
//! `spec-notes/compare.schema.json` is checked against a real report); a
//! change to a field's meaning bumps [`SCHEMA_VERSION`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The schema's version; readers refuse a version they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one `gnapd compare` run found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// Seconds the whole run took.
    pub duration_seconds: f64,
    /// Where the numbers came from.
    pub environment: Environment,
    /// The choices a number depends on.
    pub settings: Settings,
    /// The protocol variants compared, in report order.
    pub variants: Vec<VariantInfo>,
    /// The scenarios, each with one result per variant.
    pub scenarios: Vec<ScenarioReport>,
    /// The attacks, each with one outcome per variant.
    pub attacks: Vec<AttackReport>,
}

/// The machine and the software the numbers were measured on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// gnapd's version (Cargo).
    pub gnapd_version: String,
    /// The git commit gnapd was built from, when known.
    pub commit: Option<String>,
    /// Whether this binary is an optimized build.
    pub optimized_build: bool,
    /// The CPU model (`/proc/cpuinfo`).
    pub cpu_model: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// The kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The operating system (`/etc/os-release` PRETTY_NAME).
    pub os: String,
    /// Load average when the run started (`/proc/loadavg`, first three).
    pub load_average: String,
    /// Versions of the external peers used (node, oidc-provider), by name.
    pub peers: BTreeMap<String, String>,
}

/// The settings every number depends on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Runs per scenario and variant (`--runs`).
    pub runs: u32,
    /// `tools/call`s in the steady-state scenario per run (`--calls`).
    pub calls: u32,
    /// Free-form named choices (token lifetimes, DPoP nonces, the store's
    /// durability, who decides on the consent page, ...), each a sentence.
    pub choices: BTreeMap<String, String>,
}

/// One protocol variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantInfo {
    /// Stable id (`gnap-ed25519`, `oauth-dpop-dcr`, ...).
    pub id: String,
    /// `gnap` or `oauth`.
    pub protocol: String,
    /// Which server answers as the AS (`gnapd` or `oidc-provider`).
    pub authorization_server: String,
    /// How the client is identified (`key`, `dcr`, `cimd`, `pre-registered`).
    pub client_identification: String,
    /// How the access token is bound (`httpsig-ed25519`, `dpop-es256`, `bearer`, ...).
    pub token_binding: String,
    /// One sentence a reader of the table needs.
    pub description: String,
}

/// A scenario and its results.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioReport {
    /// Stable id (`headless-first-call`, ...).
    pub id: String,
    /// Its title.
    pub title: String,
    /// One result per variant, in the variants' order.
    pub results: Vec<ScenarioResult>,
}

/// One variant's result in one scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioResult {
    /// The variant's id.
    pub variant: String,
    /// Whether the scenario applies to the variant; if not, why.
    pub not_applicable: Option<String>,
    /// Runs that failed, with the first failure's message.
    pub failures: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
    /// The whole scenario: every step summed per run.
    pub total: Option<StepReport>,
}

/// What one step of a scenario cost, over the runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The step's name (`register`, `token`, `tools/call`, ...).
    pub name: String,
    /// Samples the statistics are over (runs, or runs × calls).
    pub samples: u32,
    /// HTTP requests the client sent, per sample (mean).
    pub round_trips: f64,
    /// TCP connections the client opened, per sample (mean).
    pub connections: f64,
    /// Of `round_trips`, those the person's browser sent (front channel),
    /// per sample (mean).
    pub front_channel_round_trips: f64,
    /// HTTP requests the server made on its own (document fetches, upstream
    /// calls), per sample (mean), by destination kind.
    pub server_outbound: BTreeMap<String, f64>,
    /// Bytes on the wire, per sample (mean).
    pub bytes: Bytes,
    /// Wall time of the step as the client saw it.
    pub latency_ms: Percentiles,
    /// CPU time, microseconds per sample (mean).
    pub cpu_us: Cpu,
    /// Cryptographic operations per sample (mean), by `operation:algorithm`.
    pub crypto: Crypto,
    /// Server-side state the step created (net), per sample (mean).
    pub state: State,
    /// Times a person had to act, per sample.
    pub person_interactions: f64,
    /// Browser redirects followed, per sample.
    pub browser_redirects: f64,
    /// Parameter names that appeared in URLs (query or fragment) during the
    /// step, each with where (`front-channel` for a browser URL, `back-channel`).
    pub url_exposure: BTreeMap<String, String>,
}

/// Bytes each way, headers and bodies apart.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bytes {
    /// Request line and header section, as written.
    pub request_headers: f64,
    /// Request bodies, as written.
    pub request_body: f64,
    /// Status line and header section, as read.
    pub response_headers: f64,
    /// Response bodies, as read (framing included).
    pub response_body: f64,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Mean.
    pub mean: f64,
    /// Fastest.
    pub min: f64,
    /// Slowest.
    pub max: f64,
}

/// CPU time on each side, microseconds per sample.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Every thread of the AS/gateway process(es).
    pub server: f64,
    /// The client's thread.
    pub client: f64,
}

/// Cryptographic operations on each side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crypto {
    /// The server's, by `operation:algorithm`.
    pub server: BTreeMap<String, f64>,
    /// The client's, by `operation:algorithm`.
    pub client: BTreeMap<String, f64>,
}

/// Server-side state created.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Records added, by store tree or in-memory table.
    pub records: BTreeMap<String, f64>,
    /// Bytes added (keys and values), all trees and tables.
    pub bytes: f64,
}

/// An attack and its outcomes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackReport {
    /// Stable id (`replay`, `stolen-token`, ...).
    pub id: String,
    /// Its title.
    pub title: String,
    /// One outcome per variant, in the variants' order.
    pub results: Vec<AttackResult>,
}

/// What happened when the attack was tried against one variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackResult {
    /// The variant's id.
    pub variant: String,
    /// What happened.
    pub outcome: Outcome,
    /// What was observed (statuses, error codes, what the upstream saw), or
    /// why the attack does not apply.
    pub evidence: String,
}

/// An attack's outcome, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The server refused it.
    Blocked,
    /// It worked.
    Succeeded,
    /// The variant has nothing the attack could aim at.
    NotApplicable,
    /// The attempt itself failed before it could tell (a setup error).
    Error,
}
