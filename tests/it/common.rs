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

/// A throwaway CA and a leaf certificate for 127.0.0.1 signed by it (P-256,
/// one day), made with the `openssl` command line in `dir`.
pub struct TestPki {
    /// The CA certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The leaf certificate (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
}

/// Makes a [`TestPki`] in `dir`.
pub fn test_pki(dir: &std::path::Path) -> TestPki {
    let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let (ca, ca_key, csr, cert, key, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("leaf.csr"),
        path("cert.pem"),
        path("key.pem"),
        path("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=gnapd test CA",
                "-keyout",
                &ca_key,
                "-out",
                &ca,
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-subj", "/CN=127.0.0.1", "-keyout", &key, "-out", &csr],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    TestPki {
        ca: PathBuf::from(ca),
        cert: PathBuf::from(cert),
        key: PathBuf::from(key),
    }
}

/// The access token value in a GNAP grant or token-management answer; the
/// whole answer in the panic message when there is none.
pub fn access_token(answer: &Value) -> &str {
    answer["access_token"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token value in {answer}"))
}

/// Runs `gnapd ARGS --data-dir DATA` against a running server's data dir:
/// (success, stdout). Its stderr is in the panic message of a caller that
/// asserts success with the stdout.
pub fn gnapd_cli(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gnapd"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), text)
}
