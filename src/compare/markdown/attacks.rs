//! The attack table: attacks as rows, variants as columns, one symbol per
//! observed outcome, then the evidence behind every cell.

use std::fmt::Write as _;

use super::format::{cell, table};
use crate::compare::report::{AttackResult, Outcome, Report};

/// The symbol and the word for an outcome.
fn mark(outcome: Outcome) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Blocked => ("✓", "blocked"),
        Outcome::Succeeded => ("✗", "succeeded"),
        Outcome::NotApplicable => ("–", "not applicable"),
        Outcome::Error => ("⚠", "could not be tried"),
    }
}

/// The attack section.
pub(super) fn write(out: &mut String, report: &Report) {
    out.push_str("## Attacks\n\n");
    out.push_str(
        "✓ blocked (the server refused it), ✗ succeeded, – not applicable (the \
         variant has nothing the attack could aim at), ⚠ the attempt failed before \
         it could tell. Each outcome was observed; the evidence follows the table.\n\n",
    );
    let mut header = vec!["attack".to_owned()];
    header.extend(report.variants.iter().map(|v| format!("`{}`", cell(&v.id))));
    let mut rows: Vec<Vec<String>> = report
        .attacks
        .iter()
        .map(|attack| {
            let mut row = vec![format!("{} (`{}`)", cell(&attack.title), cell(&attack.id))];
            row.extend(report.variants.iter().map(|v| {
                find(&attack.results, &v.id)
                    .map_or("missing", |r| mark(r.outcome).0)
                    .to_owned()
            }));
            row
        })
        .collect();
    // How many of the applicable attacks each variant blocked.
    let mut tally = vec!["blocked / applicable".to_owned()];
    tally.extend(report.variants.iter().map(|v| {
        let outcomes: Vec<Outcome> = report
            .attacks
            .iter()
            .filter_map(|a| find(&a.results, &v.id).map(|r| r.outcome))
            .collect();
        let blocked = outcomes.iter().filter(|o| **o == Outcome::Blocked).count();
        let applicable = outcomes
            .iter()
            .filter(|o| **o != Outcome::NotApplicable)
            .count();
        format!("{blocked} / {applicable}")
    }));
    rows.push(tally);
    table(out, &header, &rows);

    out.push_str("### Evidence\n\n");
    for attack in &report.attacks {
        let _ = writeln!(
            out,
            "- **{}** (`{}`)",
            cell(&attack.title),
            cell(&attack.id)
        );
        for result in &attack.results {
            let (symbol, word) = mark(result.outcome);
            let _ = writeln!(
                out,
                "  - `{}` {symbol} {word}: {}",
                cell(&result.variant),
                cell(&result.evidence)
            );
        }
    }
    out.push('\n');
}

fn find<'r>(results: &'r [AttackResult], variant: &str) -> Option<&'r AttackResult> {
    results.iter().find(|r| r.variant == variant)
}
