//! Gateway calls: a 1 KiB JSON-RPC `tools/call` to the bench's upstream
//! through `/mcp/bench`, each signed afresh by the key its token is bound
//! to, as benches/gateway signs them. Pools are signed before a window (a
//! nonce is single use) and spread over the given tokens round-robin.
//! The server CPU per call is gnapd's utime+stime over the window ÷ calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use http_body_util::Full;
use serde::Serialize;

use super::Res;
use super::agents::{TOOL, unix_now};
use super::flow_window::{Server, quantile_ms};
use super::load::Holder;
use super::monitor::Monitor;
use super::procfs::{self, Memory};
use super::server::UPSTREAM;
use super::upstream::RESULT;
use super::wire::{Conn, snippet};

const BODY_LEN: usize = 1024;
const MCP_VERSION: &str = "2025-11-25";

/// A `tools/call` body of exactly [`BODY_LEN`] bytes; `id` makes each
/// distinct.
fn body(id: usize) -> Vec<u8> {
    let head = format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"repo":"scale","body":""#
    );
    let tail = r#""}}}"#;
    let room = BODY_LEN.saturating_sub(head.len() + tail.len());
    let mut text = head;
    text.extend(std::iter::repeat_n('x', room));
    text.push_str(tail);
    text.into_bytes()
}

type Call = hyper::Request<Full<Bytes>>;

fn signed_call(base: &str, authority: &str, id: usize, holder: &Holder) -> Res<Call> {
    let path = format!("/mcp/{UPSTREAM}");
    let mut req = HttpRequest::new("POST", format!("{base}{path}"));
    req.fields
        .append("Accept", "application/json, text/event-stream");
    req.fields.append("Content-Type", "application/json");
    req.fields.append("MCP-Protocol-Version", MCP_VERSION);
    req.fields
        .append("Authorization", format!("GNAP {}", holder.token));
    req.body = body(id);
    sign_gnap(&mut req, &holder.key, unix_now(), &SignOptions::default())
        .map_err(|e| e.to_string())?;
    let mut builder = hyper::Request::builder()
        .method("POST")
        .uri(path)
        .header("host", authority);
    for (name, value) in req.fields.iter() {
        builder = builder.header(name, value);
    }
    Ok(builder.body(Full::new(Bytes::from(req.body)))?)
}

/// `n` calls, call `i` by holder `i % holders.len()`, cut into `shares`
/// lists (call `i` in list `i % shares`), signed on every core.
fn sign(
    n: usize,
    first_id: usize,
    holders: &[Holder],
    base: &str,
    authority: &str,
    shares: usize,
) -> Res<Vec<Vec<Call>>> {
    if holders.is_empty() {
        return Err("no token to call with".into());
    }
    let threads = std::thread::available_parallelism().map_or(1, |c| c.get());
    let chunk = n.div_ceil(threads);
    let parts: Vec<Res<Vec<(usize, Call)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(n))
                        .map(|i| {
                            let holder = &holders[i % holders.len()];
                            Ok((i, signed_call(base, authority, first_id + i, holder)?))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("signing thread failed".into()))
            })
            .collect()
    });
    let mut lists: Vec<Vec<Call>> = (0..shares).map(|_| Vec::new()).collect();
    for part in parts {
        for (i, call) in part? {
            if let Some(list) = lists.get_mut(i % shares) {
                list.push(call);
            }
        }
    }
    Ok(lists)
}

#[derive(Debug, Clone, Serialize)]
pub struct CallWindow {
    /// Distinct tokens the calls went round.
    pub tokens: usize,
    pub calls: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    pub secs: f64,
    pub calls_per_sec: f64,
    pub server_cpu_us_per_call: f64,
    /// The database server's, when the store is PostgreSQL (else 0).
    pub database_cpu_us_per_call: f64,
    /// This process: the generator and the in-process upstream together.
    pub generator_cpu_us_per_call: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub memory_start: Memory,
    /// The largest RSS (and, separately, anonymous RSS) sampled every
    /// 100 ms during the window.
    pub rss_peak: u64,
    pub anon_peak: u64,
    pub memory_end: Memory,
    pub pool: usize,
    pub pool_used_up: bool,
}

/// Where calls go: the server, its public URL, and the next call id.
pub struct Gateway<'a> {
    pub server: &'a Server,
    pub base: &'a str,
    pub next_id: usize,
}

