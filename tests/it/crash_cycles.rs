//! kill -9 cycles under mixed load (issue 14): `gnapd serve --dev` in front
//! of the Python MCP SDK upstream, four agents' worth of traffic (new
//! grants, continuations, modifications, rotations, revocations, grant
//! deletions, gateway calls, upstreams added and removed on the admin
//! socket), SIGKILL at a random moment, then:
//! - the store opens and `SledStore::check` finds every record and index
//!   whole (no grant half-written);
//! - after a restart every answer that left the server holds: a token
//!   answered with works at the gateway, a token revoked, rotated away or
//!   deleted with its grant is refused there and cannot be rotated, a
//!   continuation answered with continues, a used one does not, an
//!   upstream acknowledged added is listed and one removed is not.
//!
//! A call cut off by the kill got no answer: what it touched is "in doubt"
//! and left out (the client never learned the outcome). Everything
//! acknowledged in the cycle is checked, plus a sample of older state.
//!
//! `GNAPD_CRASH_CYCLES` (default 3, the CI run) and `GNAPD_CRASH_SEED` set
//! the run; the full campaign is `GNAPD_CRASH_CYCLES=20`. The figures are
//! printed at the end (`--nocapture`) and kept in spec-notes/security.md
//! §6.1.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gnapd::proto::httpsig::{HttpRequest, SignOptions, sign_gnap};
use gnapd::store::sled::SledStore;
use serde_json::{Value, json};

use crate::gateway_http::VERSION;
use crate::support::agent::Agent;
use crate::support::mcp_upstream::Upstream;
use crate::support::raw_http::{Conn, Response, encode};
use crate::support::rng::Rng;
use crate::support::server::{Server, start_logged};

const CYCLES_ENV: &str = "GNAPD_CRASH_CYCLES";
const SEED_ENV: &str = "GNAPD_CRASH_SEED";
const WORKERS: usize = 4;
/// Older entries checked again after each restart, beside the new ones.
const SAMPLE: usize = 24;
const TIMEOUT: Duration = Duration::from_secs(20);

/// What the client knows about a credential it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    /// Answered as working.
    Live,
    /// Answered as gone: revoked, rotated away, used, deleted.
    Gone,
}

#[derive(Debug, Clone)]
struct Cred {
    value: String,
    known: Known,
    /// The cycle whose answer set `known`.
    cycle: usize,
}

#[derive(Debug, Clone)]
struct Token {
    access: Cred,
    /// Its management token (lives and dies with it).
    manage: String,
    /// `/gnap/token/…`.
    manage_path: String,
}

/// One grant and what its client learned, checked out by one worker at a
/// time. A call cut off by the kill makes it `doubtful` for good.
struct Family {
    agent: Arc<Agent>,
    /// `/gnap/continue/…`.
    continue_path: String,
    /// Every continuation token, the current one last.
    conts: Vec<Cred>,
    tokens: Vec<Token>,
    busy: bool,
    doubtful: bool,
}

impl Family {
    fn live_token(&self, rng: &mut Rng) -> Option<usize> {
        let live: Vec<usize> = (0..self.tokens.len())
            .filter(|i| self.tokens[*i].access.known == Known::Live)
            .collect();
        (!live.is_empty()).then(|| live[rng.below(live.len())])
    }

    fn cont_live(&self) -> bool {
        self.conts.last().is_some_and(|c| c.known == Known::Live)
    }
}

/// What an upstream added or removed on the admin socket must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listed {
    Yes,
    No,
    Doubt,
}

#[derive(Default)]
struct Counts {
    acknowledged: usize,
    by_kind: BTreeMap<&'static str, usize>,
    gateway_ok: usize,
    in_doubt: usize,
    verified: usize,
    lost: Vec<String>,
    /// Wrong answers while the server ran (a bug, not a crash effect).
    wrong: Vec<String>,
}

struct World {
    families: Mutex<Vec<Family>>,
    upstreams: Mutex<BTreeMap<String, (Listed, usize)>>,
    counts: Mutex<Counts>,
    cycle: usize,
}

/// The server of the current cycle.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    base: String,
    data: std::path::PathBuf,
}

