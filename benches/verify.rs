//! Throughput of gnapd's GNAP-profile verification of a typical MCP POST,
//! measured in the same process as raw `ed25519-dalek` `verify_strict`.
//!
//! The issue's target: full verification (parsing `Signature-Input` and
//! `Signature`, building the signature base, checking `Content-Digest`, the
//! nonce replay check and the Ed25519 check) reaches at least 90% of the
//! throughput of a bare `verify_strict` over a message the size of the body
//! (1024 bytes). This program reports numbers; it never fails on them.
//!
//! Cases, run interleaved so that drift on a shared machine hits them all
//! alike: the pool of pre-signed requests is walked in passes, each pass cut
//! into slices, and within a slice every case runs in turn (A, B, C, D, ...).
//! A slice is one "round"; every statistic is over rounds, and ratios are
//! also taken round by round (paired).
//!
//! - A: `GnapProfile::verify` of a pre-signed request (fresh nonce store per
//!   pass, every nonce used once per pass, so the replay check runs for real
//!   and never rejects);
//! - B: `verify_strict` over a 1024-byte message (the issue's baseline);
//! - C: `verify_strict` over the request's actual signature base (the crypto
//!   inside A);
//! - D..H: the pieces of A on their own: parsing the two signature fields,
//!   building the base, checking `Content-Digest`, one nonce-store insert,
//!   and a bare SHA-256 of the body for context.
//!
//! Stack alignment: Ed25519 verification in `ed25519-dalek` runs up to ~20%
//! slower when the stack sits at some offsets modulo 4 KiB (4K aliasing
//! between its stack scratch and other data), and ASLR picks that offset per
//! process, so a plain same-process comparison of two call paths (A calls
//! the crypto deeper in the stack than B) is biased by a random amount per
//! run. Every round therefore runs on a stack shifted by one of
//! [`SHIFTS`] (0, 256, ..., 3840 bytes), rotating, so each case samples every
//! alignment equally; the per-offset medians are printed.
//!
//! Knobs (environment): `GNAPD_BENCH_N` (requests in the pool, default
//! 5000), `GNAPD_BENCH_PASSES` (measured passes, default 16),
//! `GNAPD_BENCH_SLICES` (slices per pass, default 50), `GNAPD_BENCH_ONLY`
//! (case letters to run, e.g. `A` when profiling), `GNAPD_BENCH_NONCE=0`
//! (sign without a nonce: the replay check then remembers the signed
//! request itself, as a signer that sends no nonce gets).
//!
//! Run: `cargo bench --bench verify`. See benches/README.md.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::Signer as _;
use gnapd::proto::b64;
use gnapd::proto::digest::verify_content_digest;
use gnapd::proto::httpsig::input::{signature_inputs, signatures};
use gnapd::proto::httpsig::nonce::Seen;
use gnapd::proto::httpsig::{
    Algorithm, GnapProfile, HttpRequest, MemoryNonceStore, Message, NonceStore, SignOptions,
    SignatureParams, sign_gnap, signature_base,
};
use gnapd::proto::jwk::SigningKey;
use sha2::{Digest as _, Sha256};

type Res<T> = Result<T, Box<dyn Error>>;

const TARGET_URI: &str = "https://gw.example.com/mcp/github";
const BODY_LEN: usize = 1024;
/// 2025-06-15T15:06:40Z; signing and verifying share it.
const NOW: i64 = 1_750_000_000;

/// One timed slice of one case: totals, not per-op values.
#[derive(Clone, Copy, Debug)]
struct Round {
    /// Wall-clock nanoseconds.
    wall: f64,
    /// On-CPU nanoseconds of this thread (schedstat; 4 ms granularity, so
    /// only meaningful summed over many slices).
    cpu: Option<f64>,
    /// Nanoseconds spent runnable but waiting for a CPU (same source).
    wait: Option<f64>,
}

/// `(on-CPU ns, run-queue wait ns)` of the calling thread. The bench is
/// single-threaded, so this is the process's CPU time as well.
fn thread_sched() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = text.split_ascii_whitespace();
    let cpu = it.next()?.parse().ok()?;
    let wait = it.next()?.parse().ok()?;
    Some((cpu, wait))
}

