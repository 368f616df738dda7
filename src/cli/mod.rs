//! The command line: parsing with clap, one module per command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod admin;
pub mod agent;
pub mod compare;
pub mod conformance;
pub mod httpsig;
pub mod interop_hook;
pub mod relay;
pub mod serve;
pub mod store;

/// gnapd: a GNAP (RFC 9635) authorization server for AI agents, and the MCP
/// gateway behind it.
#[derive(Debug, Parser)]
#[command(name = "gnapd", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server and the MCP gateway.
    Serve(serve::Args),
    /// Debug RFC 9421 HTTP Message Signatures: print a signature base, verify
    /// a signed request, or sign one.
    Httpsig(httpsig::Args),
    /// The store's schema: `status` (where it stands against this build)
    /// and `migrate` (bring it up to date before the nodes start).
    Store(store::Args),
    /// Add, list or remove the running server's upstreams (through its
    /// admin socket in the data dir).
    Upstream(admin::UpstreamArgs),
    /// Add, list or remove the running server's enterprise-held upstream
    /// credential sets (through its admin socket in the data dir).
    Credentials(admin::CredentialsArgs),
    /// List, approve or deny the grants waiting for a person (through the
    /// running server's admin socket in the data dir).
    Grants(admin::GrantsArgs),
    /// The operator's browser sign-in (through the running server's admin
    /// socket in the data dir): a fresh one-time link, or signing every
    /// operator out.
    Admin(admin::AdminArgs),
    /// A local stdio MCP server relaying to a gnapd gateway: negotiates a
    /// GNAP grant with its own key and signs every call. Point an MCP
    /// client's `command` at it.
    Connect(relay::Args),
    /// The agent's protocol steps one by one, for scripts and for seeing
    /// each exchange (`--trace`): JSON results on stdout.
    Agent(agent::Args),
    /// GNAP against OAuth on the same server: every scenario for every
    /// protocol variant, measured step by step, and an attack suite;
    /// writes report.json, report.md and SVG plots.
    Compare(compare::Args),
    /// A black-box GNAP conformance suite: checks an AS (any
    /// implementation) over HTTP and names each check's RFC section and
    /// level; exit 0 when no MUST check failed.
    Conformance(conformance::Args),
    /// The person and browser of `gnapd conformance --approve-hook` for a
    /// gnapd in --interop mode: decides the interaction in the hook's
    /// environment through the automation endpoint, then opens the finish
    /// redirect.
    InteropHook(interop_hook::Args),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Httpsig(args) => httpsig::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Store(args) => store::run(args),
        Command::Upstream(args) => admin::upstream(args),
        Command::Credentials(args) => admin::credentials(args),
        Command::Grants(args) => admin::grants(args),
        Command::Admin(args) => admin::admin(args),
        Command::Connect(args) => relay::run_relay(args),
        Command::Agent(args) => agent::run(args),
        Command::Compare(args) => compare::run_compare(args),
        Command::Conformance(args) => conformance::run_conformance(args),
        Command::InteropHook(args) => interop_hook::run(args),
    }
}
