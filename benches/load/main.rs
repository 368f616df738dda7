//! Load: 10,000 idle connections and 1,000 slow clients against `gnapd
//! serve` while agents keep working (issue 14). Not a test: it prints what
//! the agents saw — p50/p99 latency and error rate of their grant requests
//! and gateway calls, alone first and then under the attack — and gnapd's
//! RSS and CPU, for each run and as min/median/max over the runs. See
//! benches/load/README.md.

mod attack;
// The tests' process start (one copy for tests and benches); a bench uses
// part of it.
#[allow(dead_code)]
#[path = "../../tests/it/support/process.rs"]
mod process;
mod stats;
#[path = "../gateway/upstream.rs"]
mod upstream;

use std::error::Error;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gnapd::client::AccessSpec;
use gnapd::client::grant;
use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpSocket;

use crate::process::{GNAPD, Proc, serve_command};
use crate::stats::{Phase, Samples};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const UPSTREAM: &str = "bench";
const TOOL: &str = "create_issue";
const VERSION: &str = "2025-11-25";
/// One grant request in this many operations of an agent; the others are
/// gateway calls.
const GRANT_EVERY: usize = 10;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Starts a child whose first stdout line says where it listens; killed
/// when dropped.
fn start(command: Command) -> Res<Proc> {
    Ok(Proc::spawn(command, Duration::from_secs(30))?.0)
}

/// utime + stime of `pid`, in seconds (USER_HZ = 100).
fn cpu_of(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let utime: u64 = fields.get(11).ok_or("bad stat")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("bad stat")?.parse()?;
    Ok((utime + stime) as f64 / 100.0)
}

/// Resident set size of `pid`, in MiB.
fn rss_mib(pid: u32) -> Res<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// The 1-minute load average.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Raises this process's open file limit to its hard limit: the attack
/// alone takes 11,000 descriptors.
fn raise_descriptor_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(_) => limit.current,
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

/// A kept-alive HTTP/1 connection to `addr` from `from`.
async fn connect(addr: SocketAddr, from: IpAddr) -> Res<Sender> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `req` (its path and headers) on `sender`: (status, body).
async fn exchange(sender: &mut Sender, req: &HttpRequest, host: &str) -> Res<(u16, Bytes)> {
    let path = req
        .target_uri
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
        .unwrap_or_else(|| "/".into());
    let mut builder = Request::builder()
        .method(req.method.as_str())
        .uri(path)
        .header("host", host);
    for (name, value) in req.fields.iter() {
        builder = builder.header(name, value);
    }
    let request = builder.body(Full::new(Bytes::from(req.body.clone())))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// A grant request for one tool at the upstream, signed with `key`.
fn grant_request(grant_endpoint: &str, key: &SigningKey) -> Res<HttpRequest> {
    let access = AccessSpec::Explicit(vec![json!({"type": "mcp", "identifier": UPSTREAM,
        "actions": ["tools/call"], "tools": [TOOL]})]);
    let grant = grant::grant_request(key, "load agent", &access, &[], None);
    let mut req = HttpRequest::new("POST", grant_endpoint);
    req.body = serde_json::to_vec(&grant)?;
    req.fields.append("Content-Type", "application/json");
    sign_gnap(&mut req, key, now(), &SignOptions::default()).map_err(|e| format!("{e}"))?;
    Ok(req)
}

/// A gateway `tools/call`, signed with `key` and carrying `token`.
fn call_request(base: &str, id: usize, token: &str, key: &SigningKey) -> Res<HttpRequest> {
    let mut req = HttpRequest::new("POST", format!("{base}/mcp/{UPSTREAM}"));
    req.fields
        .append("Accept", "application/json, text/event-stream");
    req.fields.append("Content-Type", "application/json");
    req.fields.append("MCP-Protocol-Version", VERSION);
    req.fields.append("Authorization", format!("GNAP {token}"));
    req.body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"title": "load"}}}))?;
    sign_gnap(&mut req, key, now(), &SignOptions::default()).map_err(|e| format!("{e}"))?;
    Ok(req)
}

