//! The Prometheus text exposition format, as far as gnapd's metrics need
//! it: shared by the AS's and the gateway's metrics, which know nothing of
//! each other.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes one unlabelled counter, with its help and type lines.
pub fn write_counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
        value.load(Ordering::Relaxed)
    );
}