impl Gateway<'_> {
    fn authority(&self) -> &str {
        self.base.strip_prefix("http://").unwrap_or(self.base)
    }

    /// One call by the first holder, which must come back with the
    /// upstream's answer: the setup works before anything is measured.
    pub async fn check(&mut self, holders: &[Holder]) -> Res<()> {
        let holder = holders.first().ok_or("no token to call with")?;
        let call = signed_call(self.base, self.authority(), self.next_id, holder)?;
        self.next_id += 1;
        let mut conn = Conn::open(self.server.addr()).await?;
        let (status, body) = conn.send(call).await?;
        if status != 200 || body.as_ref() != RESULT {
            return Err(format!("a gateway call: HTTP {status}: {}", snippet(&body)).into());
        }
        Ok(())
    }

    /// One call with each of `holders`, one after another on one
    /// connection: the tokens' first use since the restart, so that what
    /// the server then holds for them can be read apart from the load.
    pub async fn touch(&mut self, holders: &[Holder]) -> Res<()> {
        let mut conn = Conn::open(self.server.addr()).await?;
        for holder in holders {
            let call = signed_call(self.base, self.authority(), self.next_id, holder)?;
            self.next_id += 1;
            let (status, body) = conn.send(call).await?;
            if status != 200 || body.as_ref() != RESULT {
                return Err(format!("a gateway call: HTTP {status}: {}", snippet(&body)).into());
            }
        }
        Ok(())
    }

    /// Calls from `lists` (one per connection) until `duration` has passed
    /// or they run out.
    async fn window(
        &self,
        lists: Vec<Vec<Call>>,
        duration: Duration,
        tokens: usize,
    ) -> Res<CallWindow> {
        let pool = lists.iter().map(Vec::len).sum();
        let server = self.server;
        let mut conns = Vec::with_capacity(lists.len());
        for i in 0..lists.len() {
            conns.push(Conn::open(server.addr_for(i)).await?);
        }
        let ok = Arc::new(AtomicU64::new(0));
        let used_up = Arc::new(AtomicBool::new(false));
        let memory_start = Memory::of(server.pid)?;
        let monitor = Monitor::start(server.pid, ok.clone(), Duration::from_millis(100), |_| {});
        let ticks0 = server.ticks()?;
        let own0 = procfs::own_ticks()?;
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::with_capacity(conns.len());
        for (mut conn, list) in conns.into_iter().zip(lists) {
            let (ok, used_up) = (ok.clone(), used_up.clone());
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let (mut failed, mut first_failure) = (0u64, None);
                let mut list = list.into_iter();
                while Instant::now() < deadline {
                    let Some(call) = list.next() else {
                        used_up.store(true, Ordering::Relaxed);
                        break;
                    };
                    let t = Instant::now();
                    match conn.send(call).await {
                        Ok((200, _)) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            latencies
                                .push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        }
                        Ok((status, body)) => {
                            failed += 1;
                            first_failure.get_or_insert_with(|| {
                                format!("HTTP {status}: {}", snippet(&body))
                            });
                        }
                        Err(e) => {
                            failed += 1;
                            first_failure.get_or_insert_with(|| e.to_string());
                            break;
                        }
                    }
                }
                (latencies, failed, first_failure)
            }));
        }
        let mut latencies = Vec::new();
        let (mut failed, mut first_failure) = (0u64, None);
        for task in tasks {
            let (l, f, first) = task.await?;
            latencies.extend(l);
            failed += f;
            if first_failure.is_none() {
                first_failure = first;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let ticks = server.ticks()?;
        let own = procfs::own_ticks()?.saturating_sub(own0);
        let samples = monitor.finish();
        let memory_end = Memory::of(server.pid)?;
        latencies.sort_unstable();
        let calls = latencies.len() as u64;
        let per_call = |t: u64| t as f64 * 1e6 / server.tck / calls.max(1) as f64;
        Ok(CallWindow {
            tokens,
            calls,
            failed,
            first_failure,
            secs,
            calls_per_sec: calls as f64 / secs,
            server_cpu_us_per_call: per_call(ticks.nodes.saturating_sub(ticks0.nodes)),
            database_cpu_us_per_call: per_call(ticks.database.saturating_sub(ticks0.database)),
            generator_cpu_us_per_call: per_call(own),
            p50_ms: quantile_ms(&latencies, 0.50),
            p99_ms: quantile_ms(&latencies, 0.99),
            memory_start,
            rss_peak: samples
                .iter()
                .map(|s| s.memory.rss)
                .max()
                .unwrap_or(0)
                .max(memory_end.rss),
            anon_peak: samples
                .iter()
                .map(|s| s.memory.anon)
                .max()
                .unwrap_or(0)
                .max(memory_end.anon),
            memory_end,
            pool,
            pool_used_up: used_up.load(Ordering::Relaxed),
        })
    }

    /// A half-second warm-up (which, after a restart, brings every sampled
    /// token in from the store once), then the measured window, over
    /// `holders` round-robin. The pool is sized from the faster of the
    /// warm-up and `rate_hint` (calls a second seen before): a warm-up
    /// that reads every token from disk runs slower than what follows.
    pub async fn measure(
        &mut self,
        holders: &[Holder],
        duration: Duration,
        rate_hint: Option<f64>,
    ) -> Res<CallWindow> {
        let conc = self.server.concurrency;
        let warm_n = (conc * 100).max(holders.len());
        let lists = sign(
            warm_n,
            self.next_id,
            holders,
            self.base,
            self.authority(),
            conc,
        )?;
        self.next_id += warm_n;
        let warm = self
            .window(lists, Duration::from_millis(500), holders.len())
            .await?;
        let rate = warm.calls_per_sec.max(rate_hint.unwrap_or(0.0));
        let n = ((rate * duration.as_secs_f64() * 2.0) as usize + conc * 50).min(600_000);
        let lists = sign(n, self.next_id, holders, self.base, self.authority(), conc)?;
        self.next_id += n;
        let mut measured = self.window(lists, duration, holders.len()).await?;
        // Every call must succeed, the warm-up's too.
        measured.failed += warm.failed;
        if measured.first_failure.is_none() {
            measured.first_failure = warm.first_failure;
        }
        Ok(measured)
    }
}
