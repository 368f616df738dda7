//! The report's SVG plots, drawn with plotters' SVG backend from
//! [`Report`] alone: each a grouped bar chart ([`bars`]) of figures read
//! from the report ([`data`]).

mod bars;
mod data;

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use self::bars::{Bar, Chart, draw};
use self::data::{latency, plain, scenario_ids, step, totals};
use crate::compare::report::Report;
use crate::compare::variant::Scenario;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 540;

/// Writes every plot into `dir` (created if missing); the paths written.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let groups = scenario_ids(report);
    let steady = Scenario::SteadyState.id();
    let charts = [
        (
            "round-trips.svg",
            vec![Chart {
                title: "HTTP round trips per scenario run (client requests)".to_owned(),
                y_label: "round trips".to_owned(),
                groups: groups.clone(),
                series: totals(report, |t| Bar {
                    value: t.round_trips,
                    part: Some(t.front_channel_round_trips),
                    whiskers: None,
                }),
                note: Some("darker: front channel (browser)".to_owned()),
            }],
        ),
        (
            "bytes.svg",
            vec![Chart {
                title: "Bytes on the wire per scenario run (headers and bodies)".to_owned(),
                y_label: "bytes".to_owned(),
                groups: groups.clone(),
                series: totals(report, |t| {
                    let up = t.bytes.request_headers + t.bytes.request_body;
                    let down = t.bytes.response_headers + t.bytes.response_body;
                    Bar {
                        value: up + down,
                        part: Some(up),
                        whiskers: None,
                    }
                }),
                note: Some("darker: client → server".to_owned()),
            }],
        ),
        (
            "latency.svg",
            vec![Chart {
                title: "Latency per scenario run (p50, whiskers p95 and p99)".to_owned(),
                y_label: "milliseconds".to_owned(),
                groups: groups.clone(),
                series: totals(report, latency),
                note: Some("bar: p50; ticks: p95, p99".to_owned()),
            }],
        ),
        (
            "cpu.svg",
            vec![
                Chart {
                    title: "Server CPU per scenario run".to_owned(),
                    y_label: "microseconds".to_owned(),
                    groups: groups.clone(),
                    series: totals(report, |t| plain(t.cpu_us.server)),
                    note: None,
                },
                Chart {
                    title: "Client CPU per scenario run".to_owned(),
                    y_label: "microseconds".to_owned(),
                    groups: groups.clone(),
                    series: totals(report, |t| plain(t.cpu_us.client)),
                    note: None,
                },
            ],
        ),
        (
            "steady-state-latency.svg",
            vec![Chart {
                title: "Steady state: latency of one tools/call (p50, whiskers p95 and p99)"
                    .to_owned(),
                y_label: "milliseconds".to_owned(),
                groups: vec!["tools/call".to_owned()],
                series: step(report, steady, "tools/call", &[latency]),
                note: Some("bar: p50; ticks: p95, p99".to_owned()),
            }],
        ),
        (
            "steady-state-per-call.svg",
            vec![
                Chart {
                    title: "Steady state: bytes on the wire per tools/call".to_owned(),
                    y_label: "bytes".to_owned(),
                    groups: vec!["tools/call".to_owned()],
                    series: step(
                        report,
                        steady,
                        "tools/call",
                        &[|t| {
                            let up = t.bytes.request_headers + t.bytes.request_body;
                            let down = t.bytes.response_headers + t.bytes.response_body;
                            Bar {
                                value: up + down,
                                part: Some(up),
                                whiskers: None,
                            }
                        }],
                    ),
                    note: Some("darker: client → server".to_owned()),
                },
                Chart {
                    title: "Steady state: CPU per tools/call".to_owned(),
                    y_label: "microseconds".to_owned(),
                    groups: vec!["server".to_owned(), "client".to_owned()],
                    series: step(
                        report,
                        steady,
                        "tools/call",
                        &[|t| plain(t.cpu_us.server), |t| plain(t.cpu_us.client)],
                    ),
                    note: None,
                },
            ],
        ),
    ];
    let mut written = Vec::new();
    for (file, panels) in charts {
        let path = dir.join(file);
        write(&path, &panels)?;
        written.push(path);
    }
    Ok(written)
}

/// One SVG file, its charts stacked top to bottom.
fn write(path: &Path, panels: &[Chart]) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| format!("writing {}: {e}", path.display());
    let rows = panels.len().max(1);
    let root = SVGBackend::new(path, (WIDTH, HEIGHT * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, chart) in root.split_evenly((rows, 1)).iter().zip(panels) {
        draw(area, chart)?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests;
