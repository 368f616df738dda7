//! Each store operation's cost on sled and on PostgreSQL, side by side in
//! one run (issue 20, "Benchmark"): the same records, the same calls
//! through the `Store` trait, one caller thread, `--ops` calls each.
//!
//! Reported per operation and backend: wall time per call (what a request
//! waits) and CPU per call, counted as this process's CPU (sled works in
//! it; so do the PostgreSQL store's connection threads) plus, for
//! PostgreSQL, the CPU of the database server's processes (the postmaster
//! and its children, read from /proc before and after). Then durable
//! `create_grant`s per second with 16 caller threads. min/median/max over
//! `--runs` runs, each on a fresh data dir and a fresh schema.
//!
//! The database is the one `GNAPD_TEST_POSTGRES` names (a key=value
//! conninfo), else the throwaway cluster `scripts/postgres.sh start` runs.
//! A report, never a pass/fail check: `cargo bench --bench store_backends`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/it/support/store_fixture.rs"]
#[allow(dead_code)]
mod store_fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gnapd::store::postgres::{Conninfo, PostgresStore};
use gnapd::store::sled::SledStore;
use gnapd::store::{GrantRecord, ReplayBudget, Store, TokenHash, TokenRecord};
use store_fixture::{FOREVER, Fixture, hash_for};

const USAGE: &str = "\
store_backends: each store operation on sled and on PostgreSQL, side by side

  --ops N       calls per operation and run (default 2000)
  --runs N      runs, each on a fresh data dir and schema (default 3)
  --threads N   caller threads of the throughput row (default 16)
  --secs S      seconds of the throughput row (default 3)
  --connections N  the PostgreSQL store's connections (default: gnapd's)
";

/// The operations, in the order they run (each on the records the
/// earlier ones left).
const OPERATIONS: [&str; 9] = [
    "create_grant (1 token)",
    "token, first read",
    "token, read again",
    "grant_by_continuation",
    "continuation_swap (+1 token)",
    "token_swap",
    "revoke_token",
    "replay claim (fresh)",
    "delete_grant",
];

struct Args {
    ops: usize,
    runs: usize,
    threads: usize,
    secs: u64,
    connections: Option<usize>,
}

fn args() -> Option<Args> {
    let mut args = Args {
        ops: 2000,
        runs: 3,
        threads: 16,
        secs: 3,
        connections: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{a} needs a number\n{USAGE}"))
        };
        match a.as_str() {
            "--ops" => args.ops = usize::try_from(value()).unwrap(),
            "--runs" => args.runs = usize::try_from(value()).unwrap().max(1),
            "--threads" => args.threads = usize::try_from(value()).unwrap().max(1),
            "--secs" => args.secs = value().max(1),
            "--connections" => args.connections = Some(usize::try_from(value()).unwrap().max(1)),
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                return None;
            }
            other => panic!("unknown argument {other}\n{USAGE}"),
        }
    }
    Some(args)
}

/// CPU ticks (utime + stime) of a process, all its threads.
fn ticks_of(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// The parent of a process.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn clk_tck() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// The database server's processes: its postmaster (from
/// `postmaster.pid` in its data dir) and every child of it. Its
/// backends live as long as their connections, which the store holds
/// for the whole run.
struct Database {
    postmaster: Option<u32>,
}

impl Database {
    fn find(data_dir: Option<&Path>) -> Self {
        let postmaster = data_dir
            .and_then(|d| std::fs::read_to_string(d.join("postmaster.pid")).ok())
            .and_then(|text| text.lines().next()?.trim().parse().ok());
        Self { postmaster }
    }

    fn ticks(&self) -> u64 {
        let Some(postmaster) = self.postmaster else {
            return 0;
        };
        let mut total = ticks_of(postmaster);
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok())
                    && parent_of(pid) == Some(postmaster)
                {
                    total += ticks_of(pid);
                }
            }
        }
        total
    }
}

