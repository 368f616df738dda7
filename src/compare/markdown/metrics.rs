//! The quantities a step (or a scenario's total) is reported by, each with
//! its label and its formatting: the scenario tables list them as rows, the
//! per-step tables as columns.

use super::format::{cell, count, ms, whole};
use crate::compare::report::StepReport;

/// One reported quantity.
pub(super) struct Metric {
    /// Row label in the totals table.
    pub label: &'static str,
    /// Column header in the per-step tables.
    pub short: &'static str,
    /// Whether the per-step tables show it too (the header/body splits
    /// only appear in the totals, to keep the step tables narrow).
    pub in_steps: bool,
    /// The formatted value.
    pub value: fn(&StepReport) -> String,
}

/// Bytes the client wrote.
pub(super) fn bytes_up(step: &StepReport) -> f64 {
    step.bytes.request_headers + step.bytes.request_body
}

/// Bytes the client read.
pub(super) fn bytes_down(step: &StepReport) -> f64 {
    step.bytes.response_headers + step.bytes.response_body
}

/// Requests the server made on its own, all kinds.
pub(super) fn outbound(step: &StepReport) -> f64 {
    step.server_outbound.values().sum()
}

/// Every record the step added, all tables.
pub(super) fn records(step: &StepReport) -> f64 {
    step.state.records.values().sum()
}

/// Parameter names seen in URLs, with the channel in short.
fn exposure(step: &StepReport) -> String {
    if step.url_exposure.is_empty() {
        return "–".to_owned();
    }
    step.url_exposure
        .iter()
        .map(|(name, channel)| {
            let channel = channel.strip_suffix("-channel").unwrap_or(channel);
            format!("`{}` ({})", cell(name), cell(channel))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The quantities, in table order.
pub(super) const METRICS: &[Metric] = &[
    Metric {
        label: "samples",
        short: "n",
        in_steps: true,
        value: |s| s.samples.to_string(),
    },
    Metric {
        label: "HTTP round trips (client)",
        short: "RT",
        in_steps: true,
        value: |s| count(s.round_trips),
    },
    Metric {
        label: "… of which front channel (browser)",
        short: "front",
        in_steps: true,
        value: |s| count(s.front_channel_round_trips),
    },
    Metric {
        label: "server-made requests (outbound)",
        short: "out",
        in_steps: true,
        value: |s| count(outbound(s)),
    },
    Metric {
        label: "bytes up (client → server)",
        short: "B up",
        in_steps: true,
        value: |s| whole(bytes_up(s)),
    },
    Metric {
        label: "… of which headers",
        short: "hdr up",
        in_steps: false,
        value: |s| whole(s.bytes.request_headers),
    },
    Metric {
        label: "bytes down (server → client)",
        short: "B down",
        in_steps: true,
        value: |s| whole(bytes_down(s)),
    },
    Metric {
        label: "… of which headers",
        short: "hdr down",
        in_steps: false,
        value: |s| whole(s.bytes.response_headers),
    },
    Metric {
        label: "latency p50 (ms)",
        short: "p50 ms",
        in_steps: true,
        value: |s| ms(s.latency_ms.p50),
    },
    Metric {
        label: "latency p95 (ms)",
        short: "p95 ms",
        in_steps: true,
        value: |s| ms(s.latency_ms.p95),
    },
    Metric {
        label: "latency p99 (ms)",
        short: "p99 ms",
        in_steps: true,
        value: |s| ms(s.latency_ms.p99),
    },
    Metric {
        label: "server CPU (µs)",
        short: "srv CPU µs",
        in_steps: true,
        value: |s| whole(s.cpu_us.server),
    },
    Metric {
        label: "client CPU (µs)",
        short: "cli CPU µs",
        in_steps: true,
        value: |s| whole(s.cpu_us.client),
    },
    Metric {
        label: "crypto operations, server",
        short: "crypto srv",
        in_steps: true,
        value: |s| count(s.crypto.server.values().sum()),
    },
    Metric {
        label: "crypto operations, client",
        short: "crypto cli",
        in_steps: true,
        value: |s| count(s.crypto.client.values().sum()),
    },
    Metric {
        label: "state records created",
        short: "records",
        in_steps: true,
        value: |s| count(records(s)),
    },
    Metric {
        label: "state bytes created",
        short: "state B",
        in_steps: true,
        value: |s| whole(s.state.bytes),
    },
    Metric {
        label: "person interactions",
        short: "person",
        in_steps: true,
        value: |s| count(s.person_interactions),
    },
    Metric {
        label: "browser redirects",
        short: "redirects",
        in_steps: true,
        value: |s| count(s.browser_redirects),
    },
    Metric {
        label: "parameter names in URLs",
        short: "in URLs",
        in_steps: true,
        value: exposure,
    },
];
