//! The figures of one run: printed as a table as they come, summed up
//! against the goals of issue 19 (reported, never asserted), and written
//! as JSON.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::Res;
use super::args::Config;
use super::calls::CallWindow;
use super::disk::{Disk, FileSize};
use super::flow_window::FlowWindow;
use super::load::{Load, Stretch};
use super::procfs::{self, Memory, mb};
use super::server::{Startup, Stop};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub load_average_start: String,
    pub load_average_end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub tokens: usize,
    pub concurrency: usize,
    pub duration_secs: f64,
    pub sample: usize,
    pub data_root: String,
    pub client_threads: usize,
    /// The `--set` lines added to gnapd's config file.
    pub config_lines: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub gateway: CallWindow,
    pub first_token: FlowWindow,
    pub memory: Memory,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskFigures {
    /// Every grant the run made before the stop (baseline, its warm-up
    /// and the load): what the data dir holds.
    pub grants_in_store: u64,
    pub bytes: u64,
    pub allocated: u64,
    pub bytes_per_grant: f64,
    pub allocated_per_grant: f64,
    pub stop: Stop,
    pub files: Vec<FileSize>,
}

impl DiskFigures {
    pub fn new(disk: Disk, grants: u64, stop: Stop) -> Self {
        let per = |b: u64| b as f64 / grants.max(1) as f64;
        Self {
            grants_in_store: grants,
            bytes: disk.bytes,
            allocated: disk.allocated,
            bytes_per_grant: per(disk.bytes),
            allocated_per_grant: per(disk.allocated),
            stop,
            files: disk.files,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub startup: Startup,
    pub memory_at_first_answer: Memory,
    pub memory_after_1s: Memory,
    /// (tokens used so far, memory then): the tokens' first calls after
    /// the restart, in steps, before the gateway window.
    pub memory_by_tokens_used: Vec<(usize, Memory)>,
    pub gateway: CallWindow,
    pub first_token: FlowWindow,
    pub memory_end: Memory,
    pub stop: Stop,
}

/// After ÷ before: 1.0 is "the same as with one token / an empty store".
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    pub gateway_cpu_per_call_restart_vs_baseline: f64,
    pub first_token_cpu_restart_vs_baseline: f64,
    /// A window as the baseline's (keys made before it), in the process
    /// that just loaded the store, before the stop.
    pub first_token_cpu_full_store_vs_baseline: f64,
    /// The load's own last seconds: agents' keys made on the fly, so the
    /// generator takes more of the shared cores than in any window.
    pub first_token_cpu_end_of_load_vs_baseline: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub bench: &'static str,
    pub unix_time: i64,
    pub gnapd: String,
    pub machine: Machine,
    pub settings: Settings,
    pub baseline: Option<Baseline>,
    pub load: Option<Load>,
    /// First-token flows as in the baseline, on the full store, in the
    /// process that loaded it (before the stop).
    pub full_store: Option<FlowWindow>,
    /// The admin socket's `store_stats` at the end of the load: records
    /// and logical bytes (keys plus values) per table.
    pub store_tables: Value,
    pub disk: Option<DiskFigures>,
    pub restart: Option<Restart>,
    pub ratios: Ratios,
}

impl Figures {
    pub fn begin(cfg: &Config) -> Self {
        Self {
            bench: "scale",
            unix_time: super::agents::unix_now(),
            gnapd: cfg.gnapd.display().to_string(),
            machine: Machine {
                cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
                cpu: procfs::cpu_model(),
                load_average_start: procfs::loadavg(),
                load_average_end: String::new(),
            },
            settings: Settings {
                tokens: cfg.tokens,
                concurrency: cfg.concurrency,
                duration_secs: cfg.duration.as_secs_f64(),
                sample: cfg.sample,
                data_root: cfg.data_root.display().to_string(),
                client_threads: cfg.client_threads,
                config_lines: cfg
                    .settings
                    .iter()
                    .map(|l| l.trim_end().to_owned())
                    .collect(),
            },
            baseline: None,
            load: None,
            full_store: None,
            store_tables: Value::Null,
            disk: None,
            restart: None,
            ratios: Ratios::default(),
        }
    }

