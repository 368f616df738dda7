//! The MCP gateway benchmark (issue 4, "Benchmark (not a test)"): latency
//! added by `gnapd`'s gateway and its throughput against a ceiling made of
//! two floors, all measured in one run on one machine. It prints numbers and
//! ratios; it never fails because of them.
//!
//! Processes (each apart, so that /proc gives each one's CPU time):
//! - the minimal upstream (`upstream.rs`, this binary with `--upstream`):
//!   any POST → a fixed small JSON-RPC result. Not an MCP server.
//! - `gnapd serve --dev --upstream bench=… --upstream-credential
//!   'bench=bearer:…'` (the release binary), the gateway under test, as it
//!   runs by default (signatures checked in batches under load);
//! - a second gnapd, the same with `--no-signature-batching` (every
//!   signature checked alone), so that what batching buys is measured in
//!   the same run;
//! - the minimal forwarding proxy (`proxy.rs`, `--proxy`): hyper in, pooled
//!   hyper-util client out, no checks — the "proxy floor";
//! - the verifying proxy (the same with `--verify KEY`): the proxy plus one
//!   `verify_strict` of each body — a reference, not part of the ratio;
//! - this process: the load generator (tokio, hyper http1 connections, one
//!   request in flight per connection), and the raw `verify_strict` floor.
//!
//! (1) Latency: 1,000 sequential 1 KiB `tools/call` POSTs through the gateway
//! and 1,000 straight to the upstream, interleaved one by one (gateway,
//! direct, gateway, ...) on one kept-alive connection each, after 100 warm-up
//! pairs. Added latency = p50/p99 through the gateway minus p50/p99 direct.
//!
//! (2) Throughput at concurrency 16, in rounds (proxy, verifying proxy,
//! gateway, gateway with single checks, raw verify), so drift on the shared
//! machine hits all alike:
//! - proxy floor: 16 connections to the proxy, requests of the same shape
//!   and size as the gateway's;
//! - gateway: 16 connections, each request with a fresh signature (pool
//!   pre-signed before the timed phase: each nonce is single use), a valid
//!   token for the upstream and the 1 KiB body;
//! - raw verify: `ed25519_dalek::VerifyingKey::verify_strict` over 1 KiB
//!   messages on as many threads as gnapd's runtime has workers;
//! - ceiling = 1 / (1/proxy + 1/raw_verify); ratio = gateway / ceiling
//!   (goal ≥ 0.75), per round and over the medians; beside it the verifying
//!   proxy against the ceiling and the gateway against the verifying proxy,
//!   and the gateway with single checks against the same ceiling. The
//!   ceiling assumes one `verify_strict` per call; batching beats that
//!   assumption, so both gateways are printed, and the share of signatures
//!   that went into batch equations (from gnapd's `/metrics`).
//!
//! Server CPU per request = Δ(utime+stime) of the server process (from
//! /proc/<pid>/stat, 10 ms ticks) / requests, printed beside req/s: it does
//! not depend on the load generator, which shares the cores.
//!
//! Knobs (environment): `GNAPD_BIN` (gnapd binary; default the one cargo
//! built), `GNAPD_BENCH_SECS` (seconds per throughput phase, default 3),
//! `GNAPD_BENCH_ROUNDS` (default 3), `GNAPD_BENCH_CONC` (default 16),
//! `GNAPD_BENCH_THREADS` (server worker threads assumed; default the
//! number of CPUs, which is what gnapd's runtime uses), `GNAPD_BENCH_LATENCY_N`
//! (default 1000), `GNAPD_BENCH_POOL` (pre-signed requests per gateway
//! phase, default 30000 per second of phase), `RUST_LOG` (passed to gnapd;
//! its stderr goes to /dev/null unless `GNAPD_BENCH_LOG` names a file),
//! `GNAPD_BENCH_PAUSE` (seconds to wait, with gnapd's pid printed, before
//! the throughput rounds, e.g. to attach `perf record -p`),
//! `GNAPD_BENCH_UPSTREAM_THREADS` (the upstream's tokio workers, default 2),
//! `GNAPD_BENCH_COMPARE` (another gnapd binary, run as the default one is
//! and measured in the same rounds: after it in the first round, before
//! it in the second, and so on alternately; the last line gives its CPU per
//! call and the per-round differences, which drift between rounds does not
//! move).
//!
//! Run: `cargo build --release && cargo bench --bench gateway`.
//! See benches/gateway/README.md.

// The tests' process start (one copy for tests and benches); a bench uses
// part of it.
#[allow(dead_code)]
#[path = "../../tests/it/support/process.rs"]
mod process;
mod proxy;
mod upstream;

use std::error::Error;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ed25519_dalek::Signer as _;
use gnapd::client::AccessSpec;
use gnapd::client::grant::grant_request;
use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::process::{GNAPD, Proc, serve_command};

pub type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const BODY_LEN: usize = 1024;
const UPSTREAM: &str = "bench";
const SECRET: &str = "BENCH-UPSTREAM-SECRET";
const VERSION: &str = "2025-11-25";
const TOOL: &str = "create_issue";

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

