//! `gnapd connect <gateway-url>`: the stdio MCP server an MCP client
//! launches, relaying to a gnapd gateway with a GNAP grant (see
//! [`crate::client::relay`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::client::agent::{Agent, AgentOptions, SigningClient, StderrPrompter};
use crate::client::grant::AccessSpec;
use crate::client::http::Http;
use crate::client::relay::{RelayOptions, run};
use crate::client::{ClientError, keyfile};
use crate::clock::SystemClock;
use crate::proto::httpsig::Algorithm;

/// The key algorithms an agent may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlg {
    /// Ed25519 (the default).
    Ed25519,
    /// ECDSA on P-256 with SHA-256.
    P256,
}

impl From<KeyAlg> for Algorithm {
    fn from(alg: KeyAlg) -> Self {
        match alg {
            KeyAlg::Ed25519 => Algorithm::Ed25519,
            KeyAlg::P256 => Algorithm::EcdsaP256Sha256,
        }
    }
}

/// The key options every agent command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Keep the agent's private key in this file (created 0600 if absent;
    /// refused if group or others can read it), so a returning agent is the
    /// same client instance. Without it, a fresh key lives in memory only.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// The key algorithm for a new key [default: ed25519].
    #[arg(long, value_enum)]
    pub alg: Option<KeyAlg>,
    /// Print every HTTP exchange on stderr (token values included).
    #[arg(long)]
    pub trace: bool,
}

impl KeyArgs {
    /// The key: from the file, or fresh.
    pub fn key(&self) -> Result<crate::proto::jwk::SigningKey, ClientError> {
        let alg = self.alg.map(Algorithm::from);
        match &self.key_file {
            Some(path) => Ok(keyfile::load_or_create(path, alg)?),
            None => keyfile::ephemeral(alg.unwrap_or(Algorithm::Ed25519))
                .map_err(|e| ClientError::Setup(e.to_string())),
        }
    }

    /// The signing layer with this key.
    pub fn signing_client(&self) -> Result<SigningClient, ClientError> {
        Ok(SigningClient::new(
            Http::new(self.trace)?,
            self.key()?,
            Arc::new(SystemClock),
        ))
    }
}

/// What to ask for and how to negotiate.
#[derive(Debug, Clone, clap::Args)]
pub struct GrantArgs {
    /// The AS's grant endpoint, instead of the one the gateway's 401
    /// challenge names.
    #[arg(long, value_name = "URL")]
    pub as_uri: Option<String>,
    /// The access to ask for, as a JSON `access` array (RFC 9635 §8),
    /// instead of the challenge's reference.
    #[arg(long, value_name = "JSON", conflicts_with = "tools")]
    pub access: Option<String>,
    /// Ask only for this tool of the gateway's upstream (an `mcp` access
    /// right with `tools`). Repeatable.
    #[arg(long = "tool", value_name = "NAME")]
    pub tools: Vec<String>,
    /// The name shown to the person approving (`client.display.name`).
    #[arg(long, value_name = "NAME", default_value = "gnapd connect")]
    pub name: String,
    /// Open the approval page in a browser when the AS asks for one.
    #[arg(long)]
    pub open: bool,
    /// Offer no interaction: fail unless the AS approves at once.
    #[arg(long)]
    pub no_interact: bool,
    /// Seconds to wait for approval.
    #[arg(long, value_name = "SECONDS", default_value_t = crate::client::timing::DEFAULT_APPROVAL_TIMEOUT)]
    pub approval_timeout: u64,
    /// Offer a redirect finish to a one-time loopback listener even
    /// without --open: the person opens the link in a browser on this
    /// machine, which comes back here when they decide. (With --open it
    /// is offered anyway.)
    #[arg(long, conflicts_with = "no_finish")]
    pub finish: bool,
    /// Never offer a redirect finish (only poll), even with --open, e.g.
    /// when the browser runs on another machine.
    #[arg(long)]
    pub no_finish: bool,
}

/// An `--access` that says no access.
#[derive(Debug, thiserror::Error)]
pub enum AccessArgError {
    /// Not JSON.
    #[error("--access is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// JSON, but neither a non-empty array nor a string.
    #[error("--access must be a non-empty JSON array (or a JSON string reference)")]
    Shape,
}

impl GrantArgs {
    /// The agent's options.
    pub fn options(&self) -> Result<AgentOptions, AccessArgError> {
        let access = match &self.access {
            Some(text) => {
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(AccessArgError::NotJson)?;
                match value {
                    serde_json::Value::Array(items) if !items.is_empty() => {
                        Some(AccessSpec::Explicit(items))
                    }
                    serde_json::Value::String(reference) => Some(AccessSpec::Reference(reference)),
                    _ => {
                        return Err(AccessArgError::Shape);
                    }
                }
            }
            None => None,
        };
        Ok(AgentOptions {
            display_name: self.name.clone(),
            as_uri: self.as_uri.clone(),
            access,
            tools: self.tools.clone(),
            interact: !self.no_interact,
            approval_timeout: self.approval_timeout,
            // A finish only where this agent brings the person to a
            // browser here: otherwise polling alone completes, whoever
            // decides and wherever (spec-notes/client.md).
            finish_redirect: (self.open || self.finish) && !self.no_finish,
        })
    }

    /// Prints interaction on stderr, opening a browser if asked.
    pub fn prompter(&self, program: &str) -> StderrPrompter {
        StderrPrompter {
            program: program.to_owned(),
            open: self.open,
        }
    }
}

/// Arguments of `gnapd connect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway's MCP endpoint, e.g. http://127.0.0.1:8470/mcp/github.
    #[arg(value_name = "GATEWAY_URL")]
    gateway: String,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    grant: GrantArgs,
    /// At exit, revoke the token and delete the grant.
    #[arg(long)]
    revoke_on_exit: bool,
}

/// Sets up logging on stderr (stdout is the MCP channel).
pub fn init_logging(default: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Runs `gnapd connect`.
pub fn run_relay(args: Args) -> ExitCode {
    init_logging("gnapd=info");
    let options = match args.grant.options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gnapd connect: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gnapd connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let wire = args.key.signing_client()?;
        let agent = Arc::new(Agent::new(
            wire,
            args.gateway.clone(),
            options,
            Arc::new(args.grant.prompter("gnapd connect")),
        ));
        run(
            agent,
            tokio::io::stdin(),
            tokio::io::stdout(),
            RelayOptions {
                revoke_on_exit: args.revoke_on_exit,
            },
        )
        .await
    });
    // stdin may still be read by a blocking thread: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The message may carry the server's words.
            eprintln!(
                "gnapd connect: {}",
                crate::proto::text::escape(&e.for_cli())
            );
            ExitCode::FAILURE
        }
    }
}
