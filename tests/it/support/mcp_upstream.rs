//! The real upstream MCP server for the gateway tests:
//! `tests/interop/mcp_upstream.py`, built on the official Python SDK, which
//! logs the headers of every request it receives.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::paths::{python, root};
use crate::support::process::Proc;

/// The Python MCP server; killed when dropped.
pub struct Upstream {
    /// Killed when dropped.
    _process: Proc,
    pub port: u16,
    log: PathBuf,
    scheme: &'static str,
}

impl Upstream {
    /// Starts the server; `json_response` makes it answer in JSON, not SSE.
    pub fn start(dir: &Path, json_response: bool) -> Self {
        Self::start_with(dir, json_response, None)
    }

    /// Starts the server as its own OAuth authorization server (`--oauth`,
    /// see the script): /mcp demands a live access token, /token refreshes.
    pub fn start_oauth(dir: &Path, token_lifetime: u64) -> Self {
        Self::launch(
            dir,
            &[
                "--json-response",
                "--oauth",
                "--token-lifetime",
                &token_lifetime.to_string(),
            ],
            "http",
        )
    }

    /// [`Self::start_oauth`] whose token endpoint answers `delay` after it
    /// rotated the refresh token (`--token-delay`): concurrent refreshes
    /// overlap there.
    pub fn start_oauth_slow(dir: &Path, token_lifetime: u64, delay: Duration) -> Self {
        Self::launch(
            dir,
            &[
                "--json-response".to_owned(),
                "--oauth".to_owned(),
                "--token-lifetime".to_owned(),
                token_lifetime.to_string(),
                "--token-delay".to_owned(),
                delay.as_secs_f64().to_string(),
            ],
            "http",
        )
    }

    /// Starts the server (JSON answers) demanding header `name` with
    /// `value` on every request (`--require-header`).
    pub fn start_requiring(dir: &Path, name: &str, value: &str) -> Self {
        Self::launch(
            dir,
            &[
                "--json-response".to_owned(),
                "--require-header".to_owned(),
                format!("{name}={value}"),
            ],
            "http",
        )
    }

    /// Starts the server (JSON answers) demanding a bearer token that the
    /// userinfo endpoint `userinfo` accepts (`--userinfo`).
    pub fn start_userinfo(dir: &Path, userinfo: &str) -> Self {
        Self::launch(dir, &["--json-response", "--userinfo", userinfo], "http")
    }

    /// Starts the server (SSE answers) with resumable streams
    /// (`--event-store`): a GET with `Last-Event-ID` replays a stream.
    pub fn start_resumable(dir: &Path) -> Self {
        Self::launch(dir, &["--event-store"], "http")
    }

    /// Starts the server over HTTPS with `cert` and `key` (PEM).
    pub fn start_tls(dir: &Path, json_response: bool, cert: &Path, key: &Path) -> Self {
        Self::start_with(dir, json_response, Some((cert, key)))
    }

    fn start_with(dir: &Path, json_response: bool, tls: Option<(&Path, &Path)>) -> Self {
        let mut args: Vec<&std::ffi::OsStr> = Vec::new();
        if json_response {
            args.push("--json-response".as_ref());
        }
        if let Some((cert, key)) = tls {
            args.extend([
                "--tls-cert".as_ref(),
                cert.as_os_str(),
                "--tls-key".as_ref(),
                key.as_os_str(),
            ]);
        }
        Self::launch(dir, &args, if tls.is_some() { "https" } else { "http" })
    }

    fn launch<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: &[S], scheme: &'static str) -> Self {
        let log = dir.join("upstream-headers.jsonl");
        let mut command = Command::new(python());
        command
            .arg(root().join("tests/interop/mcp_upstream.py"))
            .arg("--headers-log")
            .arg(&log)
            .args(args);
        command.stderr(Stdio::inherit());
        let (process, _) = Proc::spawn(command, Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!("the MCP upstream did not start: is the `mcp` package in the interop venv? (run scripts/test.sh)")
        });
        let port = process
            .port()
            .unwrap_or_else(|_| panic!("unexpected upstream output: {}", process.first_line));
        Self {
            _process: process,
            port,
            log,
            scheme,
        }
    }

    /// Its token endpoint (with `--oauth`).
    pub fn token_endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}/token", self.scheme, self.port)
    }

    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/mcp", self.scheme, self.port)
    }

    /// Every request the upstream has received: (method, headers).
    pub fn requests(&self) -> Vec<(String, Vec<(String, String)>)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let entry: Value = serde_json::from_str(line).unwrap();
                let headers = entry["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| {
                        (
                            h[0].as_str().unwrap().to_owned(),
                            h[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                (entry["method"].as_str().unwrap().to_owned(), headers)
            })
            .collect()
    }
}

/// The upstream whose JSON decoder reads member names as Go's
/// `encoding/json` does (tests/interop/mcp_golike_upstream.py): case-blind,
/// Unicode-folding, last duplicate wins. It records every tool call,
/// prompt and resource read it executes; killed when dropped.
pub struct GoLikeUpstream {
    /// Killed when dropped.
    _process: Proc,
    pub port: u16,
    executed: PathBuf,
}

impl GoLikeUpstream {
    /// Starts it with `args`, more of the script's flags
    /// (`--methods-any-case`).
    pub fn start(dir: &Path, args: &[&str]) -> Self {
        let executed = dir.join("golike-executed.jsonl");
        let mut command = Command::new(python());
        command
            .arg(root().join("tests/interop/mcp_golike_upstream.py"))
            .arg("--executed-log")
            .arg(&executed)
            .args(args)
            .stderr(Stdio::inherit());
        let (process, _) = Proc::spawn(command, Duration::from_secs(60)).unwrap();
        let port = process.port().unwrap_or_else(|_| {
            panic!(
                "unexpected Go-like upstream output: {:?}",
                process.first_line
            )
        });
        Self {
            _process: process,
            port,
            executed,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// What it has executed, in order: `{"method", "name"}` or
    /// `{"method", "uri"}`.
    pub fn executed(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.executed)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}
