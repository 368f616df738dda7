//! Helpers shared by the integration tests.

use std::path::PathBuf;

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a JSON file from `tests/vectors/`.
pub fn vector(name: &str) -> Value {
    let path = root().join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The interop virtualenv's Python (`GNAPD_INTEROP_PYTHON`, else the one
/// `scripts/test.sh` creates). A missing interpreter fails the test; interop
/// tests are never skipped.
pub fn python() -> PathBuf {
    let path = std::env::var_os("GNAPD_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/interop-venv/bin/python"));
    assert!(
        path.exists(),
        "the interop Python is missing at {}: run scripts/test.sh (it creates the virtualenv with the peers and `mcp`)",
        path.display()
    );
    path
}

/// What a bounded child run printed.
pub struct Finished {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Each stdout line, parsed as JSON.
    pub lines: Vec<serde_json::Value>,
    /// stdout and stderr, for assertion messages.
    pub output: String,
}

/// Runs `command` (stdin closed) until it exits or `deadline` passes; a child
/// still running then is killed and the test fails, so a hung peer cannot
/// hang the suite. Every stdout line must be JSON.
pub fn run_json_lines(
    mut command: std::process::Command,
    deadline: std::time::Duration,
    what: &str,
) -> Finished {
    use std::io::Read as _;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let until = std::time::Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let output = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert!(
        status.is_some(),
        "{what} did not finish within {deadline:?}:\n{output}"
    );
    let lines = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{what} printed a non-JSON line {l:?} ({e}):\n{output}"))
        })
        .collect();
    Finished {
        code: status.and_then(|s| s.code()),
        lines,
        output,
    }
}
