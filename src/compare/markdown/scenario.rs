//! One scenario's section: the totals per variant (with ratios against
//! the first GNAP variant), what the totals are made of by kind, failed
//! runs, and one per-step table per variant.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::format::{cell, count, ratio, table};
use super::metrics::{METRICS, bytes_down, bytes_up};
use crate::compare::report::{Report, ScenarioReport, ScenarioResult, StepReport};

/// What one variant's column holds.
enum Column<'r> {
    /// Measured.
    Total(&'r StepReport),
    /// Not applicable; the note's number.
    NotApplicable(usize),
    /// Applicable, but no run produced a total (see the failures).
    NoTotal,
    /// The report has no result for this variant.
    Missing,
}

/// The section for `scenario`; `base` is the id ratios are taken against.
pub(super) fn write(
    out: &mut String,
    report: &Report,
    scenario: &ScenarioReport,
    base: Option<&str>,
) {
    let _ = writeln!(
        out,
        "### {} (`{}`)\n",
        cell(&scenario.title),
        cell(&scenario.id)
    );

    let mut notes: Vec<String> = Vec::new();
    let columns: Vec<(&str, Column)> = report
        .variants
        .iter()
        .map(|variant| {
            let id = variant.id.as_str();
            let column = match result(scenario, id) {
                None => Column::Missing,
                Some(ScenarioResult {
                    not_applicable: Some(why),
                    ..
                }) => {
                    notes.push(format!("`{}`: {}", cell(id), cell(why)));
                    Column::NotApplicable(notes.len())
                }
                Some(ScenarioResult { total: Some(t), .. }) => Column::Total(t),
                Some(_) => Column::NoTotal,
            };
            (id, column)
        })
        .collect();

    let mut header = vec!["per run".to_owned()];
    header.extend(columns.iter().map(|(id, _)| format!("`{}`", cell(id))));
    let mut rows: Vec<Vec<String>> = METRICS
        .iter()
        .map(|metric| {
            let mut row = vec![metric.label.to_owned()];
            row.extend(columns.iter().map(|(_, c)| fill(c, metric.value)));
            row
        })
        .collect();
    rows.extend(ratio_rows(&columns, base));
    table(out, &header, &rows);
    for (n, note) in notes.iter().enumerate() {
        let _ = writeln!(out, "- n/a [{}] {note}", n + 1);
    }
    if !notes.is_empty() {
        out.push('\n');
    }

    detail(out, &columns);
    failures(out, scenario);
    for (id, column) in &columns {
        if let (Column::Total(_), Some(result)) = (column, result(scenario, id)) {
            steps(out, id, result);
        }
    }
}

fn result<'r>(scenario: &'r ScenarioReport, variant: &str) -> Option<&'r ScenarioResult> {
    scenario.results.iter().find(|r| r.variant == variant)
}

fn fill(column: &Column, value: impl Fn(&StepReport) -> String) -> String {
    match column {
        Column::Total(total) => value(total),
        Column::NotApplicable(n) => format!("n/a [{n}]"),
        Column::NoTotal => "failed".to_owned(),
        Column::Missing => "missing".to_owned(),
    }
}

/// Round trips, bytes, latency and CPU against the base variant's.
fn ratio_rows(columns: &[(&str, Column)], base: Option<&str>) -> Vec<Vec<String>> {
    let Some(base_id) = base else {
        return Vec::new();
    };
    let Some(Column::Total(base_total)) = columns
        .iter()
        .find(|(id, _)| *id == base_id)
        .map(|(_, c)| c)
    else {
        return Vec::new();
    };
    type Quantity = fn(&StepReport) -> f64;
    let quantities: [(&str, Quantity); 5] = [
        ("round trips", |s| s.round_trips),
        ("bytes (up + down)", |s| bytes_up(s) + bytes_down(s)),
        ("latency p50", |s| s.latency_ms.p50),
        ("server CPU", |s| s.cpu_us.server),
        ("client CPU", |s| s.cpu_us.client),
    ];
    quantities
        .iter()
        .map(|(label, quantity)| {
            let mut row = vec![format!("{label} × `{base_id}`")];
            row.extend(
                columns
                    .iter()
                    .map(|(_, c)| fill(c, |total| ratio(quantity(total), quantity(base_total)))),
            );
            row
        })
        .collect()
}

/// The totals by kind: crypto operations, state per table, server-made
/// requests per destination. Omitted when all are empty.
fn detail(out: &mut String, columns: &[(&str, Column)]) {
    type Kinds = fn(&StepReport) -> &BTreeMap<String, f64>;
    let groups: [(&str, Kinds); 4] = [
        ("crypto, server", |s| &s.crypto.server),
        ("crypto, client", |s| &s.crypto.client),
        ("records", |s| &s.state.records),
        ("server-made requests", |s| &s.server_outbound),
    ];
    let mut rows = Vec::new();
    for (group, kinds_of) in groups {
        let kinds: BTreeSet<String> = columns
            .iter()
            .filter_map(|(_, c)| match c {
                Column::Total(t) => Some(kinds_of(t).keys().cloned()),
                _ => None,
            })
            .flatten()
            .collect();
        for kind in kinds {
            let mut row = vec![format!("{group}: `{}`", cell(&kind))];
            row.extend(
                columns.iter().map(|(_, c)| {
                    fill(c, |t| count(kinds_of(t).get(&kind).copied().unwrap_or(0.0)))
                }),
            );
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return;
    }
    out.push_str("By kind (per run):\n\n");
    let mut header = vec!["kind".to_owned()];
    header.extend(columns.iter().map(|(id, _)| format!("`{}`", cell(id))));
    table(out, &header, &rows);
}

/// Failed runs, per variant.
fn failures(out: &mut String, scenario: &ScenarioReport) {
    let failed: Vec<&ScenarioResult> = scenario
        .results
        .iter()
        .filter(|r| !r.failures.is_empty())
        .collect();
    if failed.is_empty() {
        return;
    }
    out.push_str("Failed runs:\n\n");
    for result in failed {
        for failure in &result.failures {
            let _ = writeln!(out, "- `{}`: {}", cell(&result.variant), cell(failure));
        }
    }
    out.push('\n');
}

/// One variant's steps, one row each.
fn steps(out: &mut String, variant: &str, result: &ScenarioResult) {
    if result.steps.is_empty() {
        return;
    }
    let _ = writeln!(out, "Steps of `{}`:\n", cell(variant));
    let shown: Vec<_> = METRICS.iter().filter(|m| m.in_steps).collect();
    let mut header = vec!["step".to_owned()];
    header.extend(shown.iter().map(|m| m.short.to_owned()));
    let rows: Vec<Vec<String>> = result
        .steps
        .iter()
        .map(|step| {
            let mut row = vec![format!("`{}`", cell(&step.name))];
            row.extend(shown.iter().map(|m| (m.value)(step)));
            row
        })
        .collect();
    table(out, &header, &rows);
}
