//! Child processes that run to their end: a peer printing JSON lines, a
//! `gnapd` CLI command.

use crate::support::process::GNAPD;

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

/// Runs `gnapd ARGS` with `stdin` as its input, to its end.
pub fn gnapd(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = std::process::Command::new(GNAPD)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `gnapd ARGS --data-dir DATA` against a running server's data dir:
/// (success, stdout). Its stderr is in the panic message of a caller that
/// asserts success with the stdout.
pub fn gnapd_cli(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = gnapd(
        &[args, &["--data-dir", data.to_str().unwrap()]].concat(),
        b"",
    );
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), text)
}
