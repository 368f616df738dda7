//! "At a glance": one small table per headline figure, scenarios down and
//! variants across, each cell a scenario's total per run. The figures a
//! reader compares first (round trips, bytes, latency, server CPU), without
//! reading seven scenario sections.

use super::format::{cell, count, ms, table, whole};
use super::metrics::{bytes_down, bytes_up};
use crate::compare::report::{Report, StepReport};

/// One headline figure: its title and how a total shows it.
struct Figure {
    title: &'static str,
    value: fn(&StepReport) -> String,
}

const FIGURES: [Figure; 4] = [
    Figure {
        title: "HTTP round trips per run (of which the browser's)",
        value: |t| {
            if t.front_channel_round_trips > 0.0 {
                format!(
                    "{} ({})",
                    count(t.round_trips),
                    count(t.front_channel_round_trips)
                )
            } else {
                count(t.round_trips)
            }
        },
    },
    Figure {
        title: "Bytes on the wire per run, both ways",
        value: |t| whole(bytes_up(t) + bytes_down(t)),
    },
    Figure {
        title: "Latency per run, p50 (ms)",
        value: |t| ms(t.latency_ms.p50),
    },
    Figure {
        title: "Server CPU per run (µs)",
        value: |t| whole(t.cpu_us.server),
    },
];

/// The section: one table per [`FIGURES`] entry.
pub(super) fn write(out: &mut String, report: &Report) {
    out.push_str("## At a glance\n\n");
    out.push_str(
        "Each cell is a scenario's total per run (the sum of its steps), mean over runs \
         except the latency percentile; n/a: the scenario does not apply to the variant; \
         – : no run succeeded (see the scenario's failures).\n\n",
    );
    let mut header = vec!["scenario".to_owned()];
    header.extend(report.variants.iter().map(|v| format!("`{}`", cell(&v.id))));
    for figure in &FIGURES {
        out.push_str(&format!("{}:\n\n", figure.title));
        let rows: Vec<Vec<String>> = report
            .scenarios
            .iter()
            .map(|scenario| {
                let mut row = vec![format!("`{}`", cell(&scenario.id))];
                row.extend(report.variants.iter().map(|variant| {
                    match scenario.results.iter().find(|r| r.variant == variant.id) {
                        Some(r) if r.not_applicable.is_some() => "n/a".to_owned(),
                        Some(r) => r.total.as_ref().map_or("–".to_owned(), figure.value),
                        None => "–".to_owned(),
                    }
                }));
                row
            })
            .collect();
        table(out, &header, &rows);
    }
}