/// Where gnapd listens.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    grant_endpoint: String,
    base: String,
}

/// One agent at work until `stop`: a new grant every [`GRANT_EVERY`]
/// operations (its token), gateway calls with the token in between, one
/// at a time on a kept-alive connection (a new one after a failure).
async fn agent(target: Target, from: IpAddr, stop: Arc<AtomicBool>, samples: Arc<Samples>) {
    let Ok(key) = SigningKey::generate(Algorithm::Ed25519) else {
        samples.status(0);
        return;
    };
    let host = target.addr.to_string();
    let mut sender: Option<Sender> = None;
    let mut token: Option<String> = None;
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let grant = token.is_none() || n.is_multiple_of(GRANT_EVERY);
        n += 1;
        let started = Instant::now();
        let outcome: Res<(u16, Bytes)> = async {
            let req = match (&token, grant) {
                (Some(token), false) => call_request(&target.base, n, token, &key)?,
                _ => grant_request(&target.grant_endpoint, &key)?,
            };
            let s = match &mut sender {
                Some(s) => s,
                None => sender.insert(connect(target.addr, from).await?),
            };
            exchange(s, &req, &host).await
        }
        .await;
        let elapsed = started.elapsed();
        let ok = match outcome {
            Ok((200, body)) => {
                if grant {
                    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    if let Some(value) = answer["access_token"]["value"].as_str() {
                        token = Some(value.to_owned());
                    }
                }
                true
            }
            Ok((status, _)) => {
                samples.status(status);
                false
            }
            Err(_) => {
                samples.status(0);
                sender = None;
                false
            }
        };
        samples.record(grant, elapsed, ok);
    }
}

/// Runs the agents for `secs`, sampling gnapd's RSS: what they saw.
async fn work(target: &Target, agents: usize, secs: u64, gnapd: u32) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Samples::default());
    let cpu_before = cpu_of(gnapd).unwrap_or(f64::NAN);
    let tasks: Vec<_> = (0..agents)
        .map(|i| {
            let from = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (i % 250) as u8));
            tokio::spawn(agent(target.clone(), from, stop.clone(), samples.clone()))
        })
        .collect();
    let started = Instant::now();
    let mut rss_peak = 0f64;
    while started.elapsed() < Duration::from_secs(secs) {
        rss_peak = rss_peak.max(rss_mib(gnapd).unwrap_or(0.0));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(40), task).await;
    }
    let cpu = cpu_of(gnapd).unwrap_or(f64::NAN) - cpu_before;
    samples.phase(started.elapsed(), rss_peak, cpu)
}

fn spawn_gnapd(data: &std::path::Path, upstream_port: u16) -> Res<(Proc, Target)> {
    let bin = std::env::var("GNAPD_BIN").unwrap_or_else(|_| GNAPD.into());
    let mut cmd = serve_command(bin, data);
    cmd.args(["--dev", "--upstream"])
        .arg(format!("{UPSTREAM}=http://127.0.0.1:{upstream_port}/mcp"))
        .arg("--upstream-credential")
        .arg(format!("{UPSTREAM}=bearer:LOAD-UPSTREAM-SECRET"));
    // The agents are many clients behind a few loopback addresses, each
    // asking for a grant every few calls: a deployment expecting that
    // raises the grant rates, and so does this tool, or it would measure
    // the rate limit instead of the attack.
    let config = match std::env::var("GNAPD_LOAD_CONFIG") {
        Ok(config) => std::path::PathBuf::from(config),
        Err(_) => {
            let config = data.with_file_name("gnapd.toml");
            std::fs::write(
                &config,
                "grant_rate_per_address = { burst = 1000000, per_minute = 1000000000 }\n\
                 grant_rate_per_key = { burst = 1000000, per_minute = 1000000000 }\n",
            )?;
            config
        }
    };
    cmd.arg("--config").arg(config);
    match std::env::var("GNAPD_LOAD_LOG") {
        Ok(path) => cmd.stderr(std::fs::File::create(path)?),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let gnapd = start(cmd)?;
    let (addr, grant_endpoint) = gnapd.gnapd_address()?;
    let target = Target {
        addr,
        grant_endpoint,
        base: format!("http://{addr}"),
    };
    Ok((gnapd, target))
}

/// gnapd's `/metrics`, asked from an address of its own.
async fn metrics(target: &Target) -> Res<String> {
    let mut sender = connect(target.addr, IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1))).await?;
    let req = HttpRequest::new("GET", format!("{}/metrics", target.base));
    let (_, body) = exchange(&mut sender, &req, &target.addr.to_string()).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The sum of the series of `name` in `text`.
