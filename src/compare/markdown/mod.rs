//! report.md: the report as tables a person can read and paste into a
//! paper. Only [`Report`] goes in; nothing here measures.
//!
//! - [`header`]: run, environment, settings and choices, the variants;
//! - [`glance`]: the headline figures, scenarios by variants;
//! - [`scenario`]: per scenario the totals per variant (rows = [`metrics`]),
//!   ratios against the first GNAP variant, by-kind detail and per-step
//!   tables;
//! - [`attacks`]: the outcome matrix and its evidence;
//! - [`format`]: rounding and cell escaping.

mod attacks;
mod format;
mod glance;
mod header;
mod metrics;
mod scenario;

use crate::compare::report::Report;

/// The whole report.md.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Ratios are against the first GNAP variant: the reference the issue
    // asks every OAuth figure to be read against.
    let base = report
        .variants
        .iter()
        .find(|v| v.protocol == "gnap")
        .map(|v| v.id.as_str());
    header::write(&mut out, report);
    header::variants(&mut out, report);
    glance::write(&mut out, report);
    header::reading(&mut out, base);
    out.push_str("## Scenarios\n\n");
    for scenario in &report.scenarios {
        scenario::write(&mut out, report, scenario, base);
    }
    attacks::write(&mut out, report);
    out
}

#[cfg(test)]
mod tests;
