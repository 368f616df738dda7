//! Durability under a real crash: a child process writes grants as fast as
//! it can and prints each token hash once `create_grant` has returned `Ok`;
//! the parent SIGKILLs it mid-stream, reopens the directory and finds every
//! printed token. A token the AS answered with survives the process dying.
//!
//! The child is this same test binary, re-run with `--exact` on
//! [`child_writes_grants_until_killed`]; without the environment
//! variable that test returns at once, so ordinary runs pass it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use gnapd::store::sled::SledStore;
use gnapd::store::{Store, TokenHash};

use crate::store_contract::{FOREVER, Fixture};

/// Tells the child where the store lives (and that it is the child).
const DIR_ENV: &str = "GNAPD_STORE_CRASH_DIR";
/// The child test, as libtest names it in this binary.
const CHILD: &str = "store_crash::child_writes_grants_until_killed";
/// Acknowledged writes to see before pulling the plug.
const KILL_AFTER: usize = 500;
/// Writer threads in the child.
const WRITERS: usize = 8;
/// The child gives up on its own after this, should the parent vanish.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);
/// The parent's bound on the whole exchange.
const PARENT_TIMEOUT: Duration = Duration::from_secs(60);

fn hex(hash: &TokenHash) -> String {
    hash.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_committed(line: &str) -> Option<TokenHash> {
    let hex = line.strip_prefix("committed ")?;
    if hex.len() != 64 {
        return None;
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(TokenHash(hash))
}

/// The child: write until killed (or until `CHILD_LIFETIME`).
#[test]
fn child_writes_grants_until_killed() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let store = SledStore::open(Path::new(&dir)).unwrap();
    let fixture = Fixture::new();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..WRITERS {
            s.spawn(|| {
                while start.elapsed() < CHILD_LIFETIME {
                    let (grant, tokens) = fixture.grant(1, FOREVER);
                    store.create_grant(&grant, &tokens).unwrap();
                    // Only now may the client learn the token.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "committed {}", hex(&tokens[0].0)).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

/// Kills the child however the parent leaves.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_acknowledged_grant_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD, "--nocapture", "--test-threads=1"])
        .env(DIR_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut child = KillOnDrop(child);

    // Lines arrive on a channel so the parent can time out.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + PARENT_TIMEOUT;
    let mut acknowledged = Vec::new();
    while acknowledged.len() < KILL_AFTER {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acknowledged.extend(parse_committed(&line)),
            Err(RecvTimeoutError::Timeout) => {
                panic!(
                    "the child acknowledged only {} writes in {PARENT_TIMEOUT:?}",
                    acknowledged.len()
                )
            }
            Err(RecvTimeoutError::Disconnected) => panic!(
                "the child stopped after {} writes: {:?}",
                acknowledged.len(),
                child.0.wait()
            ),
        }
    }

    // Pull the plug while the writers are mid-flight.
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL, not a clean exit: {status:?}"
    );
    // Whatever it printed before dying was acknowledged too.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => acknowledged.extend(parse_committed(&line)),
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                panic!("the child's stdout stayed open after SIGKILL")
            }
        }
    }
    reader.join().unwrap();

    let store = SledStore::open(dir.path()).unwrap();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|hash| store.token(hash).unwrap().is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged tokens lost: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    for hash in &acknowledged {
        let token = store.token(hash).unwrap().unwrap();
        let grant = store.grant(&token.grant).unwrap();
        assert!(
            grant.is_some_and(|g| g.tokens.contains(hash)),
            "grant of {hash:?}"
        );
    }
    println!(
        "{} acknowledged grants all survived SIGKILL",
        acknowledged.len()
    );
}
