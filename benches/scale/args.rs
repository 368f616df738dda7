//! The scale bench's command line.

use std::path::PathBuf;
use std::time::Duration;

use super::Res;

pub const USAGE: &str = "\
scale: gnapd with many live tokens: load, disk, restart, gateway and first-token cost

  --tokens N            grants to load through the grant endpoint (default 1,000,000)
  --duration SECS       each measuring window (default 5)
  --concurrency N       connections, one request in flight each (default 16)
  --data-root DIR       where the fresh data dir goes (default /tmp)
  --gnapd PATH          gnapd binary (default: $GNAPD_BIN, else <target>/release/gnapd)
  --sample N            (token, key) pairs kept from the load for the gateway calls (default 2000)
  --json PATH           where the figures go (default <target>/scale/scale-<time>.json)
  --keep                keep the data dir afterwards
  --client-threads N    tokio worker threads of this generator (default 1)
  --set KEY=VALUE       one more line of gnapd's config file, `KEY = VALUE` (TOML;
                        repeatable), e.g. --set store_cache_mb=64
  --sweep               instead: a steady stream of short-lived agents, to see the sweeper
                        keep the store bounded; these flags set it up:
  --rate N              first-token flows a second (default 500)
  --lifetime SECS       token_lifetime and grant_lifetime (default 30)
  --sweep-interval SECS gnapd's sweep_interval (default 10)
  --run-for SECS        how long the stream runs (default 240)
  --every SECS          how often the data dir and RSS are sampled (default 10)
  --cluster             instead: first-token flows and gateway calls with 1..--nodes gnapd
                        nodes on one PostgreSQL, beside one node on sled (issue 20); the
                        database is $GNAPD_TEST_POSTGRES, else scripts/postgres.sh's
  --nodes N             the most nodes (default 3)
  --runs N              runs of every setup, in rotating order (default 3)
";

/// Everything the command line sets.
#[derive(Debug, Clone)]
pub struct Config {
    pub gnapd: PathBuf,
    pub tokens: usize,
    pub duration: Duration,
    pub concurrency: usize,
    pub data_root: PathBuf,
    pub sample: usize,
    pub json: PathBuf,
    pub keep: bool,
    pub client_threads: usize,
    /// `--set` lines, appended to gnapd's config file as given.
    pub settings: Vec<String>,
    pub sweep: Option<Sweep>,
    pub cluster: Option<Cluster>,
}

/// The `--cluster` mode's settings.
#[derive(Debug, Clone, Copy)]
pub struct Cluster {
    pub nodes: usize,
    pub runs: usize,
}

/// The `--sweep` mode's settings.
#[derive(Debug, Clone, Copy)]
pub struct Sweep {
    pub rate: f64,
    pub lifetime: u64,
    pub interval: u64,
    pub run_for: Duration,
    pub every: Duration,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    )
}

/// `1,000,000` and `1_000_000` read as `1000000`.
fn count(text: &str) -> Res<usize> {
    let digits: String = text.chars().filter(|c| !matches!(c, ',' | '_')).collect();
    Ok(digits.parse()?)
}

fn seconds(text: &str) -> Res<Duration> {
    let secs: f64 = text.parse()?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{text}: not a positive number of seconds").into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `KEY=VALUE` as the config line `KEY = VALUE`; the value is TOML as given.
fn setting(text: &str) -> Res<String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() && !value.trim().is_empty() => {
            Ok(format!("{} = {}\n", key.trim(), value.trim()))
        }
        _ => Err(format!("--set {text}: expected KEY=VALUE").into()),
    }
}

/// The settings, or `None` when `--help` was asked (the usage is printed).
pub fn parse(args: impl IntoIterator<Item = String>) -> Res<Option<Config>> {
    let target = target_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut cfg = Config {
        gnapd: std::env::var_os("GNAPD_BIN")
            .map_or_else(|| target.join("release").join("gnapd"), PathBuf::from),
        tokens: 1_000_000,
        duration: Duration::from_secs(5),
        concurrency: 16,
        data_root: PathBuf::from("/tmp"),
        sample: 2000,
        json: target.join("scale").join(format!("scale-{stamp}.json")),
        keep: false,
        client_threads: 1,
        settings: Vec::new(),
        sweep: None,
        cluster: None,
    };
    let mut cluster = Cluster { nodes: 3, runs: 3 };
    let mut clustering = false;
    let mut sweep = Sweep {
        rate: 500.0,
        lifetime: 30,
        interval: 10,
        run_for: Duration::from_secs(240),
        every: Duration::from_secs(10),
    };
    let mut sweeping = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--gnapd" => cfg.gnapd = value()?.into(),
            "--tokens" => cfg.tokens = count(&value()?)?,
            "--duration" => cfg.duration = seconds(&value()?)?,
            "--concurrency" => cfg.concurrency = count(&value()?)?,
            "--data-root" => cfg.data_root = value()?.into(),
            "--sample" => cfg.sample = count(&value()?)?,
            "--json" => cfg.json = value()?.into(),
            "--keep" => cfg.keep = true,
            "--client-threads" => cfg.client_threads = count(&value()?)?,
            "--set" => cfg.settings.push(setting(&value()?)?),
            "--sweep" => sweeping = true,
            "--rate" => sweep.rate = value()?.parse()?,
            "--lifetime" => sweep.lifetime = value()?.parse()?,
            "--sweep-interval" => sweep.interval = value()?.parse()?,
            "--run-for" => sweep.run_for = seconds(&value()?)?,
            "--every" => sweep.every = seconds(&value()?)?,
            "--cluster" => clustering = true,
            "--nodes" => cluster.nodes = count(&value()?)?,
            "--runs" => cluster.runs = count(&value()?)?,
            other => return Err(format!("unknown argument {other}; see --help").into()),
        }
    }
    if cfg.tokens == 0 || cfg.concurrency == 0 || cfg.sample == 0 || cfg.client_threads == 0 {
        return Err(
            "--tokens, --concurrency, --sample and --client-threads must be at least 1".into(),
        );
    }
    if !(sweep.rate.is_finite() && sweep.rate > 0.0) || sweep.lifetime == 0 || sweep.interval == 0 {
        return Err("--rate, --lifetime and --sweep-interval must be positive".into());
    }
    if sweeping {
        cfg.sweep = Some(sweep);
    }
    if clustering {
        if cluster.nodes == 0 || cluster.runs == 0 {
            return Err("--nodes and --runs must be at least 1".into());
        }
        if sweeping {
            return Err("--sweep and --cluster are two different runs".into());
        }
        cfg.cluster = Some(cluster);
    }
    Ok(Some(cfg))
}
