//! What one grant's durable write costs sled 0.34.7, by layout: the
//! numbers behind the store plan in spec-notes/rfc9635.md (issue 19).
//!
//! Each case writes for `--seconds` from 16 threads (`--threads`) into a
//! fresh database under /tmp, every write followed by a wait for a group
//! commit (one thread calling `Db::flush` back to back, as
//! `store::commit` does), and prints the process CPU per write (from
//! /proc/self/stat), writes per second, bytes on disk per write and RSS.
//! A report, never a pass/fail check: `cargo bench --bench sled_layouts`.
//!
//! Cases (values are filler bytes of the sizes gnapd's records have):
//! - `tx5`: five keys in a five-tree transaction (grant 700 B, continuation
//!   index, token 600 B, management index, instance 250 B): gnapd before
//!   issue 19;
//! - `batch5`: the same five keys in one tree's `apply_batch`;
//! - `plain5`: the same five keys as plain inserts into one tree;
//! - `one`: one record (`--value` bytes, default 200) under a random key;
//! - `seq`: the same under a sequential key.
//!
//! `--cache BYTES` sets sled's cache (default sled's 1 GiB);
//! `--reopen` opens the database once more after the run and prints how
//! long that took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

// The scale bench's reader of /proc, so CPU and memory are read one way in
// every bench that reports them.
#[path = "../scale/procfs.rs"]
#[allow(dead_code)]
mod procfs;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// This process's CPU (user + system) so far, in microseconds.
fn cpu_micros() -> u64 {
    let ticks = procfs::own_ticks().expect("/proc/self/stat");
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let micros = (ticks as f64 * 1e6 / procfs::clk_tck()) as u64;
    micros
}

fn rss_mb() -> f64 {
    let memory = procfs::Memory::of(std::process::id()).expect("/proc/self/status");
    #[allow(clippy::cast_precision_loss)]
    let mb = memory.rss as f64 / (1024.0 * 1024.0);
    mb
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Tickets and a flush thread: the shape of `store::commit`.
struct Commit {
    state: Mutex<(u64, u64)>,
    work: Condvar,
    done: Condvar,
}

impl Commit {
    fn start(db: sled::Db) -> Arc<Self> {
        let commit = Arc::new(Self {
            state: Mutex::new((0, 0)),
            work: Condvar::new(),
            done: Condvar::new(),
        });
        let shared = Arc::clone(&commit);
        std::thread::spawn(move || {
            loop {
                let mut state = shared.state.lock().unwrap();
                while state.0 == state.1 {
                    state = shared.work.wait(state).unwrap();
                }
                let target = state.0;
                drop(state);
                db.flush().unwrap();
                shared.state.lock().unwrap().1 = target;
                shared.done.notify_all();
            }
        });
        commit
    }

    fn wait_durable(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        let ticket = state.0;
        self.work.notify_one();
        while state.1 < ticket {
            state = self.done.wait(state).unwrap();
        }
    }
}

/// A cheap per-thread generator of distinct 32-byte keys.
fn next_key(seed: &mut u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        chunk.copy_from_slice(&seed.to_le_bytes());
    }
    out
}

static SEQUENCE: AtomicU64 = AtomicU64::new(1);