/// A JSON-RPC `tools/call` body, exactly [`BODY_LEN`] bytes (as in
/// benches/verify.rs); `id` keeps every body distinct.
fn mcp_body(id: usize) -> Res<Vec<u8>> {
    let head = format!(
        concat!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"#,
            r#""name":"create_issue","arguments":{{"owner":"octo-org","repo":"mcp-gateway","#,
            r#""title":"Gateway drops MCP-Session-Id on SSE reconnect","#,
            r#""labels":["bug","gateway","sse"],"assignees":["octocat"],"#,
            r#""body":""#
        ),
        100_000_000 + id
    );
    let tail = r#""},"_meta":{"progressToken":"pt-7f3a"}}}"#;
    let filler = "When the upstream MCP server closes the event stream, the gateway \
        reconnects with Last-Event-ID but does not forward the MCP-Session-Id header, \
        so the server starts a new session and the agent loses its tool state. ";
    let room = BODY_LEN
        .checked_sub(head.len() + tail.len())
        .ok_or("body head too long")?;
    let pad: String = filler.chars().cycle().take(room).collect();
    let body = format!("{head}{pad}{tail}").into_bytes();
    if body.len() != BODY_LEN {
        return Err(format!("body is {} bytes, not {BODY_LEN}", body.len()).into());
    }
    Ok(body)
}

/// A request ready to send on an http1 connection (path-form URI + Host).
#[derive(Clone)]
struct Wire {
    path: String,
    host: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Wire {
    fn from_http(req: &HttpRequest, host: &str, path: &str) -> Res<Self> {
        let mut headers = Vec::new();
        for (name, value) in req.fields.iter() {
            headers.push((
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())?,
                HeaderValue::from_bytes(value)?,
            ));
        }
        Ok(Self {
            path: path.to_owned(),
            host: host.to_owned(),
            headers,
            body: Bytes::from(req.body.clone()),
        })
    }

    fn request(self) -> Res<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method("POST")
            .uri(self.path)
            .header("host", self.host);
        if let Some(h) = builder.headers_mut() {
            for (name, value) in self.headers {
                h.append(name, value);
            }
        }
        Ok(builder.body(Full::new(self.body))?)
    }
}

/// The MCP call as the agent builds it: headers, body, token, signature.
fn mcp_request(uri: &str, id: usize, token: Option<&str>, key: &SigningKey) -> Res<HttpRequest> {
    let mut req = HttpRequest::new("POST", uri);
    req.fields
        .append("Accept", "application/json, text/event-stream");
    req.fields.append("Content-Type", "application/json");
    req.fields.append("MCP-Protocol-Version", VERSION);
    req.body = mcp_body(id)?;
    if let Some(token) = token {
        req.fields.append("Authorization", format!("GNAP {token}"));
        sign_gnap(&mut req, key, now(), &SignOptions::default()).map_err(|e| format!("{e}"))?;
    }
    Ok(req)
}