/// The test PostgreSQL's conninfo and data dir (for its processes' CPU).
fn server() -> (String, Option<PathBuf>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let conninfo = match std::env::var("GNAPD_TEST_POSTGRES") {
        Ok(c) if !c.trim().is_empty() => c,
        _ => {
            let out = Command::new("bash")
                .arg(root.join("scripts/postgres.sh"))
                .arg("start")
                .output()
                .expect("cannot run scripts/postgres.sh");
            assert!(
                out.status.success(),
                "scripts/postgres.sh start failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }
    };
    // `host=DIR` of the script's cluster: its data dir is DIR/data.
    let data = conninfo
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("host="))
        .filter(|h| h.starts_with('/'))
        .map(|h| Path::new(h).join("data"));
    (conninfo, data)
}

/// A fresh schema on the server, dropped with its tables afterwards.
struct Schema {
    name: String,
    admin: String,
}

impl Schema {
    fn new(conninfo: &str) -> Self {
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut client = postgres::Client::connect(conninfo, postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        Self {
            name,
            admin: conninfo.to_owned(),
        }
    }

    fn conninfo(&self) -> String {
        format!("{} options='-c search_path={}'", self.admin, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

/// Wall and CPU of one operation, per call.
#[derive(Clone, Copy, Default)]
struct Cost {
    wall_us: f64,
    cpu_us: f64,
}

/// Times `calls` calls of `op` (given the call's index): wall per call,
/// and this process's plus the database's CPU per call.
fn timed(db: &Database, tck: f64, calls: usize, mut op: impl FnMut(usize)) -> Cost {
    let (own0, db0) = (ticks_of(std::process::id()), db.ticks());
    let start = Instant::now();
    for i in 0..calls {
        op(i);
    }
    let wall = start.elapsed();
    let ticks = ticks_of(std::process::id()) - own0 + db.ticks().saturating_sub(db0);
    #[allow(clippy::cast_precision_loss)]
    let n = calls.max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    Cost {
        wall_us: wall.as_secs_f64() * 1e6 / n,
        cpu_us: ticks as f64 * 1e6 / tck / n,
    }
}

/// One run of every operation on `store`.
fn operations(store: &dyn Store, db: &Database, tck: f64, calls: usize) -> Vec<Cost> {
    let fixture = Fixture::new();
    let made: Vec<(GrantRecord, Vec<(TokenHash, TokenRecord)>)> =
        (0..calls).map(|_| fixture.grant(1, FOREVER)).collect();
    let mut costs = Vec::with_capacity(OPERATIONS.len());
    costs.push(timed(db, tck, calls, |i| {
        store.create_grant(&made[i].0, &made[i].1).unwrap();
    }));
    for _ in 0..2 {
        costs.push(timed(db, tck, calls, |i| {
            assert!(store.token_shared(&made[i].1[0].0).unwrap().is_some());
        }));
    }
    costs.push(timed(db, tck, calls, |i| {
        let continuation = made[i].0.continuation.as_ref().unwrap().token;
        assert!(
            store
                .grant_by_continuation(&continuation)
                .unwrap()
                .is_some()
        );
    }));
    // Each grant continued once: a new continuation and one more token.
    let mut continued: Vec<GrantRecord> = Vec::with_capacity(calls);
    costs.push(timed(db, tck, calls, |i| {
        let grant = &made[i].0;
        let old = grant.continuation.as_ref().unwrap().token;
        let mut next = grant.clone();
        let extra = fixture.token(&grant.id, FOREVER);
        next.tokens.push(extra.0);
        if let Some(c) = next.continuation.as_mut() {
            c.token = hash_for(&grant.id);
        }
        assert!(store.continuation_swap(&old, &next, &[extra]).unwrap());
        continued.push(next);
    }));
    // Each grant's first token rotated, then the rotated one revoked.
    let mut rotated: Vec<TokenHash> = Vec::with_capacity(calls);
    costs.push(timed(db, tck, calls, |i| {
        let (hash, record) = &made[i].1[0];
        let new = fixture.token(&record.grant, FOREVER);
        rotated.push(new.1.manage);
        assert!(store.token_swap(&record.manage, hash, &new).unwrap());
    }));
    costs.push(timed(db, tck, calls, |i| {
        assert!(store.revoke_token(&rotated[i]).unwrap());
    }));
    let scope = fixture.scope().clone();
    let now = unix_now();
    costs.push(timed(db, tck, calls, |i| {
        let value = format!("signature-{i}-{}", uuid::Uuid::new_v4());
        let seen = store
            .replay(ReplayBudget::Bound)
            .remember(&scope, value.as_bytes(), now + 300, now)
            .unwrap();
        assert!(matches!(seen, gnapd::proto::httpsig::nonce::Seen::Fresh));
    }));
    costs.push(timed(db, tck, calls, |i| {
        let continuation = continued[i].continuation.as_ref().unwrap().token;
        assert!(store.delete_grant(&continuation).unwrap());
    }));
    costs
}

/// Durable `create_grant`s per second with `threads` callers for `secs`,
/// and the CPU per grant (this process's and the database's).
fn throughput(store: &dyn Store, db: &Database, tck: f64, threads: usize, secs: u64) -> Cost {
    let fixture = Fixture::new();
    let run = Duration::from_secs(secs);
    let (own0, db0) = (ticks_of(std::process::id()), db.ticks());
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let fixture = &fixture;
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < run {
                        let (grant, tokens) = fixture.grant(1, FOREVER);
                        store.create_grant(&grant, &tokens).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = ticks_of(std::process::id()) - own0 + db.ticks().saturating_sub(db0);
    #[allow(clippy::cast_precision_loss)]
    let n = done.max(1) as f64;
    // `wall_us` holds grants per second here.
    #[allow(clippy::cast_precision_loss)]
    Cost {
        wall_us: done as f64 / elapsed,
        cpu_us: ticks as f64 * 1e6 / tck / n,
    }
}

fn unix_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// (min, median, max).
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let Some(args) = args() else { return };
    let tck = clk_tck();
    let (conninfo, pg_data) = server();
    let db = Database::find(pg_data.as_deref());
    if db.postmaster.is_none() {
        eprintln!(
            "store_backends: the database's processes are not visible here; its CPU is not counted"
        );
    }
    let none = Database { postmaster: None };
    // [backend][run][operation]; the throughput row last.
    let mut sled_runs: Vec<Vec<Cost>> = Vec::new();
    let mut pg_runs: Vec<Vec<Cost>> = Vec::new();
    for run in 0..args.runs {
        // Alternate which backend goes first.
        let order: [bool; 2] = if run % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for sled in order {
            if sled {
                let dir = tempfile::tempdir().unwrap();
                let store = SledStore::open(dir.path()).unwrap();
                let mut costs = operations(&store, &none, tck, args.ops);
                costs.push(throughput(&store, &none, tck, args.threads, args.secs));
                store.close().unwrap();
                sled_runs.push(costs);
            } else {
                let schema = Schema::new(&conninfo);
                let conninfo = Conninfo::parse(&schema.conninfo()).unwrap();
                let store = match args.connections {
                    Some(n) => PostgresStore::open_at(&conninfo, n, unix_now()).unwrap(),
                    None => PostgresStore::open(&conninfo).unwrap(),
                };
                let mut costs = operations(&store, &db, tck, args.ops);
                costs.push(throughput(&store, &db, tck, args.threads, args.secs));
                store.close().unwrap();
                pg_runs.push(costs);
            }
        }
    }
    println!(
        "store operations, one caller, {} calls each, {} runs (min/median/max); \
         CPU = this process + the database server's processes",
        args.ops, args.runs
    );
    println!(
        "{:<30} {:>24} {:>24} {:>24} {:>24} {:>8}",
        "operation", "sled wall µs", "sled CPU µs", "postgres wall µs", "postgres CPU µs", "wall ×"
    );
    let fmt = |(a, b, c): (f64, f64, f64)| format!("{a:.1}/{b:.1}/{c:.1}");
    for (i, name) in OPERATIONS.iter().enumerate() {
        let column = |runs: &Vec<Vec<Cost>>, wall: bool| {
            spread(
                runs.iter()
                    .map(|r| if wall { r[i].wall_us } else { r[i].cpu_us })
                    .collect(),
            )
        };
        let (sw, pw) = (column(&sled_runs, true), column(&pg_runs, true));
        println!(
            "{name:<30} {:>24} {:>24} {:>24} {:>24} {:>8.1}",
            fmt(sw),
            fmt(column(&sled_runs, false)),
            fmt(pw),
            fmt(column(&pg_runs, false)),
            pw.1 / sw.1
        );
    }
    let last = OPERATIONS.len();
    let column = |runs: &Vec<Vec<Cost>>, rate: bool| {
        spread(
            runs.iter()
                .map(|r| {
                    if rate {
                        r[last].wall_us
                    } else {
                        r[last].cpu_us
                    }
                })
                .collect(),
        )
    };
    let (sr, pr) = (column(&sled_runs, true), column(&pg_runs, true));
    println!(
        "durable create_grant, {} threads, {} s: sled {} grants/s (CPU {} µs each), \
         postgres {} grants/s (CPU {} µs each); postgres/sled {:.2}",
        args.threads,
        args.secs,
        fmt(sr),
        fmt(column(&sled_runs, false)),
        fmt(pr),
        fmt(column(&pg_runs, false)),
        pr.1 / sr.1
    );
}