fn series_sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// One run: a fresh gnapd and upstream; the agents alone, then under
/// attack.
fn run(rt: &tokio::runtime::Runtime, settings: &Settings) -> Res<(Phase, Phase, attack::Report)> {
    let exe = std::env::current_exe()?;
    let mut up = Command::new(exe);
    up.arg("--upstream");
    let up = start(up)?;
    let port = up.port()?;
    let dir = tempfile::tempdir()?;
    let (gnapd, target) = spawn_gnapd(&dir.path().join("data"), port)?;
    let pid = gnapd.child.id();
    rt.block_on(async {
        let quiet = work(&target, settings.agents, settings.secs, pid).await;
        let attack = attack::Attack::start(target.addr, settings.idle, settings.slow);
        // Let every attacker connect, and the first wave of deadlines pass.
        tokio::time::sleep(Duration::from_secs(settings.ramp)).await;
        attack.measure();
        let under = work(&target, settings.agents, settings.secs, pid).await;
        let text = metrics(&target).await.unwrap_or_default();
        let mut report = attack.stop().await;
        report.gnapd_open = series_sum(&text, "gnapd_connections_open");
        report.gnapd_timed_out = series_sum(&text, "gnapd_connections_timed_out_total");
        report.gnapd_evicted = series_sum(&text, "gnapd_connections_evicted_total");
        Ok((quiet, under, report))
    })
}

struct Settings {
    runs: usize,
    secs: u64,
    ramp: u64,
    agents: usize,
    idle: usize,
    slow: usize,
}

fn main() {
    let result = if std::env::args().any(|a| a == "--upstream") {
        upstream::run(1)
    } else {
        bench()
    };
    if let Err(e) = result {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn bench() -> Res<()> {
    let settings = Settings {
        runs: env_num("GNAPD_LOAD_RUNS", 3),
        secs: env_num("GNAPD_LOAD_SECS", 20) as u64,
        ramp: env_num("GNAPD_LOAD_RAMP", 15) as u64,
        agents: env_num("GNAPD_LOAD_AGENTS", 8),
        idle: env_num("GNAPD_LOAD_IDLE", 10_000),
        slow: env_num("GNAPD_LOAD_SLOW", 1_000),
    };
    let limit = raise_descriptor_limit();
    println!(
        "load: {} runs; {} agents for {} s alone, then {} s under {} idle connections and {} slow clients (after {} s of ramp); open file limit {limit:?}",
        settings.runs,
        settings.agents,
        settings.secs,
        settings.secs,
        settings.idle,
        settings.slow,
        settings.ramp,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_num("GNAPD_LOAD_THREADS", 2))
        .enable_all()
        .build()?;
    let mut results = Vec::new();
    for i in 0..settings.runs {
        let load_before = loadavg();
        let (quiet, under, report) = run(&rt, &settings)?;
        println!(
            "run {} (load average {load_before:.1} before, {:.1} after)",
            i + 1,
            loadavg()
        );
        println!("  alone        {quiet}");
        println!("  under attack {under}");
        println!("  attack       {report}");
        results.push((quiet, under, report));
    }
    stats::summary(&results);
    Ok(())
}
