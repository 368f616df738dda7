//! The data dir and what `gnapd serve` writes into it are its user's alone
//! (issue 13 §4): the real binary, started the way an operator would.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use gnapd::clock::{Clock as _, SystemClock};
use serde_json::json;

use crate::agent::Agent;
use crate::http_client::send;
use crate::server::Server;

/// `gnapd serve --dev` on `data`, started by a shell whose umask is 000:
/// whatever gnapd leaves readable to others, this umask would not hide.
fn start_with_open_umask(data: &Path) -> Server {
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 000; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_gnapd"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data);
    Server::spawn(command).0
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
    let answer = send(
        server.addr,
        &agent.signed(
            "POST",
            &server.grant_endpoint,
            None,
            Some(&body),
            SystemClock.now(),
        ),
    );
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that starts anyway is killed and the test fails.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status = status.unwrap_or_else(|| panic!("gnapd served a data dir owned by another user"));
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("is owned by uid"), "{stderr}");
    assert!(std::fs::read_dir(&data).unwrap().next().is_none() || data == Path::new("/"));
}