/// `n` freshly signed gateway calls, signed on `threads` threads.
fn sign_pool(
    n: usize,
    first_id: usize,
    base: &str,
    host: &str,
    token: &str,
    key: &SigningKey,
    threads: usize,
) -> Res<Vec<Wire>> {
    let uri = format!("{base}/mcp/{UPSTREAM}");
    let path = format!("/mcp/{UPSTREAM}");
    let chunk = n.div_ceil(threads.max(1));
    let parts: Vec<Res<Vec<Wire>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                let (uri, path) = (&uri, &path);
                s.spawn(move || -> Res<Vec<Wire>> {
                    let lo = t * chunk;
                    let hi = ((t + 1) * chunk).min(n);
                    (lo..hi)
                        .map(|i| {
                            let req = mcp_request(uri, first_id + i, Some(token), key)?;
                            Wire::from_http(&req, host, path)
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("signing thread panicked".into()))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(n);
    for part in parts {
        all.extend(part?);
    }
    Ok(all)
}

/// Starts a child that prints `listening on PORT` (or gnapd's line)
/// first; killed when dropped.
fn start(command: Command) -> Res<Proc> {
    Ok(Proc::spawn(command, Duration::from_secs(30))?.0)
}

/// utime + stime of the process and all its threads, in seconds.
fn cpu(proc: &Proc) -> Res<f64> {
    cpu_of(proc.child.id())
}

/// utime + stime (fields 14 and 15 of /proc/<pid>/stat), in seconds
/// (USER_HZ = 100 on Linux).
fn cpu_of(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // rest starts at field 3; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).ok_or("bad stat")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("bad stat")?.parse()?;
    Ok((utime + stime) as f64 / 100.0)
}

fn self_cpu() -> Res<f64> {
    cpu_of(std::process::id())
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Res<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer: (status, body).
async fn exchange(sender: &mut Sender, wire: Wire) -> Res<(u16, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(wire.request()?).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One throughput phase: `conc` connections, each sending its share of
/// `pool` one at a time until the deadline. Returns (ok, failed, seconds).
async fn load(
    addr: SocketAddr,
    pool: Vec<Wire>,
    conc: usize,
    secs: f64,
) -> Res<(u64, u64, f64, bool)> {
    let mut senders = Vec::with_capacity(conc);
    for _ in 0..conc {
        senders.push(connect(addr).await?);
    }
    let per = pool.len() / conc;
    let mut shares: Vec<Vec<Wire>> = Vec::with_capacity(conc);
    let mut it = pool.into_iter();
    for _ in 0..conc {
        shares.push(it.by_ref().take(per).collect());
    }
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let exhausted = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let mut tasks = Vec::with_capacity(conc);
    for (mut sender, share) in senders.into_iter().zip(shares) {
        let (ok, failed, exhausted) = (ok.clone(), failed.clone(), exhausted.clone());
        tasks.push(tokio::spawn(async move {
            let mut share = share.into_iter();
            while Instant::now() < deadline {
                let Some(wire) = share.next() else {
                    exhausted.store(true, Ordering::Relaxed);
                    break;
                };
                match exchange(&mut sender, wire).await {
                    Ok((200, _)) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(_) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        elapsed,
        exhausted.load(Ordering::Relaxed),
    ))
}

/// How many signatures the batched floor checks per equation: about the
/// average gnapd's own counters show under this bench's load (6.3–6.8).
const BATCH_FLOOR_SIZE: usize = 7;

/// Raw verification of 1 KiB messages on `threads` threads for `secs`:
/// signatures per second (all threads) and CPU seconds per signature.
/// `batch` 1 is `verify_strict` alone; more is `verify_batch` over that
/// many at a time (the floor of a gateway that checks in batches).
fn raw_verify(threads: usize, secs: f64, batch: usize) -> Res<(f64, f64)> {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let public = key.verifying_key();
    let msgs: Vec<(Vec<u8>, ed25519_dalek::Signature)> = (0..256)
        .map(|i| {
            let m = mcp_body(i)?;
            let s = key.sign(&m);
            Ok((m, s))
        })
        .collect::<Res<_>>()?;
    let msgs = Arc::new(msgs);
    let cpu0 = self_cpu()?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let counts: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let msgs = msgs.clone();
                s.spawn(move || {
                    let (mut ok, mut bad) = (0u64, 0u64);
                    let keys = vec![public; batch];
                    'outer: loop {
                        if batch == 1 {
                            for (m, sig) in msgs.iter() {
                                if public.verify_strict(std::hint::black_box(m), sig).is_ok() {
                                    ok += 1;
                                } else {
                                    bad += 1;
                                }
                            }
                        } else {
                            for chunk in msgs.chunks_exact(batch) {
                                let ms: Vec<&[u8]> =
                                    chunk.iter().map(|(m, _)| m.as_slice()).collect();
                                let sigs: Vec<_> = chunk.iter().map(|(_, s)| *s).collect();
                                let n = chunk.len() as u64;
                                if ed25519_dalek::verify_batch(
                                    std::hint::black_box(&ms),
                                    &sigs,
                                    &keys,
                                )
                                .is_ok()
                                {
                                    ok += n;
                                } else {
                                    bad += n;
                                }
                            }
                        }
                        if Instant::now() >= deadline {
                            break 'outer;
                        }
                    }
                    (ok, bad)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 1)))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = self_cpu()? - cpu0;
    let ok: u64 = counts.iter().map(|c| c.0).sum();
    let bad: u64 = counts.iter().map(|c| c.1).sum();
    if bad > 0 {
        return Err(format!("{bad} raw verifications failed").into());
    }
    Ok((ok as f64 / elapsed, cpu / ok as f64))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    pct(&s, 50.0)
}

fn mmm(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!(
        "{:>9.1} {:>9.1} {:>9.1}",
        s.first().copied().unwrap_or(f64::NAN),
        pct(&s, 50.0),
        s.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.iter().any(|a| a == "--upstream") {
        upstream::run(env_num("GNAPD_BENCH_UPSTREAM_THREADS", 2))
    } else if let Some(i) = args.iter().position(|a| a == "--proxy") {
        let key = match args.iter().position(|a| a == "--verify") {
            None => Ok(None),
            Some(k) => args
                .get(k + 1)
                .and_then(|hex| public_key_from_hex(hex))
                .map(Some)
                .ok_or("--verify takes a 64-digit hex Ed25519 public key"),
        };
        match (
            args.get(i + 1),
            args.get(i + 2).and_then(|t| t.parse().ok()),
            key,
        ) {
            (_, _, Err(e)) => Err(e.into()),
            (Some(base), Some(threads), Ok(key)) => proxy::run(base, threads, key),
            _ => Err("usage: --proxy UPSTREAM_BASE THREADS [--verify PUBLIC_KEY_HEX]".into()),
        }
    } else {
        bench()
    };
    if let Err(e) = result {
        eprintln!("gateway bench: {e}");
        std::process::exit(1);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn public_key_from_hex(text: &str) -> Option<ed25519_dalek::VerifyingKey> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, i) in bytes.iter_mut().zip((0..64).step_by(2)) {
        *byte = u8::from_str_radix(&text[i..i + 2], 16).ok()?;
    }
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

fn gnapd_bin() -> String {
    std::env::var("GNAPD_BIN").unwrap_or_else(|_| GNAPD.to_owned())
}

/// Starts `gnapd serve --dev` in front of the upstream with `extra` flags:
/// the process, its address and its grant endpoint.
fn spawn_gnapd(
    data: &std::path::Path,
    up_base: &str,
    extra: &[&str],
) -> Res<(Proc, SocketAddr, String)> {
    spawn_gnapd_from(&gnapd_bin(), data, up_base, extra)
}

/// [`spawn_gnapd`] with the binary at `bin`.
fn spawn_gnapd_from(
    bin: &str,
    data: &std::path::Path,
    up_base: &str,
    extra: &[&str],
) -> Res<(Proc, SocketAddr, String)> {
    let mut cmd = serve_command(bin, data);
    cmd.args(["--dev", "--upstream"])
        .arg(format!("{UPSTREAM}={up_base}/mcp"))
        .arg("--upstream-credential")
        .arg(format!("{UPSTREAM}=bearer:{SECRET}"))
        .args(extra);
    match std::env::var("GNAPD_BENCH_LOG") {
        Ok(path) => cmd.stderr(std::fs::File::create(path)?),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    let gnapd = start(cmd)?;
    let (addr, grant_endpoint) = gnapd.gnapd_address()?;
    Ok((gnapd, addr, grant_endpoint))
}

/// A token for `tools/call` of one tool at the upstream, bound to `key`,
/// from the dev AS at `addr`.
fn fetch_token(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    grant_endpoint: &str,
    key: &SigningKey,
) -> Res<String> {
    let access = AccessSpec::Explicit(vec![json!({"type": "mcp", "identifier": UPSTREAM,
        "actions": ["tools/call"], "tools": [TOOL]})]);
    let grant = grant_request(key, "bench agent", &access, &[], None);
    let mut req = HttpRequest::new("POST", grant_endpoint);
    req.body = serde_json::to_vec(&grant)?;
    req.fields.append("Content-Type", "application/json");
    sign_gnap(&mut req, key, now(), &SignOptions::default()).map_err(|e| format!("{e}"))?;
    let wire = Wire::from_http(&req, &addr.to_string(), "/gnap")?;
    let (status, body) = rt.block_on(async {
        let mut s = connect(addr).await?;
        exchange(&mut s, wire).await
    })?;
    if status != 200 {
        return Err(format!("grant: HTTP {status}: {}", String::from_utf8_lossy(&body)).into());
    }
    let answer: Value = serde_json::from_slice(&body)?;
    Ok(answer["access_token"]["value"]
        .as_str()
        .ok_or("no access token in the grant response")?
        .to_owned())
}

/// gnapd's batching counters from `/metrics`: signatures checked, checked
/// in batch equations, equations.
fn batch_counters(rt: &tokio::runtime::Runtime, addr: SocketAddr) -> Res<(u64, u64, u64)> {
    let text = rt.block_on(async {
        let mut sender = connect(addr).await?;
        sender.ready().await?;
        let request = Request::builder()
            .method("GET")
            .uri("/metrics")
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let response = sender.send_request(request).await?;
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, Box<dyn Error + Send + Sync>>(String::from_utf8_lossy(&body).into_owned())
    })?;
    let counter = |name: &str| -> Res<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .ok_or_else(|| format!("/metrics has no {name}"))?
            .trim()
            .parse::<u64>()
            .map_err(Into::into)
    };
    Ok((
        counter("gnapd_gateway_signatures_checked_total")?,
        counter("gnapd_gateway_signatures_batched_total")?,
        counter("gnapd_gateway_signature_batches_total")?,
    ))
}

fn bench() -> Res<()> {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = env_num("GNAPD_BENCH_THREADS", cpus);
    let conc = env_num("GNAPD_BENCH_CONC", 16);
    let secs = env_num("GNAPD_BENCH_SECS", 3) as f64;
    let rounds = env_num("GNAPD_BENCH_ROUNDS", 3);
    let latency_n = env_num("GNAPD_BENCH_LATENCY_N", 1000);
    let pool_n = env_num("GNAPD_BENCH_POOL", 30_000 * secs as usize);
    let exe = std::env::current_exe()?;

    // The upstream.
    let mut cmd = Command::new(&exe);
    cmd.arg("--upstream");
    let upstream = start(cmd)?;
    let up_port = upstream.port()?;
    let up_addr: SocketAddr = ([127, 0, 0, 1], up_port).into();
    let up_base = format!("http://127.0.0.1:{up_port}");

    // gnapd, twice: as it runs by default (signatures checked in batches
    // under load) and with every signature checked alone.
    let dir = tempfile::tempdir()?;
    let (gnapd, gw_addr, grant_endpoint) = spawn_gnapd(&dir.path().join("data"), &up_base, &[])?;
    let (gnapd1, gw1_addr, grant_endpoint1) = spawn_gnapd(
        &dir.path().join("data-single"),
        &up_base,
        &["--no-signature-batching"],
    )?;
    let gw_base = grant_endpoint.trim_end_matches("/gnap").to_owned();
    let gw_host = gw_addr.to_string();
    let gw1_base = grant_endpoint1.trim_end_matches("/gnap").to_owned();
    let gw1_host = gw1_addr.to_string();
    // Another gnapd binary measured in the same rounds, for A/B comparisons
    // finer than whole runs can tell apart on a shared machine.
    let compared = match std::env::var("GNAPD_BENCH_COMPARE") {
        Ok(bin) => {
            let (proc, addr, endpoint) =
                spawn_gnapd_from(&bin, &dir.path().join("data-compared"), &up_base, &[])?;
            Some((bin, proc, addr, endpoint))
        }
        Err(_) => None,
    };

    // The proxy floor.
    let mut cmd = Command::new(&exe);
    cmd.args(["--proxy", &up_base, &threads.to_string()]);
    let proxy = start(cmd)?;
    let px_addr: SocketAddr = ([127, 0, 0, 1], proxy.port()?).into();

    // The verifying proxy: the proxy plus one verify_strict of the body.
    let body_key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let mut cmd = Command::new(&exe);
    cmd.args(["--proxy", &up_base, &threads.to_string(), "--verify"])
        .arg(hex(body_key.verifying_key().as_bytes()));
    let vproxy = start(cmd)?;
    let vx_addr: SocketAddr = ([127, 0, 0, 1], vproxy.port()?).into();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;

    // A token for tools/call of one tool at the upstream, from each dev AS.
    let key = SigningKey::generate(Algorithm::Ed25519).map_err(|e| format!("{e}"))?;
    let token = fetch_token(&rt, gw_addr, &grant_endpoint, &key)?;
    let token1 = fetch_token(&rt, gw1_addr, &grant_endpoint1, &key)?;
    let compared = match compared {
        Some((bin, proc, addr, endpoint)) => {
            let token = fetch_token(&rt, addr, &endpoint, &key)?;
            let base = endpoint.trim_end_matches("/gnap").to_owned();
            Some((bin, proc, addr, base, token))
        }
        None => None,
    };

    // Template for the proxy and direct calls: same headers and size, and a
    // signature (never checked there).
    let template = mcp_request(&format!("{gw_base}/mcp/{UPSTREAM}"), 0, Some(&token), &key)?;
    let direct = Wire::from_http(&template, &up_addr.to_string(), "/mcp")?;
    let via_proxy = Wire::from_http(&template, &px_addr.to_string(), "/mcp")?;
    let mut signed_body = template.clone();
    signed_body.fields.append(
        proxy::SIGNATURE_HEADER,
        hex(&body_key.sign(&signed_body.body).to_bytes()),
    );
    let via_vproxy = Wire::from_http(&signed_body, &vx_addr.to_string(), "/mcp")?;

    println!("# gnapd gateway benchmark");
    println!(
        "cpus {cpus}, server threads {threads}, concurrency {conc}, phase {secs} s, rounds {rounds}, body {BODY_LEN} B"
    );
    println!(
        "pids: gnapd {}, gnapd single {}, proxy {}, verifying proxy {}, upstream {}, load generator {}",
        gnapd.child.id(),
        gnapd1.child.id(),
        proxy.child.id(),
        vproxy.child.id(),
        upstream.child.id(),
        std::process::id()
    );

    // Check one call through the gateway and one direct.
    let first = sign_pool(1, 0, &gw_base, &gw_host, &token, &key, 1)?;
    let (gs, gb) = rt.block_on(async {
        let mut s = connect(gw_addr).await?;
        exchange(&mut s, first.into_iter().next().ok_or("empty pool")?).await
    })?;
    if gs != 200 || gb.as_ref() != upstream::RESULT {
        return Err(format!("gateway call: HTTP {gs}: {}", String::from_utf8_lossy(&gb)).into());
    }
    // And one through the verifying proxy, which must refuse a bad signature.
    let (vs, vb) = rt.block_on(async {
        let mut s = connect(vx_addr).await?;
        exchange(&mut s, via_vproxy.clone()).await
    })?;
    let (bad, _) = rt.block_on(async {
        let mut s = connect(vx_addr).await?;
        exchange(
            &mut s,
            Wire::from_http(&template, &vx_addr.to_string(), "/mcp")?,
        )
        .await
    })?;
    if vs != 200 || vb.as_ref() != upstream::RESULT || bad != 401 {
        return Err(format!("verifying proxy: HTTP {vs} (signed), {bad} (unsigned)").into());
    }

    // (1) Latency.
    let warm = 100;
    let gw_pool = sign_pool(
        latency_n + warm,
        1,
        &gw_base,
        &gw_host,
        &token,
        &key,
        threads,
    )?;
    let (gw_lat, dir_lat) = rt.block_on(async {
        let mut g = connect(gw_addr).await?;
        let mut d = connect(up_addr).await?;
        let mut gw_lat = Vec::with_capacity(latency_n);
        let mut dir_lat = Vec::with_capacity(latency_n);
        for (i, wire) in gw_pool.into_iter().enumerate() {
            let t = Instant::now();
            let (s1, _) = exchange(&mut g, wire).await?;
            let a = t.elapsed().as_secs_f64() * 1e3;
            let t = Instant::now();
            let (s2, _) = exchange(&mut d, direct.clone()).await?;
            let b = t.elapsed().as_secs_f64() * 1e3;
            if s1 != 200 || s2 != 200 {
                return Err::<_, Box<dyn Error + Send + Sync>>(
                    format!("latency: HTTP {s1} / {s2}").into(),
                );
            }
            if i >= warm {
                gw_lat.push(a);
                dir_lat.push(b);
            }
        }
        Ok((gw_lat, dir_lat))
    })?;
    let mut gs = gw_lat.clone();
    gs.sort_by(f64::total_cmp);
    let mut ds = dir_lat.clone();
    ds.sort_by(f64::total_cmp);
    println!();
    println!("## (1) latency, {latency_n} sequential calls each (ms)");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>8}",
        "", "p50", "p90", "p99", "max"
    );
    for (name, s) in [("gateway", &gs), ("direct", &ds)] {
        println!(
            "{:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            name,
            pct(s, 50.0),
            pct(s, 90.0),
            pct(s, 99.0),
            pct(s, 100.0)
        );
    }
    println!(
        "added by the gateway: p50 {:.3} ms (goal <= 0.25), p99 {:.3} ms (goal <= 1)",
        pct(&gs, 50.0) - pct(&ds, 50.0),
        pct(&gs, 99.0) - pct(&ds, 99.0)
    );

    // (2) Throughput.
    if let Some(pause) = std::env::var("GNAPD_BENCH_PAUSE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        println!("pausing {pause} s (gnapd pid {})", gnapd.child.id());
        std::thread::sleep(Duration::from_secs(pause));
    }
    // Warm-up: a short phase each.
    let mut next_id = latency_n + warm + 1;
    let warm_pool = sign_pool(
        conc * 200,
        next_id,
        &gw_base,
        &gw_host,
        &token,
        &key,
        threads,
    )?;
    next_id += conc * 200;
    rt.block_on(load(
        px_addr,
        vec![via_proxy.clone(); conc * 200],
        conc,
        0.5,
    ))?;
    rt.block_on(load(
        vx_addr,
        vec![via_vproxy.clone(); conc * 200],
        conc,
        0.5,
    ))?;
    rt.block_on(load(gw_addr, warm_pool, conc, 0.5))?;
    let warm_pool = sign_pool(
        conc * 200,
        next_id,
        &gw1_base,
        &gw1_host,
        &token1,
        &key,
        threads,
    )?;
    next_id += conc * 200;
    rt.block_on(load(gw1_addr, warm_pool, conc, 0.5))?;
    // The compared gnapd's calls: `n` pre-signed, from the next id on.
    let compared_pool = |n: usize, next_id: &mut usize| -> Res<Vec<Wire>> {
        let Some((_, _, addr, base, token)) = &compared else {
            return Ok(Vec::new());
        };
        let pool = sign_pool(n, *next_id, base, &addr.to_string(), token, &key, threads)?;
        *next_id += n;
        Ok(pool)
    };
    if let Some((_, _, addr, _, _)) = &compared {
        let warm_pool = compared_pool(conc * 200, &mut next_id)?;
        rt.block_on(load(*addr, warm_pool, conc, 0.5))?;
    }
    let batched_before = batch_counters(&rt, gw_addr)?;
    let compared_before = match &compared {
        Some((_, _, addr, _, _)) => Some(batch_counters(&rt, *addr)?),
        None => None,
    };

    struct Row {
        rps: f64,
        cpu_us: f64,
        up_cpu_us: f64,
        gen_cpu_us: f64,
        failed: u64,
    }
    let mut px_rows = Vec::new();
    let mut vx_rows = Vec::new();
    let mut gw_rows = Vec::new();
    let mut gw1_rows = Vec::new();
    let mut cmp_rows = Vec::new();
    let mut raw_rows = Vec::new();
    let mut batch_rows = Vec::new();
    let phase = |server: &Proc, addr: SocketAddr, pool: Vec<Wire>| -> Res<(Row, bool)> {
        let (c0, u0, l0) = (cpu(server)?, cpu(&upstream)?, self_cpu()?);
        let (ok, failed, elapsed, exhausted) = rt.block_on(load(addr, pool, conc, secs))?;
        let (c1, u1, l1) = (cpu(server)?, cpu(&upstream)?, self_cpu()?);
        let n = ok.max(1) as f64;
        Ok((
            Row {
                rps: ok as f64 / elapsed,
                cpu_us: (c1 - c0) / n * 1e6,
                up_cpu_us: (u1 - u0) / n * 1e6,
                gen_cpu_us: (l1 - l0) / n * 1e6,
                failed,
            },
            exhausted,
        ))
    };
    for round in 0..rounds {
        let (row, _) = phase(&proxy, px_addr, vec![via_proxy.clone(); pool_n])?;
        px_rows.push(row);
        let (row, _) = phase(&vproxy, vx_addr, vec![via_vproxy.clone(); pool_n])?;
        vx_rows.push(row);
        // The compared binary goes after gnapd in the first round, before it
        // in the second, and so on: neither side always follows the same
        // phase.
        let mut compare_phase = |next_id: &mut usize| -> Res<()> {
            if let Some((_, proc, addr, _, _)) = &compared {
                let pool = compared_pool(pool_n, next_id)?;
                let (row, exhausted) = phase(proc, *addr, pool)?;
                if exhausted {
                    println!("note: a gateway phase used up its pool (raise GNAPD_BENCH_POOL)");
                }
                cmp_rows.push(row);
            }
            Ok(())
        };
        if round % 2 == 1 {
            compare_phase(&mut next_id)?;
        }
        let pool = sign_pool(pool_n, next_id, &gw_base, &gw_host, &token, &key, threads)?;
        next_id += pool_n;
        let (row, exhausted) = phase(&gnapd, gw_addr, pool)?;
        if exhausted {
            println!("note: a gateway phase used up its pool (raise GNAPD_BENCH_POOL)");
        }
        gw_rows.push(row);
        if round % 2 == 0 {
            compare_phase(&mut next_id)?;
        }
        let pool = sign_pool(
            pool_n, next_id, &gw1_base, &gw1_host, &token1, &key, threads,
        )?;
        next_id += pool_n;
        let (row, exhausted) = phase(&gnapd1, gw1_addr, pool)?;
        if exhausted {
            println!("note: a gateway phase used up its pool (raise GNAPD_BENCH_POOL)");
        }
        gw1_rows.push(row);
        raw_rows.push(raw_verify(threads, secs.min(1.0), 1)?);
        batch_rows.push(raw_verify(threads, secs.min(1.0), BATCH_FLOOR_SIZE)?);
    }

    let batched_after = batch_counters(&rt, gw_addr)?;
    let compared_after = match &compared {
        Some((_, _, addr, _, _)) => Some(batch_counters(&rt, *addr)?),
        None => None,
    };

    println!();
    println!("## (2) throughput at concurrency {conc}, per round");
    println!(
        "gw = gnapd as it runs by default; gw1 = gnapd --no-signature-batching (every signature checked alone)"
    );
    println!(
        "{:<6} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10} {:>9} {:>10}",
        "round",
        "proxy/s",
        "verify/s",
        "ceiling/s",
        "vproxy/s",
        "gw/s",
        "gw/ceil",
        "gw1/s",
        "gw1/ceil",
        "vpx/ceil",
        "gw/vpx",
        "failures"
    );
    let mut ratios = Vec::new();
    let mut ideal_ratios = Vec::new();
    let mut own_ratios = Vec::new();
    let mut single_ratios = Vec::new();
    for i in 0..rounds {
        let (p, x, g, g1, v) = (
            px_rows[i].rps,
            vx_rows[i].rps,
            gw_rows[i].rps,
            gw1_rows[i].rps,
            raw_rows[i].0,
        );
        let ceiling = 1.0 / (1.0 / p + 1.0 / v);
        ratios.push(g / ceiling);
        single_ratios.push(g1 / ceiling);
        ideal_ratios.push(x / ceiling);
        own_ratios.push(g / x);
        println!(
            "{:<6} {:>9.0} {:>9.0} {:>10.0} {:>9.0} {:>9.0} {:>9.3} {:>9.0} {:>9.3} {:>10.3} {:>9.3} {:>10}",
            i + 1,
            p,
            v,
            ceiling,
            x,
            g,
            g / ceiling,
            g1,
            g1 / ceiling,
            x / ceiling,
            g / x,
            px_rows[i].failed + vx_rows[i].failed + gw_rows[i].failed + gw1_rows[i].failed
        );
    }
    println!();
    println!(
        "## CPU per request (µs of CPU time, from /proc/<pid>/stat; min / median / max over rounds)"
    );
    println!("{:<34} {:>9} {:>9} {:>9}", "", "min", "median", "max");
    let col = |rows: &[Row], f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<_>>();
    let server = |r: &Row| r.cpu_us;
    let up = |r: &Row| r.up_cpu_us;
    let generator = |r: &Row| r.gen_cpu_us;
    /// A row of the table: its label, the phases, what to read of each.
    type CpuLine<'a> = (&'a str, &'a [Row], fn(&Row) -> f64);
    let lines: [CpuLine<'_>; 10] = [
        ("gateway: gnapd process", &gw_rows, server),
        ("gateway, single checks: gnapd", &gw1_rows, server),
        ("proxy floor: proxy process", &px_rows, server),
        ("verifying proxy process", &vx_rows, server),
        ("upstream, during gateway phases", &gw_rows, up),
        ("upstream, during proxy phases", &px_rows, up),
        ("upstream, verifying proxy phases", &vx_rows, up),
        ("load generator, gateway phases", &gw_rows, generator),
        ("load generator, proxy phases", &px_rows, generator),
        ("load generator, vproxy phases", &vx_rows, generator),
    ];
    for (label, rows, f) in lines {
        println!("{label:<34} {}", mmm(&col(rows, f)));
    }
    println!(
        "{:<34} {}",
        "raw verify_strict (1 KiB)",
        mmm(&raw_rows.iter().map(|r| r.1 * 1e6).collect::<Vec<_>>())
    );
    println!(
        "{:<34} {}",
        format!("raw verify_batch, per sig. ({BATCH_FLOOR_SIZE})"),
        mmm(&batch_rows.iter().map(|r| r.1 * 1e6).collect::<Vec<_>>())
    );

    let p = median(&px_rows.iter().map(|r| r.rps).collect::<Vec<_>>());
    let g = median(&gw_rows.iter().map(|r| r.rps).collect::<Vec<_>>());
    let v = median(&raw_rows.iter().map(|r| r.0).collect::<Vec<_>>());
    let ceiling = 1.0 / (1.0 / p + 1.0 / v);
    println!();
    println!("## summary (medians over rounds)");
    println!("proxy floor      {p:>9.0} req/s");
    println!("raw verify       {v:>9.0} /s on {threads} threads");
    println!("ceiling          {ceiling:>9.0} req/s = 1/(1/proxy + 1/verify)");
    println!("gateway          {g:>9.0} req/s");
    println!(
        "gateway/ceiling  {:.3} (median of per-round ratios {:.3}; goal >= 0.75)",
        g / ceiling,
        median(&ratios)
    );
    println!("gateway/proxy    {:.3}", g / p);
    let g1 = median(&gw1_rows.iter().map(|r| r.rps).collect::<Vec<_>>());
    println!(
        "gateway, single checks {g1:>9.0} req/s = {:.3} of the ceiling (median of per-round ratios {:.3})",
        g1 / ceiling,
        median(&single_ratios)
    );
    let (checked, batched, equations) = (
        batched_after.0 - batched_before.0,
        batched_after.1 - batched_before.1,
        batched_after.2 - batched_before.2,
    );
    #[allow(clippy::cast_precision_loss)]
    let share = batched as f64 / checked.max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    let size = batched as f64 / equations.max(1) as f64;
    println!(
        "gateway batching: {checked} signatures checked in the measured phases, {:.1}% in batch equations, {size:.1} per equation on average",
        share * 100.0
    );
    let x = median(&vx_rows.iter().map(|r| r.rps).collect::<Vec<_>>());
    println!(
        "verifying proxy  {x:>9.0} req/s = {:.3} of the ceiling (median of per-round ratios {:.3})",
        x / ceiling,
        median(&ideal_ratios)
    );
    println!(
        "gateway/verifying proxy {:.3} (median of per-round ratios {:.3})",
        g / x,
        median(&own_ratios)
    );
    let gc = median(&col(&gw_rows, |r| r.cpu_us));
    let g1c = median(&col(&gw1_rows, |r| r.cpu_us));
    let pc = median(&col(&px_rows, |r| r.cpu_us));
    let vc = median(&raw_rows.iter().map(|r| r.1 * 1e6).collect::<Vec<_>>());
    let xc = median(&col(&vx_rows, |r| r.cpu_us));
    println!(
        "CPU/request: gateway {gc:.1} µs (single checks {g1c:.1}), proxy {pc:.1} µs, raw verify {vc:.1} µs, verifying proxy {xc:.1} µs; CPU ceiling (proxy+verify)/gateway = {:.3} (single checks {:.3}), verifying proxy/gateway = {:.3}",
        (pc + vc) / gc,
        (pc + vc) / g1c,
        xc / gc
    );
    // Issue 19's gateway goal, in one run: the gateway's CPU per call at most
    // the proxy floor's plus one batched verification plus 10 µs.
    let bc = median(&batch_rows.iter().map(|r| r.1 * 1e6).collect::<Vec<_>>());
    let allowed = pc + bc + 10.0;
    println!(
        "issue 19: gateway CPU {gc:.1} µs against proxy floor {pc:.1} + batched verify {bc:.1} per signature + 10 = {allowed:.1} µs: {}",
        if gc <= allowed { "met" } else { "not met" }
    );
    if let (Some((bin, ..)), Some(before), Some(after)) =
        (&compared, compared_before, compared_after)
    {
        // Paired by round: drift between rounds cancels out of each difference.
        let diffs: Vec<f64> = gw_rows
            .iter()
            .zip(&cmp_rows)
            .map(|(a, b)| b.cpu_us - a.cpu_us)
            .collect();
        let bc = median(&col(&cmp_rows, |r| r.cpu_us));
        let (checked, batched) = (after.0 - before.0, after.1 - before.1);
        #[allow(clippy::cast_precision_loss)]
        let share = batched as f64 / checked.max(1) as f64 * 100.0;
        println!(
            "compared ({bin}): gnapd CPU {bc:.1} µs against {gc:.1} (medians); per round, compared minus gnapd: {} µs; {share:.1}% of its signatures in batch equations",
            diffs
                .iter()
                .map(|d| format!("{d:+.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}
