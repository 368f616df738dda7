//! Three `gnapd serve` processes on one PostgreSQL schema, each with its
//! own data dir and port, as several nodes behind a load balancer run
//! (issue 20): a grant made on one node opens the gateway on another; a
//! revocation on a third is refused on both within a second; a signed
//! request one node accepted is refused by the others; and a node killed
//! mid-load loses no token it answered.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::gateway_http::{Session, now};
use crate::support::agent::{Agent, access_token, error_code, management};
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::postgres::Schema;
use crate::support::server::{Serve, Server};

const SECRET: &str = "UPSTREAM-SECRET-OF-THE-CLUSTER";

/// Every node's public URL: one name, as behind a load balancer (so a
/// request signed for the cluster verifies at any node).
const PUBLIC_URL: &str = "http://gnapd.test";

/// Issue 20's bound for every node to refuse a revoked token.
const WITHIN: Duration = Duration::from_secs(1);

/// The nodes' shared setting: one schema, one master key, one upstream.
struct Cluster {
    dir: tempfile::TempDir,
    schema: Schema,
    upstream: Upstream,
    master_key: PathBuf,
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let upstream = Upstream::start(dir.path(), true);
        let schema = Schema::new();
        let master_key = dir.path().join("master.key");
        Self {
            dir,
            schema,
            upstream,
            master_key,
        }
    }

    /// Node `name`: its own data dir and log, and a port of its own. The
    /// first node made generates the master key (dev mode); the others
    /// are given that file, as an operator gives every node the same key.
    fn node(&self, name: &str) -> Server {
        let data = self.dir.path().join(name);
        let github = format!("github={}", self.upstream.url());
        let credential = format!("github=bearer:{SECRET}");
        let mut args = vec![
            "--dev".to_owned(),
            "--store".to_owned(),
            self.schema.conninfo.clone(),
            "--upstream".to_owned(),
            github,
            "--upstream-credential".to_owned(),
            credential,
            "--public-url".to_owned(),
            PUBLIC_URL.to_owned(),
        ];
        if self.master_key.exists() {
            args.push("--master-key-file".to_owned());
            args.push(self.master_key.display().to_string());
        }
        let server = Serve::new(&data)
            .args(&args)
            .log(&self.dir.path().join(format!("{name}.log")))
            .start();
        let generated = data.join("master.key");
        if !self.master_key.exists() && generated.exists() {
            std::fs::copy(&generated, &self.master_key).unwrap();
        }
        server
    }
}

/// A token for `mcp:github` granted by `server`.
fn granted(server: &Server, agent: &Agent) -> Value {
    let answer = server.grant(agent, &agent.grant_body(json!(["mcp:github"])));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

/// An initialized gateway session on `server` with `token`.
fn session<'a>(server: &'a Server, agent: &'a Agent, token: &str) -> Session<'a> {
    let mut session = Session::new(server, agent, Some(token.to_owned()), "github");
    session.initialize();
    session
}

fn tool_call(session: &mut Session<'_>) -> u16 {
    session
        .call(
            "tools/call",
            json!({"name": "search_issues", "arguments": {"query": "gnap"}}),
        )
        .status
}

#[test]
fn three_postgres_nodes_share_grants_and_refuse_a_revocation_made_on_any_of_them_within_a_second() {
    let cluster = Cluster::new();
    let (a, b, c) = (cluster.node("a"), cluster.node("b"), cluster.node("c"));
    let agent = Agent::new();
    let answer = granted(&a, &agent);
    let token = access_token(&answer).to_owned();
    let (manage_uri, manage) = management(&answer);

    // Granted on A, used through B's gateway (and A's: both cache it).
    let mut through_b = session(&b, &agent, &token);
    let mut through_a = session(&a, &agent, &token);
    assert_eq!(tool_call(&mut through_b), 200);
    assert_eq!(tool_call(&mut through_a), 200);

    // Revoked on C (RFC 9635 §6.2), at the cluster's management URI.
    let revoked = send(
        c.addr,
        &agent.signed("DELETE", manage_uri, Some(manage), None, now()),
    );
    assert_eq!(revoked.status, 204, "{}", revoked.text());
    let revoked_at = Instant::now();
    let mut refused = [None, None];
    while refused.iter().any(Option::is_none) {
        for (i, session) in [&mut through_a, &mut through_b].into_iter().enumerate() {
            if refused[i].is_none() && tool_call(session) == 401 {
                refused[i] = Some(revoked_at.elapsed());
            }
        }
        assert!(
            revoked_at.elapsed() < WITHIN,
            "still served after {WITHIN:?}: {refused:?}"
        );
    }
    eprintln!(
        "revoked on C; refused on A after {:?}, on B after {:?}",
        refused[0], refused[1]
    );
    // And refused at the gateway as GNAP asks.
    let answer = through_b.call("tools/list", json!({}));
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header_lines("www-authenticate")
            .any(|line| line.starts_with("GNAP")),
        "{}",
        answer.text()
    );
    for node in [a, b, c] {
        assert_eq!(node.stop(), Some(0));
    }
}

