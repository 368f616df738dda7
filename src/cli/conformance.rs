//! `gnapd conformance AS_URL`: runs the black-box GNAP conformance suite
//! (`crate::conformance`) against an AS and prints the table; `--json`
//! and `--junit` write the reports. Exit 0 when no MUST check failed, 1
//! otherwise, 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::conformance::report::{json, junit, table};
use crate::conformance::run::{Options, run};

/// Arguments of `gnapd conformance`.
#[derive(Debug, Parser)]
pub struct Args {
    /// The grant endpoint URL of the AS under test (http:// or https://).
    #[arg(value_name = "AS_URL")]
    as_url: String,
    /// A resource at a resource server this AS protects: the suite checks
    /// its GNAP challenge and acts as that RS toward the AS (RFC 9767).
    #[arg(long, value_name = "URL")]
    rs_url: Option<String>,
    /// A command run by `sh -c` to act as the person (and the browser) for
    /// interaction checks, with GNAP_INTERACT_URL, GNAP_USER_CODE,
    /// GNAP_USER_CODE_URI, GNAP_DECISION (approve or deny) and
    /// GNAP_GRANT_ENDPOINT in its environment.
    #[arg(long, value_name = "CMD")]
    approve_hook: Option<String>,
    /// Write the JSON report (schema version 1) here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Run only the checks whose id contains SUBSTRING. Repeatable.
    #[arg(long, value_name = "SUBSTRING")]
    only: Vec<String>,
    /// Trust the CA certificates in this PEM file (beside the system's) for
    /// the AS's and the RS's TLS certificates.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Longest wait for one exchange, one hook run or one callback.
    #[arg(long, value_name = "N", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout_seconds: u64,
}

/// The usage error exit code (as clap's own).
const USAGE: u8 = 2;

fn is_http_url(url: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        url.strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    })
}

/// Runs the suite on a current-thread runtime.
pub fn run_conformance(args: Args) -> ExitCode {
    for (name, url) in [
        ("AS_URL", Some(&args.as_url)),
        ("--rs-url", args.rs_url.as_ref()),
    ] {
        if let Some(url) = url
            && !is_http_url(url)
        {
            eprintln!("gnapd conformance: {name} must be an http:// or https:// URL, not {url:?}");
            return ExitCode::from(USAGE);
        }
    }
    let ca_certs = match &args.ca_file {
        None => Vec::new(),
        Some(path) => match crate::http_client::load_ca_file(path) {
            Ok(certs) => certs,
            Err(e) => {
                eprintln!("gnapd conformance: --ca-file: {e}");
                return ExitCode::from(USAGE);
            }
        },
    };
    let options = Options {
        grant_endpoint: args.as_url.clone(),
        rs_url: args.rs_url.clone(),
        approve_hook: args.approve_hook.clone(),
        only: args.only.clone(),
        timeout: Duration::from_secs(args.timeout_seconds),
        ca_certs,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gnapd conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started_at = crate::compare::run::now_rfc3339();
    let progress = |finding: &crate::conformance::check::Finding| {
        eprintln!("conformance: {} {}", finding.id, finding.result.name());
    };
    let report = match runtime.block_on(run(&options, started_at, progress)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("gnapd conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", table::render(&report));
    let written = [
        (args.json.as_deref(), json::render(&report)),
        (args.junit.as_deref(), junit::render(&report)),
    ];
    for (path, text) in written {
        if let Some(path) = path
            && let Err(e) = write(path, &text)
        {
            eprintln!("gnapd conformance: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.conforms() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}