impl Target {
    fn uri(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn now() -> i64 {
    gnapd::clock::Clock::now(&gnapd::clock::SystemClock)
}

/// What became of a request.
enum Outcome {
    Answered(Response),
    /// Never reached a server (it was down): nothing happened.
    Unsent,
    /// Cut off after it left: the server may have acted on it.
    Cut,
}

fn send(conn: &mut Conn, request: &HttpRequest) -> Outcome {
    match conn.exchange(&encode(request)) {
        Ok(r) => Outcome::Answered(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotConnected => Outcome::Unsent,
        Err(_) => Outcome::Cut,
    }
}

/// The answer of a request to a server that must be up.
fn answer(conn: &mut Conn, request: &HttpRequest) -> Response {
    match send(conn, request) {
        Outcome::Answered(r) => r,
        _ => panic!("no answer from the restarted server"),
    }
}

/// The path of a URI the AS handed out.
fn path_of(uri: &str) -> String {
    uri[uri.find("/gnap").unwrap()..].to_owned()
}

fn token_of(answer: &Value, cycle: usize) -> Token {
    let t = &answer["access_token"];
    Token {
        access: Cred {
            value: t["value"].as_str().unwrap().to_owned(),
            known: Known::Live,
            cycle,
        },
        manage: t["manage"]["access_token"]["value"]
            .as_str()
            .unwrap()
            .to_owned(),
        manage_path: path_of(t["manage"]["uri"].as_str().unwrap()),
    }
}

fn gateway_call(target: &Target, conn: &mut Conn, agent: &Agent, token: &str) -> Outcome {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "crash-cycles", "version": "0"}}});
    let mut req = HttpRequest::new("POST", target.uri("/mcp/up"));
    req.fields
        .append("Accept", "application/json, text/event-stream");
    req.fields.append("Content-Type", "application/json");
    req.fields.append("Authorization", format!("GNAP {token}"));
    req.body = serde_json::to_vec(&body).unwrap();
    sign_gnap(&mut req, &agent.key, now(), &SignOptions::default()).unwrap();
    send(conn, &req)
}

/// A refusal that changed nothing: a bound under load, not an answer
/// about the credential.
fn busy(r: &Response) -> bool {
    r.status == 429 || r.status == 503
}

impl World {
    fn wrong(&self, what: String) {
        self.counts.lock().unwrap().wrong.push(what);
    }

    fn ack(&self, kind: &'static str) {
        let mut counts = self.counts.lock().unwrap();
        counts.acknowledged += 1;
        *counts.by_kind.entry(kind).or_default() += 1;
    }

    /// Checks out a family that is neither busy nor in doubt.
    fn take(&self, rng: &mut Rng) -> Option<(usize, Family)> {
        let mut families = self.families.lock().unwrap();
        let free: Vec<usize> = (0..families.len())
            .filter(|i| !families[*i].busy && !families[*i].doubtful && families[*i].cont_live())
            .collect();
        if free.is_empty() {
            return None;
        }
        let i = free[rng.below(free.len())];
        families[i].busy = true;
        let f = &families[i];
        let copy = Family {
            agent: f.agent.clone(),
            continue_path: f.continue_path.clone(),
            conts: f.conts.clone(),
            tokens: f.tokens.clone(),
            busy: true,
            doubtful: false,
        };
        Some((i, copy))
    }

    fn put(&self, i: usize, mut family: Family) {
        family.busy = false;
        if family.doubtful {
            self.counts.lock().unwrap().in_doubt += 1;
        }
        self.families.lock().unwrap()[i] = family;
    }