#[test]
fn a_signed_request_one_postgres_node_accepted_is_refused_by_the_others() {
    let cluster = Cluster::new();
    let (a, b, c) = (cluster.node("a"), cluster.node("b"), cluster.node("c"));
    let agent = Agent::new();

    // At the AS: the same grant request (its bytes, its signature) sent
    // to B and C after A answered it.
    let request = agent.signed(
        "POST",
        &a.grant_endpoint,
        None,
        Some(&agent.grant_body(json!(["mcp:github"]))),
        now(),
    );
    let first = send(a.addr, &request);
    assert_eq!(first.status, 200, "{}", first.text());
    let token = access_token(&first.json()).to_owned();
    for other in [&b, &c] {
        let replay = send(other.addr, &request);
        assert_eq!(
            (replay.status, error_code(&replay.json())),
            (401, "invalid_client"),
            "{}",
            replay.text()
        );
    }

    // At the gateway: a signed initialize, first shown to be acceptable
    // at B though built for A's session (so what refuses the replay below
    // is the replay, not where it was sent).
    let probe = Session::new(&a, &agent, Some(token.clone()), "github");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": crate::gateway_http::VERSION, "capabilities": {},
                   "clientInfo": {"name": "gnapd-test", "version": "0"}}});
    let control = probe.request("POST", Some(&initialize), &[]);
    let accepted = send(b.addr, &control);
    assert_eq!(
        accepted.status,
        200,
        "{} {:?}",
        accepted.text(),
        accepted
            .header_lines("www-authenticate")
            .collect::<Vec<_>>()
    );
    let call = probe.request(
        "POST",
        Some(&json!({"jsonrpc": "2.0", "id": 2, "method": "initialize",
            "params": initialize["params"]})),
        &[],
    );
    assert_eq!(send(a.addr, &call).status, 200);
    for other in [&b, &c] {
        let replay = send(other.addr, &call);
        assert_eq!(replay.status, 401, "{}", replay.text());
        assert!(
            replay
                .header_lines("www-authenticate")
                .any(|line| line.starts_with("GNAP")),
            "{}",
            replay.text()
        );
    }
    for node in [a, b, c] {
        assert_eq!(node.stop(), Some(0));
    }
}

#[test]
fn a_postgres_node_killed_mid_load_loses_no_token_it_answered() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.node("a"), cluster.node("b"));
    let victim = cluster.node("c");
    let (addr, grant_endpoint) = (victim.addr, victim.grant_endpoint.clone());
    let answered: Mutex<Vec<(Agent, String)>> = Mutex::new(Vec::new());
    let killed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                while !killed.load(Ordering::Acquire) {
                    let agent = Agent::new();
                    let request = agent.signed(
                        "POST",
                        &grant_endpoint,
                        None,
                        Some(&agent.grant_body(json!(["mcp:github"]))),
                        now(),
                    );
                    let Some(answer) = try_send(addr, &request) else {
                        break;
                    };
                    if answer.0 == 200 {
                        let token = answer.1["access_token"]["value"]
                            .as_str()
                            .map(str::to_owned);
                        if let Some(token) = token {
                            answered.lock().unwrap().push((agent, token));
                        }
                    }
                }
            });
        }
        // Mid-load: once it has answered some, SIGKILL.
        let start = Instant::now();
        while answered.lock().unwrap().len() < 60 {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no load answered"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        victim.kill();
        killed.store(true, Ordering::Release);
    });
    let answered = answered.into_inner().unwrap();
    eprintln!("{} tokens answered before the SIGKILL", answered.len());
    for (i, (agent, token)) in answered.iter().enumerate() {
        let survivor = if i % 2 == 0 { &a } else { &b };
        let mut through = session(survivor, agent, token);
        assert_eq!(
            tool_call(&mut through),
            200,
            "token {i} of {}",
            answered.len()
        );
    }
    for node in [a, b] {
        assert_eq!(node.stop(), Some(0));
    }
}

/// `send`, but `None` when the node is gone (a killed node's connection
/// fails; a panic on another thread would hide which token was lost).
fn try_send(
    addr: std::net::SocketAddr,
    request: &gnapd::proto::httpsig::HttpRequest,
) -> Option<(u16, Value)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let answer = send(addr, request);
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, body)
    }))
    .ok()
}