    /// The ratios, once every step has run.
    pub fn finish(&mut self) {
        self.machine.load_average_end = procfs::loadavg();
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        if let (Some(base), Some(after)) = (&self.baseline, &self.restart) {
            self.ratios.gateway_cpu_per_call_restart_vs_baseline = ratio(
                after.gateway.server_cpu_us_per_call,
                base.gateway.server_cpu_us_per_call,
            );
            self.ratios.first_token_cpu_restart_vs_baseline = ratio(
                after.first_token.server_cpu_us_per_flow,
                base.first_token.server_cpu_us_per_flow,
            );
        }
        if let (Some(base), Some(full)) = (&self.baseline, &self.full_store) {
            self.ratios.first_token_cpu_full_store_vs_baseline = ratio(
                full.server_cpu_us_per_flow,
                base.first_token.server_cpu_us_per_flow,
            );
        }
        if let (Some(base), Some(load)) = (&self.baseline, &self.load) {
            self.ratios.first_token_cpu_end_of_load_vs_baseline = ratio(
                load.last_window.server_cpu_us_per_flow,
                base.first_token.server_cpu_us_per_flow,
            );
        }
    }

    /// Flows and calls that failed anywhere.
    pub fn failures(&self) -> u64 {
        let base = self
            .baseline
            .as_ref()
            .map_or(0, |b| b.gateway.failed + b.first_token.errors);
        let load = self.load.as_ref().map_or(0, |l| l.errors);
        let full = self.full_store.as_ref().map_or(0, |w| w.errors);
        let after = self
            .restart
            .as_ref()
            .map_or(0, |r| r.gateway.failed + r.first_token.errors);
        base + load + full + after
    }
}

pub fn print_header(f: &Figures) {
    println!("scale: gnapd holding many live tokens (issue 19)");
    println!(
        "  machine: {} cores ({}); load average at start {}",
        f.machine.cores, f.machine.cpu, f.machine.load_average_start
    );
    println!(
        "  gnapd: {} (data dir under {})",
        f.gnapd, f.settings.data_root
    );
    println!(
        "  tokens {}, concurrency {}, windows {:.1} s, {} tokens kept for the gateway after the restart",
        f.settings.tokens, f.settings.concurrency, f.settings.duration_secs, f.settings.sample
    );
    if !f.settings.config_lines.is_empty() {
        println!("  config set: {}", f.settings.config_lines.join("; "));
    }
    println!(
        "  CPU = gnapd's utime+stime over the window ÷ flows or calls; RSS = VmRSS, anon = RssAnon (/proc/PID/status)"
    );
}

pub fn print_calls(label: &str, w: &CallWindow) {
    println!(
        "  {label:<24} {:>8.0} calls/s  server CPU {:>7.1} µs/call  (generator {:>6.1})  p50 {:.2} ms  p99 {:.2} ms  failed {}{}",
        w.calls_per_sec,
        w.server_cpu_us_per_call,
        w.generator_cpu_us_per_call,
        w.p50_ms,
        w.p99_ms,
        w.failed,
        if w.pool_used_up {
            "  (pool used up)"
        } else {
            ""
        }
    );
    println!(
        "  {:<24} gnapd {} at the start, peak RSS {} (anon {}), {} at the end",
        "",
        w.memory_start.show(),
        mb(w.rss_peak),
        mb(w.anon_peak),
        w.memory_end.show()
    );
    if let Some(first) = &w.first_failure {
        println!("  !! first failure: {first}");
    }
}

pub fn print_flows(label: &str, w: &FlowWindow) {
    println!(
        "  {label:<24} {:>8.0} flows/s  server CPU {:>7.1} µs/flow  (generator {:>6.1})  p50 {:.2} ms  p99 {:.2} ms  errors {}{}",
        w.flows_per_sec,
        w.server_cpu_us_per_flow,
        w.generator_cpu_us_per_flow,
        w.p50_ms,
        w.p99_ms,
        w.errors,
        if w.pool_used_up {
            "  (pool used up)"
        } else {
            ""
        }
    );
    if let Some(first) = &w.first_error {
        println!("  !! first error: {first}");
    }
}

pub fn print_stretch(label: &str, s: &Stretch) {
    println!(
        "  {label:<24} {:>8.0} flows/s  server CPU {:>7.1} µs/flow  (last {:.1} s, {} flows)",
        s.flows_per_sec, s.server_cpu_us_per_flow, s.secs, s.flows
    );
}

pub fn print_tables(tables: &Value) {
    let Some(map) = tables.as_object() else {
        return;
    };
    if let Some(why) = map.get("unavailable") {
        println!("  store tables: unavailable ({why})");
        return;
    }
    println!("  store tables (records, bytes of keys + values as stored; admin store_stats):");
    for (name, size) in map {
        let records = size["records"].as_u64().unwrap_or(0);
        let bytes = size["bytes"].as_u64().unwrap_or(0);
        if records > 0 {
            println!(
                "    {name:<28} {records:>10} records {bytes:>13} bytes  {:>8.1} bytes/record",
                bytes as f64 / records as f64
            );
        }
    }
}

pub fn print_disk(d: Option<&DiskFigures>) {
    let Some(d) = d else { return };
    println!(
        "  data dir: {} bytes in files, {} allocated, for {} grants: {:.1} bytes/grant ({:.1} allocated)",
        d.bytes, d.allocated, d.grants_in_store, d.bytes_per_grant, d.allocated_per_grant
    );
    for file in &d.files {
        println!(
            "    {:<40} {:>13} bytes {:>13} allocated",
            file.path, file.bytes, file.allocated
        );
    }
}

pub fn print_summary(f: &Figures) {
    println!();
    println!("summary against issue 19 (reported, not asserted)");
    let row = |what: &str, value: String, goal: &str| println!("  {what:<52} {value:>22}   {goal}");
    if let Some(r) = &f.restart {
        row(
            "RSS after the restart, under gateway load (peak)",
            mb(r.gateway.rss_peak),
            "goal <= 60 MB",
        );
        row(
            "  anonymous RSS, same window (peak)",
            mb(r.gateway.anon_peak),
            "",
        );
        row(
            "RSS right after the restart",
            mb(r.memory_at_first_answer.rss),
            "",
        );
        row(
            "start-up to first answer",
            format!("{:.1} ms", r.startup.to_first_answer_ms),
            "goal <= 100 ms",
        );
        row(
            "start-up to the listening line",
            format!("{:.1} ms", r.startup.to_listening_line_ms),
            "",
        );
    }
    if let Some(d) = &f.disk {
        row(
            "disk per immediately approved grant (file sizes)",
            format!("{:.1} B", d.bytes_per_grant),
            "goal <= 600 B",
        );
        row(
            "  allocated blocks per grant",
            format!("{:.1} B", d.allocated_per_grant),
            "",
        );
    }
    if let (Some(b), Some(r)) = (&f.baseline, &f.restart) {
        row(
            "gateway CPU per call, sampled tokens vs one token",
            format!(
                "{:.1} / {:.1} µs = {:.3}",
                r.gateway.server_cpu_us_per_call,
                b.gateway.server_cpu_us_per_call,
                f.ratios.gateway_cpu_per_call_restart_vs_baseline
            ),
            "goal <= 1.10",
        );
        row(
            "first-token CPU after the restart vs empty store",
            format!(
                "{:.1} / {:.1} µs = {:.3}",
                r.first_token.server_cpu_us_per_flow,
                b.first_token.server_cpu_us_per_flow,
                f.ratios.first_token_cpu_restart_vs_baseline
            ),
            "goal ~1.0",
        );
    }
    if let (Some(b), Some(full)) = (&f.baseline, &f.full_store) {
        row(
            "first-token CPU, full store before the stop vs empty store",
            format!(
                "{:.1} / {:.1} µs = {:.3}",
                full.server_cpu_us_per_flow,
                b.first_token.server_cpu_us_per_flow,
                f.ratios.first_token_cpu_full_store_vs_baseline
            ),
            "goal ~1.0",
        );
    }
    if let (Some(b), Some(l)) = (&f.baseline, &f.load) {
        row(
            "  the load's last seconds (keys made on the fly) vs empty store",
            format!(
                "{:.1} / {:.1} µs = {:.3}",
                l.last_window.server_cpu_us_per_flow,
                b.first_token.server_cpu_us_per_flow,
                f.ratios.first_token_cpu_end_of_load_vs_baseline
            ),
            "",
        );
        row("load rate", format!("{:.0} grants/s", l.grants_per_sec), "");
        row("RSS at the end of the load", mb(l.memory_end.rss), "");
    }
}

pub fn write_json(path: &Path, value: &impl Serialize) -> Res<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(value)?)?;
    Ok(())
}

/// RSS as the sampled tokens are first used after the restart, and what
/// each one added on average since the settled restart.
pub fn print_memory_by_tokens_used(settled: &Memory, steps: &[(usize, Memory)]) {
    for (used, memory) in steps {
        let per_token = (memory.rss as f64 - settled.rss as f64) / (*used).max(1) as f64;
        let anon_per_token = (memory.anon as f64 - settled.anon as f64) / (*used).max(1) as f64;
        println!(
            "  after {used:>6} tokens' first calls: {}; since 1 s after the restart {:.0} B per token (anon {:.0})",
            memory.show(),
            per_token,
            anon_per_token
        );
    }
}
