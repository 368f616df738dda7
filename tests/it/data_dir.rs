//! The data dir and what `gnapd serve` writes into it are its user's alone
//! (issue 13 §4): the real binary, started the way an operator would.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use std::time::Duration;

use serde_json::json;

use crate::support::agent::Agent;
use crate::support::server::{Serve, Server};

/// `gnapd serve --dev` on `data`, started by a shell whose umask is 000:
/// whatever gnapd leaves readable to others, this umask would not hide.
fn start_with_open_umask(data: &Path) -> Server {
    Serve::new(data).dev().after_shell("umask 000").start()
}

/// Every path under `dir` whose mode lets group or others in, with the mode.
fn open_to_others(dir: &Path) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.mode() & 0o077 != 0 {
            found.push((path.display().to_string(), meta.mode() & 0o777));
        }
        if meta.is_dir() {
            found.extend(open_to_others(&path));
        }
    }
    found
}

#[test]
fn an_existing_data_dir_open_to_others_is_made_private_and_nothing_in_it_is_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let server = start_with_open_umask(&data);
    // The store writes grants and tokens; the dev master key is generated.
    let agent = Agent::new();
    let body = agent.grant_body(json!(["mcp:github"]));
    let answer = server.grant(&agent, &body);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let running = open_to_others(&data);
    assert_eq!(server.stop(), Some(0));

    let mode = std::fs::metadata(&data).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data dir is {mode:o}");
    assert!(data.join("master.key").exists());
    assert!(
        running.is_empty() && open_to_others(&data).is_empty(),
        "open to others while running: {running:?}; after: {:?}",
        open_to_others(&data)
    );
}

#[test]
fn a_data_dir_owned_by_another_user_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = if rustix::process::geteuid().is_root() {
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
        data
    } else {
        // Not root: `/` belongs to someone else.
        Path::new("/").to_owned()
    };
    // Bounded: a server that starts anyway is killed and the test fails.
    let (status, stderr) = Serve::new(&data).dev().refused(Duration::from_secs(20));
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("is owned by uid"), "{stderr}");
    assert!(std::fs::read_dir(&data).unwrap().next().is_none() || data == Path::new("/"));
}

/// A clean stop checkpoints the store (`store::sled::checkpoint`): the
/// snapshot sled reads at the next start is the one written at the stop,
/// past every grant answered, and the grant is still found after it.
#[test]
fn a_clean_stop_leaves_a_snapshot_past_every_grant_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = data.join("store");
    let snapshots = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&store)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("snap."))
            .collect();
        names.sort();
        names
    };
    let log = dir.path().join("gnapd.log");
    let server = Serve::new(&data).dev().log(&log).start();
    let at_start = snapshots();
    let agent = Agent::new();
    for _ in 0..20 {
        let answer = server.grant(&agent, &agent.grant_body(json!(["mcp:x"])));
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    assert_eq!(server.stop(), Some(0), "SIGTERM ends the server cleanly");
    let at_stop = snapshots();
    assert!(
        at_stop.last() > at_start.last(),
        "no newer snapshot: {at_start:?} then {at_stop:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("store checkpointed"), "{text}");
    let server = Serve::new(&data).dev().start();
    assert_eq!(
        snapshots().last(),
        at_stop.last(),
        "nothing left to take in at the start"
    );
    drop(server);
}