/// Times `f`, which runs a slice of operations and returns how many failed.
fn measure(f: impl FnOnce() -> usize) -> (Round, usize) {
    let s0 = thread_sched();
    let t0 = Instant::now();
    let failures = f();
    let elapsed = t0.elapsed();
    let s1 = thread_sched();
    let (cpu, wait) = match (s0, s1) {
        (Some((c0, w0)), Some((c1, w1))) => (
            Some(c1.saturating_sub(c0) as f64),
            Some(w1.saturating_sub(w0) as f64),
        ),
        _ => (None, None),
    };
    (
        Round {
            wall: elapsed.as_nanos() as f64,
            cpu,
            wait,
        },
        failures,
    )
}

/// A realistic JSON-RPC `tools/call` body, exactly [`BODY_LEN`] bytes. `id`
/// keeps every request's content distinct.
fn mcp_body(id: usize) -> Res<Vec<u8>> {
    let head = format!(
        concat!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{{"#,
            r#""name":"create_issue","arguments":{{"owner":"octo-org","repo":"mcp-gateway","#,
            r#""title":"Gateway drops MCP-Session-Id on SSE reconnect","#,
            r#""labels":["bug","gateway","sse"],"assignees":["octocat"],"#,
            r#""body":""#
        ),
        100_000 + id
    );
    let tail = r#""},"_meta":{"progressToken":"pt-7f3a"}}}"#;
    let filler = "When the upstream MCP server closes the event stream, the gateway \
        reconnects with Last-Event-ID but does not forward the MCP-Session-Id header, \
        so the server starts a new session and the agent loses its tool state. \
        Steps: start a long tools/call, kill the upstream connection, observe the \
        reconnect. Expected: same session. Actual: 404 then a fresh initialize. ";
    let room = BODY_LEN
        .checked_sub(head.len() + tail.len())
        .ok_or("body head too long")?;
    let pad: String = filler.chars().cycle().take(room).collect();
    let body = format!("{head}{pad}{tail}").into_bytes();
    if body.len() != BODY_LEN {
        return Err(format!("body is {} bytes, not {BODY_LEN}", body.len()).into());
    }
    serde_json::from_slice::<serde_json::Value>(&body)?;
    Ok(body)
}

/// Everything the rounds need, built before any timing.
struct Fixture {
    key: SigningKey,
    raw_pub: ed25519_dalek::VerifyingKey,
    /// Signed requests, one nonce each.
    requests: Vec<HttpRequest>,
    /// B: distinct 1024-byte messages and their signatures.
    raw_body: Vec<(Vec<u8>, ed25519_dalek::Signature)>,
    /// C: each request's signature base and its signature.
    raw_base: Vec<(Vec<u8>, ed25519_dalek::Signature)>,
    /// E: each request's parsed parameters.
    params: Vec<SignatureParams>,
    /// F: each request's Content-Digest value.
    digests: Vec<Vec<u8>>,
    /// G: each request's replay-cache value (`n:` + nonce), as verify builds it.
    nonce_values: Vec<Vec<u8>>,
}

fn fixture(n: usize) -> Res<Fixture> {
    let key = SigningKey::generate(Algorithm::Ed25519)?;
    let jwk = key.private_jwk();
    let member = |m: &str| -> Res<[u8; 32]> {
        let text = jwk
            .get(m)
            .and_then(serde_json::Value::as_str)
            .ok_or("JWK member missing")?;
        let bytes = b64::decode_url(text).ok_or("bad base64url")?;
        Ok(bytes.try_into().map_err(|_| "JWK member is not 32 bytes")?)
    };
    let raw_key = ed25519_dalek::SigningKey::from_bytes(&member("d")?);
    let raw_pub = ed25519_dalek::VerifyingKey::from_bytes(&member("x")?)?;
    if raw_key.verifying_key() != raw_pub {
        return Err("raw key does not match the gnapd key".into());
    }
    let token = b64::encode_url(&core::array::from_fn::<u8, 32, _>(|i| (i * 37 + 11) as u8));
    if token.len() != 43 {
        return Err("token is not 43 characters".into());
    }

    let mut fx = Fixture {
        key,
        raw_pub,
        requests: Vec::with_capacity(n),
        raw_body: Vec::with_capacity(n),
        raw_base: Vec::with_capacity(n),
        params: Vec::with_capacity(n),
        digests: Vec::with_capacity(n),
        nonce_values: Vec::with_capacity(n),
    };
    let options = SignOptions {
        nonce: env_usize("GNAPD_BENCH_NONCE", 1) != 0,
        ..SignOptions::default()
    };
    for i in 0..n {
        let body = mcp_body(i)?;
        let mut req = HttpRequest::new("POST", TARGET_URI)
            .with_field("Content-Type", "application/json")
            .with_field("Accept", "application/json, text/event-stream")
            .with_field("Authorization", format!("GNAP {token}"))
            .with_field("MCP-Protocol-Version", "2025-06-18")
            .with_body(body.clone());
        let base = sign_gnap(&mut req, &fx.key, NOW, &options)?;
        // Ed25519 is deterministic: the same key over the same base gives the
        // signature that is in the request.
        let base_sig = raw_key.sign(&base);
        let sig_field = signatures(&req.fields)?;
        if sig_field.first().map(|(_, s)| s.as_slice()) != Some(&base_sig.to_bytes()[..]) {
            return Err("raw signature differs from the request's".into());
        }
        let mut inputs = signature_inputs(&req.fields)?;
        let params = inputs.pop().ok_or("no Signature-Input")?.params;
        // G inserts what verify would remember: the nonce, else (without
        // one) the signature base's digest.
        let value = match &params.nonce {
            Some(nonce) => [b"n:", nonce.as_bytes()].concat(),
            None => [&b"b:"[..], &Sha256::digest(&base)].concat(),
        };
        fx.nonce_values.push(value);
        fx.digests.push(
            req.fields
                .lines("content-digest")
                .next()
                .ok_or("no Content-Digest")?
                .to_vec(),
        );
        fx.params.push(params);
        fx.raw_base.push((base, base_sig));
        let body_sig = raw_key.sign(&body);
        fx.raw_body.push((body, body_sig));
        fx.requests.push(req);
    }
    Ok(fx)
}

/// Runs `f` with the stack pointer moved down by `K` bytes.
#[inline(never)]
fn on_shifted_stack<const K: usize>(f: &mut dyn FnMut()) {
    let pad = [0u8; K];
    black_box(&pad);
    f();
    black_box(&pad);
}

/// Runs a closure on a shifted stack.
type Shifted = fn(&mut dyn FnMut());

/// Stack shifts covering one 4 KiB page in 256-byte steps.
const SHIFTS: [(usize, Shifted); 16] = [
    (0, on_shifted_stack::<0>),
    (256, on_shifted_stack::<256>),
    (512, on_shifted_stack::<512>),
    (768, on_shifted_stack::<768>),
    (1024, on_shifted_stack::<1024>),
    (1280, on_shifted_stack::<1280>),
    (1536, on_shifted_stack::<1536>),
    (1792, on_shifted_stack::<1792>),
    (2048, on_shifted_stack::<2048>),
    (2304, on_shifted_stack::<2304>),
    (2560, on_shifted_stack::<2560>),
    (2816, on_shifted_stack::<2816>),
    (3072, on_shifted_stack::<3072>),
    (3328, on_shifted_stack::<3328>),
    (3584, on_shifted_stack::<3584>),
    (3840, on_shifted_stack::<3840>),
];

struct Case {
    letter: char,
    name: &'static str,
    /// Wall ns per op of every measured round (slice).
    samples: Vec<f64>,
    /// The same, grouped by stack shift.
    by_shift: Vec<Vec<f64>>,
    wall_ns: f64,
    ops: usize,
    cpu_ns: Option<f64>,
    wait_ns: Option<f64>,
    failures: usize,
    first_error: Option<String>,
}

/// Nonce stores for one pass over the pool: fresh per pass, so every nonce
/// is new and the replay check takes its real (insert) path.
struct Stores {
    verify: MemoryNonceStore,
    remember: MemoryNonceStore,
}

fn run_case(
    letter: char,
    fx: &Fixture,
    range: std::ops::Range<usize>,
    stores: &Stores,
    profile: &GnapProfile,
) -> (Round, usize, Option<String>) {
    let vk = fx.key.verifying_key();
    let mut first_error = None;
    let (round, failures) = match letter {
        'A' => measure(|| {
            let mut failures = 0;
            for req in &fx.requests[range.clone()] {
                match black_box(profile.verify(black_box(req), vk, NOW, &stores.verify)) {
                    Ok(v) => {
                        black_box(v);
                    }
                    Err(e) => {
                        failures += 1;
                        first_error.get_or_insert_with(|| format!("{e} ({})", e.reason()));
                    }
                }
            }
            failures
        }),
        'B' | 'C' => {
            let pool = if letter == 'B' {
                &fx.raw_body[range.clone()]
            } else {
                &fx.raw_base[range.clone()]
            };
            measure(|| {
                let mut failures = 0;
                for (msg, sig) in pool {
                    if black_box(&fx.raw_pub)
                        .verify_strict(black_box(msg), black_box(sig))
                        .is_err()
                    {
                        failures += 1;
                    }
                }
                failures
            })
        }
        'D' => measure(|| {
            let mut failures = 0;
            for req in &fx.requests[range.clone()] {
                let fields = black_box(&req.fields);
                match (signature_inputs(fields), signatures(fields)) {
                    (Ok(i), Ok(s)) => {
                        black_box((i, s));
                    }
                    _ => failures += 1,
                }
            }
            failures
        }),
        'E' => measure(|| {
            let mut failures = 0;
            for (req, params) in fx.requests[range.clone()]
                .iter()
                .zip(&fx.params[range.clone()])
            {
                match signature_base(Message::Request(black_box(req)), black_box(params)) {
                    Ok(base) => {
                        black_box(base);
                    }
                    Err(_) => failures += 1,
                }
            }
            failures
        }),
        'F' => measure(|| {
            let mut failures = 0;
            for (req, field) in fx.requests[range.clone()]
                .iter()
                .zip(&fx.digests[range.clone()])
            {
                match verify_content_digest(black_box(field), black_box(&req.body)) {
                    Ok(algs) => {
                        black_box(algs);
                    }
                    Err(_) => failures += 1,
                }
            }
            failures
        }),
        'G' => {
            let scope = vk.thumbprint();
            measure(|| {
                let mut failures = 0;
                for value in &fx.nonce_values[range.clone()] {
                    match stores
                        .remember
                        .remember(scope, black_box(value), NOW + 300, NOW)
                    {
                        Ok(Seen::Fresh) => {}
                        _ => failures += 1,
                    }
                }
                failures
            })
        }
        'H' => measure(|| {
            for req in &fx.requests[range.clone()] {
                black_box(Sha256::digest(black_box(&req.body)));
            }
            0
        }),
        _ => (
            Round {
                wall: 0.0,
                cpu: None,
                wait: None,
            },
            0,
        ),
    };
    (round, failures, first_error)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let len = v.len();
    if len == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let median = if len % 2 == 1 {
        v[len / 2]
    } else {
        (v[len / 2 - 1] + v[len / 2]) / 2.0
    };
    (v[0], median, v[len - 1])
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Res<()> {
    let n = env_usize("GNAPD_BENCH_N", 5000).clamp(1, 899_999);
    let passes = env_usize("GNAPD_BENCH_PASSES", 16).max(1);
    let slices = env_usize("GNAPD_BENCH_SLICES", 50).clamp(1, n);
    let only = std::env::var("GNAPD_BENCH_ONLY").unwrap_or_default();
    let all = [
        ('A', "gnapd GnapProfile::verify (full)"),
        ('B', "dalek verify_strict, 1024 B msg"),
        ('C', "dalek verify_strict, base-size msg"),
        ('D', "  parse Signature-Input+Signature"),
        ('E', "  signature_base"),
        ('F', "  verify_content_digest"),
        ('G', "  MemoryNonceStore::remember"),
        ('H', "  (context) sha256(1024 B body)"),
    ];
    let mut cases: Vec<Case> = all
        .iter()
        .filter(|(l, _)| only.is_empty() || only.to_ascii_uppercase().contains(*l))
        .map(|&(letter, name)| Case {
            letter,
            name,
            samples: Vec::new(),
            by_shift: vec![Vec::new(); SHIFTS.len()],
            wall_ns: 0.0,
            ops: 0,
            cpu_ns: Some(0.0),
            wait_ns: Some(0.0),
            failures: 0,
            first_error: None,
        })
        .collect();

    let t_setup = Instant::now();
    let fx = fixture(n)?;
    let profile = GnapProfile::default();
    let sample = &fx.requests[0];
    let base_len = fx.raw_base[0].0.len();
    let header_bytes: usize = sample
        .fields
        .iter()
        .map(|(k, v)| k.len() + 2 + v.len())
        .sum();
    println!("gnapd verify benchmark");
    println!(
        "request: POST {TARGET_URI}, body {} B, {} header lines ({header_bytes} B as \"name: value\")",
        sample.body.len(),
        sample.fields.iter().count()
    );
    for (name, value) in sample.fields.iter() {
        let shown = String::from_utf8_lossy(value);
        let shown = if name.eq_ignore_ascii_case("authorization") {
            format!("GNAP <{}-char token>", shown.len().saturating_sub(5))
        } else {
            shown.into_owned()
        };
        println!("  {name}: {shown}");
    }
    println!(
        "signature base: {base_len} B (min {} / max {} over the pool)",
        fx.raw_base.iter().map(|(b, _)| b.len()).min().unwrap_or(0),
        fx.raw_base.iter().map(|(b, _)| b.len()).max().unwrap_or(0)
    );
    let slice_len = n.div_ceil(slices);
    println!(
        "pool: {n} distinct signed requests; {passes} measured passes (+1 warm-up), each in \
         {slices} slices of <= {slice_len}; within a slice the cases run in turn \
         ({}), so one round = one slice; fresh nonce stores per pass; setup {:.1} s",
        cases
            .iter()
            .map(|c| c.letter.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        t_setup.elapsed().as_secs_f64()
    );

    let t_run = Instant::now();
    let mut round_no = 0usize;
    for pass in 0..=passes {
        let stores = Stores {
            verify: MemoryNonceStore::default(),
            remember: MemoryNonceStore::default(),
        };
        for start in (0..n).step_by(slice_len) {
            let range = start..(start + slice_len).min(n);
            let ops = range.len();
            let shift = round_no % SHIFTS.len();
            round_no += 1;
            for case in &mut cases {
                let letter = case.letter;
                let mut out = None;
                SHIFTS[shift].1(&mut || {
                    out = Some(run_case(letter, &fx, range.clone(), &stores, &profile));
                });
                let Some((r, failures, err)) = out else {
                    continue;
                };
                case.failures += failures;
                if case.first_error.is_none() {
                    case.first_error = err;
                }
                if pass == 0 {
                    continue; // warm-up
                }
                let per_op = r.wall / ops as f64;
                case.samples.push(per_op);
                case.by_shift[shift].push(per_op);
                case.wall_ns += r.wall;
                case.ops += ops;
                case.cpu_ns = case.cpu_ns.zip(r.cpu).map(|(a, b)| a + b);
                case.wait_ns = case.wait_ns.zip(r.wait).map(|(a, b)| a + b);
            }
        }
        drop(stores);
    }
    println!("measured in {:.1} s\n", t_run.elapsed().as_secs_f64());

    let us = |ns: f64| ns / 1000.0;
    println!(
        "µs per op over {} rounds (slices of <= {slice_len}); mean = total time / ops",
        passes * slices
    );
    println!(
        "  {:<36} {:>8} {:>8} {:>8} {:>8} {:>10} | {:>7} {:>7} | {:>5}",
        "case", "min", "median", "max", "mean", "med op/s", "cpu", "runq", "fails"
    );
    let mut med = std::collections::HashMap::new();
    let mut mean = std::collections::HashMap::new();
    let mut best = std::collections::HashMap::new();
    let mut cpu = std::collections::HashMap::new();
    for case in &cases {
        let (lo, mid, hi) = stats(case.samples.clone());
        let avg = case.wall_ns / case.ops.max(1) as f64;
        // schedstat ticks at 4 ms: per-case totals under ~1 s are noise.
        let per = |t: Option<f64>| {
            t.filter(|_| case.wall_ns >= 1e9)
                .map(|t| t / case.ops.max(1) as f64)
        };
        let c = per(case.cpu_ns);
        med.insert(case.letter, mid);
        mean.insert(case.letter, avg);
        let shift_medians: Vec<f64> = case
            .by_shift
            .iter()
            .filter(|v| !v.is_empty())
            .map(|v| stats(v.clone()).1)
            .collect();
        best.insert(case.letter, stats(shift_medians).0);
        if let Some(c) = c {
            cpu.insert(case.letter, c);
        }
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.2}", us(v)));
        println!(
            "{} {:<36} {:>8.3} {:>8.3} {:>8.2} {:>8.3} {:>10.0} | {:>7} {:>7} | {:>5}",
            case.letter,
            case.name,
            us(lo),
            us(mid),
            us(hi),
            us(avg),
            1e9 / mid,
            opt(c),
            opt(per(case.wait_ns)),
            case.failures
        );
    }
    for case in &cases {
        if case.failures > 0 {
            println!(
                "!! case {} had {} failures (a bug): first: {}",
                case.letter,
                case.failures,
                case.first_error.as_deref().unwrap_or("-")
            );
        }
    }
    println!(
        "  cpu = on-CPU time per op, runq = time runnable but waiting for a CPU (other load), \
         totals from /proc/thread-self/schedstat; shown for cases with >= 1 s in total"
    );
    println!("\nmedian µs per op by stack shift (bytes):");
    for case in cases.iter().filter(|c| "ABC".contains(c.letter)) {
        let line: Vec<String> = SHIFTS
            .iter()
            .zip(&case.by_shift)
            .filter(|(_, v)| !v.is_empty())
            .map(|((k, _), v)| format!("{k}:{:.1}", us(stats(v.clone()).1)))
            .collect();
        println!("  {} {}", case.letter, line.join(" "));
    }

    let find = |l: char| cases.iter().find(|c| c.letter == l);
    if let Some(a) = find('A') {
        println!();
        for l in ['B', 'C'] {
            let Some(o) = find(l) else { continue };
            let (lo, mid, hi) = stats(
                a.samples
                    .iter()
                    .zip(&o.samples)
                    .map(|(ra, ro)| ro / ra)
                    .collect(),
            );
            let by_cpu = cpu
                .get(&l)
                .zip(cpu.get(&'A'))
                .map_or("-".to_owned(), |(o, a)| format!("{:.3}", o / a));
            println!(
                "RATIO throughput(A)/throughput({l}) = {:.3} (medians){} | means {:.3} | \
                 paired per round min/med/max {lo:.3}/{mid:.3}/{hi:.3} | best stack shift \
                 each {:.3} | cpu-time {by_cpu}",
                med[&l] / med[&'A'],
                if l == 'B' { ", target >= 0.90" } else { "" },
                mean[&l] / mean[&'A'],
                best[&l] / best[&'A'],
            );
        }
    }
    if ['A', 'C', 'D', 'E', 'F', 'G']
        .iter()
        .all(|l| med.contains_key(l))
    {
        let a = med[&'A'];
        println!("\nbreakdown of A (medians, wall):");
        let mut sum = 0.0;
        for (l, what) in [
            ('C', "Ed25519 verify_strict of the base"),
            ('D', "parse Signature-Input + Signature"),
            ('E', "build signature base"),
            ('F', "Content-Digest check (sfv + sha-256)"),
            ('G', "nonce store insert"),
        ] {
            sum += med[&l];
            println!(
                "  {l} {what:<42} {:>8.3} µs {:>6.1}%",
                us(med[&l]),
                100.0 * med[&l] / a
            );
        }
        for (what, v) in [
            ("  = sum of parts", sum),
            ("  A - sum (rule checks, result, rest)", a - sum),
            ("  non-crypto overhead = A - C", a - med[&'C']),
            ("  D+E+F+G (measured non-crypto parts)", sum - med[&'C']),
        ] {
            println!("{what:<46} {:>8.3} µs {:>6.1}%", us(v), 100.0 * v / a);
        }
        if let Some(b) = med.get(&'B') {
            let parts = sum - med[&'C'];
            println!(
                "  parts-based estimate: throughput(C + D..G) / throughput(B) = {:.3}",
                b / (med[&'C'] + parts)
            );
        }
    }
    Ok(())
}
