//! One comparison from start to end: the world started, every scenario
//! run for every variant (interleaved), every attack tried, the report
//! assembled and written.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::external::OidcProvider;
use super::meter::Tap;
use super::recorder::{Recorder, StepSample};
use super::report::{AttackReport, Report, SCHEMA_VERSION, ScenarioReport, ScenarioResult};
use super::variant::{Attack, Scenario, Variant};
use super::world::World;
use super::{attacks, env, gnap, markdown, oauth, plots, settings, stats};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The gnapd binary the instances run.
    pub exe: PathBuf,
    /// Where the report goes.
    pub out: PathBuf,
    /// Runs per scenario and variant.
    pub runs: u32,
    /// Steady-state calls per run.
    pub calls: u32,
    /// Keep the instances' data dirs and logs (`OUT/work`).
    pub keep_work: bool,
    /// `--with-oidc-provider`: the Node 22 binary that runs
    /// node-oidc-provider as the third column's AS.
    pub oidc_provider_node: Option<PathBuf>,
}

/// Why a comparison stopped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CompareError(pub String);

/// The files written.
#[derive(Debug)]
pub struct Written {
    /// `report.json`.
    pub json: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
}

/// Runs the comparison and writes the report.
pub async fn run(plan: &Plan) -> Result<(Report, Written), CompareError> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    // Located before anything starts: a wrong path fails at once.
    let oidc = plan
        .oidc_provider_node
        .as_deref()
        .map(OidcProvider::locate)
        .transpose()
        .map_err(CompareError)?;
    // Read before anything runs: the load average is the machine's at the
    // start, and the checkout's state is the one the binary was run from.
    let environment = env::read(
        &plan.exe,
        oidc.iter().flat_map(OidcProvider::peers).collect(),
    );
    let work = plan.out.join("work");
    clear_work(&work)?;
    let world = World::start_with(&plan.exe, &work, oidc.as_ref())
        .map_err(|e| CompareError(e.to_string()))?;
    let progress = Progress::new();

    let variants = Variant::list(oidc.is_some());
    let mut scenarios = Vec::new();
    for scenario in Scenario::ALL {
        let mut samples: BTreeMap<&str, Vec<Vec<StepSample>>> = BTreeMap::new();
        let mut failures: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        // Warm-up: the first request of a kind pays for lazily built
        // state (the upstream connection, the opened credential set);
        // measuring it would bill that to whichever variant came first.
        for variant in variants.iter().copied() {
            if not_applicable(variant, scenario).is_some() {
                continue;
            }
            progress.show(&format!("{} · warm-up · {}", scenario.id(), variant.id()));
            if let Err(e) = run_once(&world, variant, scenario, plan.calls).await {
                failures
                    .entry(variant.id())
                    .or_default()
                    .push(format!("warm-up: {e}"));
            }
        }
        for run in 0..plan.runs {
            // Rotate the order each run: no variant always goes first.
            let offset = run as usize % variants.len();
            for variant in variants
                .iter()
                .cycle()
                .skip(offset)
                .take(variants.len())
                .copied()
            {
                if not_applicable(variant, scenario).is_some() {
                    continue;
                }
                progress.show(&format!(
                    "{} · run {}/{} · {}",
                    scenario.id(),
                    run + 1,
                    plan.runs,
                    variant.id()
                ));
                match run_once(&world, variant, scenario, plan.calls).await {
                    Ok(steps) => samples.entry(variant.id()).or_default().push(steps),
                    Err(e) => failures.entry(variant.id()).or_default().push(e),
                }
            }
        }
        let results = variants
            .iter()
            .map(|variant| {
                let reason = not_applicable(*variant, scenario);
                let runs = samples.remove(variant.id()).unwrap_or_default();
                let (steps, total) = stats::steps(&runs);
                ScenarioResult {
                    variant: variant.id().to_owned(),
                    not_applicable: reason.map(str::to_owned),
                    failures: failures.remove(variant.id()).unwrap_or_default(),
                    steps,
                    total,
                }
            })
            .collect();
        scenarios.push(ScenarioReport {
            id: scenario.id().to_owned(),
            title: scenario.title().to_owned(),
            results,
        });
    }

    let mut attack_reports = Vec::new();
    for attack in Attack::ALL {
        let mut results = Vec::new();
        for variant in variants.iter().copied() {
            progress.show(&format!("attack {} · {}", attack.id(), variant.id()));
            let tap = Tap::new();
            results.push(attacks::attempt(&world, variant, attack, &tap).await);
        }
        attack_reports.push(AttackReport {
            id: attack.id().to_owned(),
            title: attack.title().to_owned(),
            results,
        });
    }
    progress.done();

    let report = Report {
        schema_version: SCHEMA_VERSION,
        started_at,
        duration_seconds: started.elapsed().as_secs_f64(),
        environment,
        settings: settings::settings(plan.runs, plan.calls, oidc.is_some()),
        variants: variants.iter().map(|v| v.info()).collect(),
        scenarios,
        attacks: attack_reports,
    };
    drop(world);
    if !plan.keep_work {
        let _ = std::fs::remove_dir_all(&work);
    }
    let written = write(&report, &plan.out)?;
    Ok((report, written))
}

