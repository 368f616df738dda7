//! The top of report.md: what was measured where, with which settings,
//! and the variants compared.

use std::fmt::Write as _;

use super::format::{cell, table};
use crate::compare::report::Report;

/// Title, run, environment, settings and choices.
pub(super) fn write(out: &mut String, report: &Report) {
    out.push_str("# gnapd compare: GNAP against OAuth on the same server\n\n");
    let _ = writeln!(
        out,
        "Run started {}, took {:.1} s. report.json schema version {}.\n",
        report.started_at, report.duration_seconds, report.schema_version
    );

    out.push_str("## Environment\n\n");
    let env = &report.environment;
    let build = if env.optimized_build {
        "optimized build"
    } else {
        "debug build (unoptimized: CPU and latency figures are not representative)"
    };
    let mut rows = vec![
        row("gnapd", &env.gnapd_version),
        row("commit", env.commit.as_deref().unwrap_or("unknown")),
        row("build", build),
        row(
            "CPU",
            &format!("{} ({} logical CPUs)", env.cpu_model, env.cpus),
        ),
        row("kernel", &env.kernel),
        row("operating system", &env.os),
        row("load average at start", &env.load_average),
    ];
    for (peer, version) in &env.peers {
        rows.push(row(&format!("peer: {peer}"), version));
    }
    table(out, &["".to_owned(), "value".to_owned()], &rows);

    out.push_str("## Settings and choices\n\n");
    let settings = &report.settings;
    let _ = writeln!(
        out,
        "- runs per scenario and variant: {}\n- `tools/call`s per steady-state run: {}",
        settings.runs, settings.calls
    );
    for (name, choice) in &settings.choices {
        let _ = writeln!(out, "- {}: {}", cell(name), cell(choice));
    }
    out.push('\n');
}

/// The variants table.
pub(super) fn variants(out: &mut String, report: &Report) {
    out.push_str("## Variants\n\n");
    let header = [
        "variant",
        "protocol",
        "authorization server",
        "client identification",
        "token binding",
        "description",
    ]
    .map(str::to_owned);
    let rows: Vec<Vec<String>> = report
        .variants
        .iter()
        .map(|v| {
            vec![
                format!("`{}`", cell(&v.id)),
                cell(&v.protocol),
                cell(&v.authorization_server),
                cell(&v.client_identification),
                cell(&v.token_binding),
                cell(&v.description),
            ]
        })
        .collect();
    table(out, &header, &rows);
}

/// How to read the numbers that follow.
pub(super) fn reading(out: &mut String, base: Option<&str>) {
    out.push_str("## How to read the tables\n\n");
    out.push_str(
        "Every figure is observed: requests and bytes counted on the wire by the \
         client's meter (headers and bodies as written and read), CPU time read from \
         /proc (server: every thread of the gnapd process; client: the measuring \
         thread), cryptographic operations counted where they happen (the \
         server's counters, the client's own), state read from the server's store. A scenario's total sums its steps per run; figures are means per \
         sample except the latency percentiles, which are over samples. Round trips \
         count every request the client sent (agent and browser, discovery probes \
         included); server-made requests (document fetches, upstream calls) are \
         counted apart.\n\n\
         Per-step columns: n samples; RT round trips; front of which front channel; \
         out server-made requests; B up / B down bytes each way; p50/p95/p99 latency \
         (ms); srv/cli CPU (µs); crypto srv/cli operations; records and state B \
         state created; person interactions; redirects followed by the browser; \
         in URLs parameter names seen in URLs.\n\n",
    );
    if let Some(base) = base {
        let _ = writeln!(
            out,
            "Ratios (`× {base}`) divide a variant's figure by `{base}`'s in the same \
             scenario of the same run."
        );
    }
    out.push('\n');
}

fn row(name: &str, value: &str) -> Vec<String> {
    vec![cell(name), cell(value)]
}