    /// One random operation against `target`.
    fn step(&self, target: &Target, conn: &mut Conn, rng: &mut Rng) {
        let cycle = self.cycle;
        let roll = rng.below(100);
        if roll < 25 {
            return self.new_grant(target, conn, cycle);
        }
        if roll < 28 {
            return self.admin_change(target, rng);
        }
        let Some((i, mut f)) = self.take(rng) else {
            return self.new_grant(target, conn, cycle);
        };
        let cont_uri = target.uri(&f.continue_path);
        let cont = f.conts.last().unwrap().value.clone();
        match roll {
            28..=50 => {
                // Continue (POST, a poll of an approved grant) or modify
                // (PATCH, one more token): the continuation token is swapped.
                let patch = roll >= 43;
                let req = if patch {
                    let body = json!({"access_token": {"access": ["mcp:up"]}});
                    f.agent
                        .signed("PATCH", &cont_uri, Some(&cont), Some(&body), now())
                } else {
                    f.agent.signed("POST", &cont_uri, Some(&cont), None, now())
                };
                match send(conn, &req) {
                    Outcome::Cut => f.doubtful = true,
                    Outcome::Unsent => {}
                    Outcome::Answered(r) if busy(&r) => {}
                    Outcome::Answered(r) if r.status == 200 => {
                        let body = r.json();
                        f.conts.last_mut().unwrap().known = Known::Gone;
                        f.conts.last_mut().unwrap().cycle = cycle;
                        f.conts.push(Cred {
                            value: body["continue"]["access_token"]["value"]
                                .as_str()
                                .unwrap()
                                .to_owned(),
                            known: Known::Live,
                            cycle,
                        });
                        if patch {
                            f.tokens.push(token_of(&body, cycle));
                        }
                        self.ack(if patch {
                            "modification"
                        } else {
                            "continuation"
                        });
                    }
                    Outcome::Answered(r) => self.wrong(format!(
                        "continuing a live grant: {} {}",
                        r.status,
                        r.text()
                    )),
                }
            }
            51..=74 => {
                // Rotate or revoke a live token.
                let Some(t) = f.live_token(rng) else {
                    return self.put(i, f);
                };
                let uri = target.uri(&f.tokens[t].manage_path);
                let manage = f.tokens[t].manage.clone();
                let revoke = roll >= 65;
                let method = if revoke { "DELETE" } else { "POST" };
                match send(
                    conn,
                    &f.agent.signed(method, &uri, Some(&manage), None, now()),
                ) {
                    Outcome::Cut => f.doubtful = true,
                    Outcome::Unsent => {}
                    Outcome::Answered(r) if busy(&r) => {}
                    Outcome::Answered(r)
                        if (revoke && r.status == 204) || (!revoke && r.status == 200) =>
                    {
                        f.tokens[t].access.known = Known::Gone;
                        f.tokens[t].access.cycle = cycle;
                        if !revoke {
                            f.tokens.push(token_of(&r.json(), cycle));
                        }
                        self.ack(if revoke { "revocation" } else { "rotation" });
                    }
                    Outcome::Answered(r) => self.wrong(format!(
                        "{method} of a live token: {} {}",
                        r.status,
                        r.text()
                    )),
                }
            }
            75..=79 => {
                // Delete the grant: every token and the continuation go.
                match send(
                    conn,
                    &f.agent
                        .signed("DELETE", &cont_uri, Some(&cont), None, now()),
                ) {
                    Outcome::Cut => f.doubtful = true,
                    Outcome::Unsent => {}
                    Outcome::Answered(r) if busy(&r) => {}
                    Outcome::Answered(r) if r.status == 204 => {
                        for t in &mut f.tokens {
                            if t.access.known == Known::Live {
                                t.access.known = Known::Gone;
                                t.access.cycle = cycle;
                            }
                        }
                        let last = f.conts.last_mut().unwrap();
                        last.known = Known::Gone;
                        last.cycle = cycle;
                        self.ack("grant deletion");
                    }
                    Outcome::Answered(r) => {
                        self.wrong(format!("deleting a live grant: {} {}", r.status, r.text()))
                    }
                }
            }
            _ => {
                // A gateway call with a live token.
                if let Some(t) = f.live_token(rng) {
                    let value = f.tokens[t].access.value.clone();
                    match gateway_call(target, conn, &f.agent, &value) {
                        Outcome::Unsent | Outcome::Cut => {}
                        Outcome::Answered(r) if busy(&r) => {}
                        Outcome::Answered(r) if r.status == 200 => {
                            self.counts.lock().unwrap().gateway_ok += 1
                        }
                        Outcome::Answered(r) => self.wrong(format!(
                            "gateway call with a live token: {} {}",
                            r.status,
                            r.text()
                        )),
                    }
                }
            }
        }
        self.put(i, f);
    }