fn not_applicable(variant: Variant, scenario: Scenario) -> Option<&'static str> {
    if variant.is_gnap() {
        gnap::not_applicable(variant, scenario)
    } else {
        oauth::not_applicable(variant, scenario)
    }
}

async fn run_once(
    world: &World,
    variant: Variant,
    scenario: Scenario,
    calls: u32,
) -> Result<Vec<StepSample>, String> {
    let mut probes = world
        .probes_of(variant, scenario)
        .ok_or_else(|| format!("no instance for {}", variant.id()))?;
    let tap = Tap::new();
    let mut rec = Recorder::new(&tap, &mut probes);
    let outcome = if variant.is_gnap() {
        gnap::run(world, variant, scenario, calls, &mut rec, &tap).await
    } else {
        oauth::run(world, variant, scenario, calls, &mut rec, &tap).await
    };
    outcome.map_err(|e| e.to_string())?;
    rec.finish().await.map_err(|e| e.to_string())
}

fn write(report: &Report, out: &Path) -> Result<Written, CompareError> {
    let io = |path: &Path, e: std::io::Error| CompareError(format!("{}: {e}", path.display()));
    let json = out.join("report.json");
    let text = serde_json::to_string_pretty(report).map_err(|e| CompareError(e.to_string()))?;
    std::fs::write(&json, text + "\n").map_err(|e| io(&json, e))?;
    let markdown_path = out.join("report.md");
    std::fs::write(&markdown_path, markdown::render(report)).map_err(|e| io(&markdown_path, e))?;
    let plot_dir = out.join("plots");
    std::fs::create_dir_all(&plot_dir).map_err(|e| io(&plot_dir, e))?;
    let plots = plots::write_plots(report, &plot_dir).map_err(CompareError)?;
    Ok(Written {
        json,
        markdown: markdown_path,
        plots,
    })
}

/// The file that marks `OUT/work` as a comparison's own.
const WORK_MARK: &str = ".gnapd-compare-work";

/// Makes `work` empty and ours. A previous run's data dirs (marked) are
/// removed, since they would not be fresh; a `work` dir the tool did not
/// make (`--out .` in a project that has one) is never deleted: the run
/// stops instead.
fn clear_work(work: &Path) -> Result<(), CompareError> {
    let io = |e: std::io::Error| CompareError(format!("{}: {e}", work.display()));
    if work.exists() {
        if !work.join(WORK_MARK).is_file() {
            return Err(CompareError(format!(
                "{} exists and is not a previous comparison's work dir: choose another --out",
                work.display()
            )));
        }
        std::fs::remove_dir_all(work).map_err(io)?;
    }
    std::fs::create_dir_all(work).map_err(io)?;
    std::fs::write(work.join(WORK_MARK), b"").map_err(io)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, from the system clock.
pub(crate) fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm, written out).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The progress line on stderr: rewritten in place on a terminal, one
/// line per change elsewhere (CI logs).
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn show(&self, what: &str) {
        if self.terminal {
            eprint!("\r\x1b[Kcompare: {what}");
        } else {
            eprintln!("compare: {what}");
        }
    }

    fn done(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_work_dir_the_tool_did_not_make_is_never_deleted() {
        let out = tempfile::tempdir().unwrap();
        let work = out.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("precious"), b"x").unwrap();
        assert!(clear_work(&work).is_err());
        assert!(work.join("precious").is_file(), "left alone");
        // A previous comparison's (marked) work dir is emptied.
        std::fs::remove_file(work.join("precious")).unwrap();
        std::fs::write(work.join(WORK_MARK), b"").unwrap();
        std::fs::write(work.join("stale"), b"x").unwrap();
        clear_work(&work).unwrap();
        assert!(!work.join("stale").exists());
        assert!(work.join(WORK_MARK).is_file());
    }

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_794), (2026, 12, 7));
    }
}