fn write_one(case: &str, trees: &[sled::Tree], one: &sled::Tree, seed: &mut u64, record: &[u8]) {
    let (grant, token, instance) = ([b'g'; 700], [b't'; 600], [b'i'; 250]);
    let (id, cont, hash, manage, inst) = (
        next_key(seed),
        next_key(seed),
        next_key(seed),
        next_key(seed),
        next_key(seed),
    );
    let keyed = |p: u8, k: &[u8]| [&[p][..], k].concat();
    match case {
        "tx5" => {
            use sled::Transactional as _;
            (&trees[0], &trees[1], &trees[2], &trees[3], &trees[4])
                .transaction(|(g, c, t, m, i)| {
                    c.insert(&cont[..], &id[..16])?;
                    g.insert(&id[..16], &grant[..])?;
                    t.insert(&hash[..], &token[..])?;
                    m.insert(&manage[..], &hash[..])?;
                    i.insert(&inst[..16], &instance[..])?;
                    Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
                })
                .unwrap();
        }
        "batch5" | "plain5" => {
            let pairs: [(Vec<u8>, &[u8]); 5] = [
                (keyed(b'c', &cont), &id[..16]),
                (keyed(b'g', &id[..16]), &grant[..]),
                (keyed(b't', &hash), &token[..]),
                (keyed(b'm', &manage), &hash[..]),
                (keyed(b'i', &inst[..16]), &instance[..]),
            ];
            if case == "batch5" {
                let mut batch = sled::Batch::default();
                for (k, v) in pairs {
                    batch.insert(k, v);
                }
                one.apply_batch(batch).unwrap();
            } else {
                for (k, v) in pairs {
                    one.insert(k, v).unwrap();
                }
            }
        }
        "one" => {
            one.insert(&id[..16], record).unwrap();
        }
        "seq" => {
            let key = SEQUENCE.fetch_add(1, Ordering::Relaxed).to_be_bytes();
            one.insert(key, record).unwrap();
        }
        other => panic!("unknown case {other}"),
    }
}

fn run(case: &str, threads: usize, seconds: u64, cache: Option<u64>, reopen: bool, record: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = sled::Config::new().path(dir.path()).flush_every_ms(None);
    if let Some(cache) = cache {
        config = config.cache_capacity(cache);
    }
    let db = config.open().unwrap();
    let trees: Vec<sled::Tree> = ["grants", "continuations", "tokens", "manage", "instances"]
        .iter()
        .map(|n| db.open_tree(n).unwrap())
        .collect();
    let one = db.open_tree("one").unwrap();
    let commit = Commit::start(db.clone());
    let (start, cpu) = (Instant::now(), cpu_micros());
    let writes: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (trees, one, commit) = (&trees, &one, &commit);
                s.spawn(move || {
                    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ ((t as u64 + 1) * 0x0123_4567);
                    let mut n = 0u64;
                    while start.elapsed() < Duration::from_secs(seconds) {
                        write_one(case, trees, one, &mut seed, record);
                        commit.wait_durable();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let (elapsed, cpu) = (start.elapsed().as_secs_f64(), cpu_micros() - cpu);
    db.flush().unwrap();
    #[allow(clippy::cast_precision_loss)]
    let (per_second, cpu_per, disk_per) = (
        writes as f64 / elapsed,
        cpu as f64 / writes as f64,
        dir_bytes(dir.path()) as f64 / writes as f64,
    );
    println!(
        "{case:<7} {writes:>9} writes {per_second:>9.0}/s  CPU {cpu_per:>6.1} µs/write  disk {disk_per:>6.0} B/write  RSS {:>7.1} MB",
        rss_mb()
    );
    if reopen {
        // The commit thread keeps its handle; a copy of the directory is
        // what a restart finds.
        let copy = tempfile::tempdir().unwrap();
        for entry in walk(dir.path()) {
            let target = copy.path().join(entry.strip_prefix(dir.path()).unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&entry, target).unwrap();
        }
        let opened = Instant::now();
        let again = sled::Config::new().path(copy.path()).open().unwrap();
        println!(
            "        reopened in {:?} ({} trees)",
            opened.elapsed(),
            again.tree_names().len()
        );
    }
}

fn walk(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(path)
        .unwrap()
        .flat_map(|e| {
            let e = e.unwrap();
            if e.metadata().unwrap().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} takes a number"))
            })
    };
    let threads = value("--threads").unwrap_or(16) as usize;
    let seconds = value("--seconds").unwrap_or(5);
    let cache = value("--cache");
    let reopen = args.iter().any(|a| a == "--reopen");
    let record = vec![b'r'; value("--value").unwrap_or(200) as usize];
    let cases: Vec<&str> = args
        .iter()
        .position(|a| a == "--cases")
        .and_then(|i| args.get(i + 1))
        .map_or(vec!["tx5", "batch5", "plain5", "one", "seq"], |c| {
            c.split(',').collect()
        });
    println!(
        "sled_layouts: {threads} writers, {seconds} s per case, cache {}",
        cache.map_or("sled's default".to_owned(), |c| format!("{c} B"))
    );
    for case in cases {
        run(case, threads, seconds, cache, reopen, &record);
    }
}