    fn new_grant(&self, target: &Target, conn: &mut Conn, cycle: usize) {
        let agent = Agent::new();
        let req = agent.signed(
            "POST",
            &target.uri("/gnap"),
            None,
            Some(&agent.grant_body(json!(["mcp:up"]))),
            now(),
        );
        match send(conn, &req) {
            // No answer: the client knows nothing, so nothing is owed.
            Outcome::Unsent | Outcome::Cut => {}
            Outcome::Answered(r) if busy(&r) => {}
            Outcome::Answered(r) if r.status == 200 => {
                let body = r.json();
                let family = Family {
                    agent: Arc::new(agent),
                    continue_path: path_of(body["continue"]["uri"].as_str().unwrap()),
                    conts: vec![Cred {
                        value: body["continue"]["access_token"]["value"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                        known: Known::Live,
                        cycle,
                    }],
                    tokens: vec![token_of(&body, cycle)],
                    busy: false,
                    doubtful: false,
                };
                self.families.lock().unwrap().push(family);
                self.ack("new grant");
            }
            Outcome::Answered(r) => {
                self.wrong(format!("a grant request: {} {}", r.status, r.text()))
            }
        }
    }

    fn admin_change(&self, target: &Target, rng: &mut Rng) {
        let name = format!("adm{}", rng.below(6));
        let mut upstreams = self.upstreams.lock().unwrap();
        let listed = upstreams.get(&name).map_or(Listed::No, |(l, _)| *l);
        if listed == Listed::Doubt {
            return;
        }
        let command = if listed == Listed::Yes {
            json!({"op": "upstream_remove", "name": name})
        } else {
            json!({"op": "upstream_add", "name": name, "url": "http://127.0.0.1:9/mcp"})
        };
        // Held under the lock: one admin change at a time, so the
        // expectation is never raced.
        let outcome = match gnapd::admin::socket::call(&target.data, &command) {
            Ok(_) => {
                self.ack(if listed == Listed::Yes {
                    "upstream removed"
                } else {
                    "upstream added"
                });
                if listed == Listed::Yes {
                    Listed::No
                } else {
                    Listed::Yes
                }
            }
            Err(e) if e.to_string().contains("no gnapd is serving") => return,
            Err(_) => Listed::Doubt,
        };
        upstreams.insert(name, (outcome, self.cycle));
    }
}

/// The server, on `data`, at `upstream`.
fn start(dir: &Path, upstream: &Upstream, cycle: usize) -> (Server, Target) {
    let config = dir.join("gnapd.toml");
    std::fs::write(&config, "poll_wait = 0\n").unwrap();
    let data = dir.join("data");
    let server = start_logged(
        &data,
        &dir.join(format!("gnapd-{cycle}.log")),
        &[
            "--dev",
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            &format!("up={}", upstream.url()),
        ],
    );
    let target = Target {
        addr: server.addr,
        base: server.base(),
        data,
    };
    (server, target)
}

/// Runs the load until `killed`.
fn load(world: &World, target: &Target, killed: &AtomicBool, seed: u64) {
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let mut rng = Rng::new(seed ^ ((w as u64 + 1) << 32));
            s.spawn(move || {
                let mut conn = Conn::new(target.addr, TIMEOUT);
                while !killed.load(Ordering::SeqCst) {
                    world.step(target, &mut conn, &mut rng);
                }
            });
        }
    });
}

/// After a restart: is every acknowledged answer still true?
fn verify(world: &World, target: &Target, rng: &mut Rng) {
    let cycle = world.cycle;
    let mut conn = Conn::new(target.addr, TIMEOUT);
    let mut families = world.families.lock().unwrap();
    let mut counts = world.counts.lock().unwrap();
    let total = families.len();
    let sampled: Vec<bool> = (0..total)
        .map(|_| rng.below(total.max(1)) < SAMPLE)
        .collect();
    for (i, f) in families.iter_mut().enumerate() {
        if f.doubtful {
            continue;
        }
        let wanted = |c: &Cred| c.cycle == cycle || sampled[i];
        for t in &f.tokens {
            if !wanted(&t.access) {
                continue;
            }
            let Outcome::Answered(works) =
                gateway_call(target, &mut conn, &f.agent, &t.access.value)
            else {
                panic!("no answer from the restarted server");
            };
            let ok = match t.access.known {
                Known::Live => works.status == 200,
                Known::Gone => works.status == 401,
            };
            if !ok {
                counts.lost.push(format!(
                    "cycle {cycle}: a token answered {:?} got {} at the gateway: {}",
                    t.access.known,
                    works.status,
                    works.text()
                ));
            }
            counts.verified += 1;
            if t.access.known == Known::Gone {
                let uri = target.uri(&t.manage_path);
                let rotated = answer(
                    &mut conn,
                    &f.agent.signed("POST", &uri, Some(&t.manage), None, now()),
                );
                if rotated.status == 200 {
                    counts.lost.push(format!(
                        "cycle {cycle}: a gone token's management token rotated it"
                    ));
                }
                counts.verified += 1;
            }
        }
        // Used continuation tokens fail; the current one continues (and is
        // swapped, which the next cycle checks in turn).
        let cont_uri = target.uri(&f.continue_path);
        for c in f
            .conts
            .iter()
            .filter(|c| c.known == Known::Gone && wanted(c))
        {
            let r = answer(
                &mut conn,
                &f.agent
                    .signed("POST", &cont_uri, Some(&c.value), None, now()),
            );
            if r.json()["error"]["code"] != "invalid_continuation" {
                counts.lost.push(format!(
                    "cycle {cycle}: a used continuation token got {} {}",
                    r.status,
                    r.text()
                ));
            }
            counts.verified += 1;
        }
        let last = f.conts.last().unwrap().clone();
        if last.known == Known::Live && wanted(&last) {
            let r = answer(
                &mut conn,
                &f.agent
                    .signed("POST", &cont_uri, Some(&last.value), None, now()),
            );
            if r.status == 200 {
                let next = r.json()["continue"]["access_token"]["value"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                let current = f.conts.last_mut().unwrap();
                current.known = Known::Gone;
                current.cycle = cycle + 1;
                f.conts.push(Cred {
                    value: next,
                    known: Known::Live,
                    cycle: cycle + 1,
                });
            } else {
                counts.lost.push(format!(
                    "cycle {cycle}: a live continuation token got {} {}",
                    r.status,
                    r.text()
                ));
            }
            counts.verified += 1;
        }
    }
    drop(families);
    let listed = gnapd::admin::socket::call(&target.data, &json!({"op": "upstream_list"})).unwrap();
    let names: Vec<&str> = listed["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    for (name, (want, _)) in world.upstreams.lock().unwrap().iter() {
        let there = names.contains(&name.as_str());
        let ok = match want {
            Listed::Yes => there,
            Listed::No => !there,
            Listed::Doubt => continue,
        };
        if !ok {
            counts.lost.push(format!(
                "cycle {cycle}: upstream {name} should be listed: {want:?}"
            ));
        }
        counts.verified += 1;
    }
}

#[test]
fn every_answer_that_left_the_server_survives_kill_9_at_random_moments_under_mixed_load() {
    let cycles: usize = crate::support::rng::knob(CYCLES_ENV, 3);
    let seed: u64 = crate::support::rng::knob(SEED_ENV, 14);
    let dir = tempfile::tempdir().unwrap();
    let upstream = Upstream::start(dir.path(), true);
    let mut rng = Rng::new(seed);
    let mut world = World {
        families: Mutex::default(),
        upstreams: Mutex::default(),
        counts: Mutex::default(),
        cycle: 0,
    };
    let started = Instant::now();
    let (mut server, mut target) = start(dir.path(), &upstream, 0);
    for cycle in 0..cycles {
        world.cycle = cycle;
        // A random moment: 0.4 to 2 s into the load.
        let kill_after = Duration::from_millis(400 + rng.next() % 1600);
        let killed = AtomicBool::new(false);
        let load_seed = rng.next();
        std::thread::scope(|s| {
            s.spawn(|| load(&world, &target, &killed, load_seed));
            std::thread::sleep(kill_after);
            // No new call starts from here; those on their way are cut off.
            killed.store(true, Ordering::SeqCst);
            let _ = server.process.child.kill();
            let _ = server.process.child.wait();
        });
        // The store opens, and nothing in it is half-written.
        let store = SledStore::open(&target.data.join("store")).unwrap();
        let checked = store.check().unwrap();
        assert!(
            checked.problems.is_empty(),
            "cycle {cycle}: {:?}",
            checked.problems
        );
        store.close().unwrap();
        drop(store);
        (server, target) = start(dir.path(), &upstream, cycle + 1);
        verify(&world, &target, &mut rng);
        let c = world.counts.lock().unwrap();
        println!(
            "cycle {cycle}: killed after {kill_after:?}; {} grants held, {} acknowledged so far, {} verified, {} in doubt",
            world.families.lock().unwrap().len(),
            c.acknowledged,
            c.verified,
            c.in_doubt
        );
    }
    server.kill();
    let c = Arc::new(world.counts.into_inner().unwrap());
    println!(
        "kill -9 campaign: {cycles} cycles in {:?}: {} answers acknowledged (+{} gateway calls), {} checks after restarts, {} lost, {} in doubt (cut off by the kill), {} wrong answers while running",
        started.elapsed(),
        c.acknowledged,
        c.gateway_ok,
        c.verified,
        c.lost.len(),
        c.in_doubt,
        c.wrong.len()
    );
    println!("acknowledged by kind: {:?}", c.by_kind);
    assert!(c.lost.is_empty(), "lost after kill -9: {:#?}", c.lost);
    assert!(
        c.wrong.is_empty(),
        "wrong answers while running: {:#?}",
        c.wrong
    );
    assert!(c.acknowledged > 0 && c.verified > 0);
}
