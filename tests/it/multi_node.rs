//! Three `gnapd serve` processes on one PostgreSQL schema, each with its
//! own data dir and port, as several nodes behind a load balancer run
//! (issue 20): a grant made on one node opens the gateway on another; a
//! revocation on a third is refused on both within a second; a signed
//! request one node accepted is refused by the others; and a node killed
//! mid-load loses no token it answered.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::gateway_http::{Session, now};
use crate::support::agent::{Agent, access_token, error_code, management};
use crate::support::http_client::send;
use crate::support::mcp_upstream::Upstream;
use crate::support::pg_nodes::Nodes;
use crate::support::server::Server;

const SECRET: &str = "UPSTREAM-SECRET-OF-THE-CLUSTER";

/// Issue 20's bound for every node to refuse a revoked token.
const WITHIN: Duration = Duration::from_secs(1);

/// The nodes' shared setting: dev nodes on one schema, with one master
/// key and one upstream, which every node is given on its command line.
struct Cluster {
    nodes: Nodes,
    _upstream: Upstream,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let upstream = Upstream::start(dir.path(), true);
        let github = format!("github={}", upstream.url());
        let credential = format!("github=bearer:{SECRET}");
        let nodes = Nodes::dev(
            dir.path(),
            None,
            &["--upstream", &github, "--upstream-credential", &credential],
        );
        Self {
            nodes,
            _upstream: upstream,
            _dir: dir,
        }
    }

    /// Node `name`: its own data dir, log and port.
    fn node(&self, name: &str) -> Server {
        self.nodes.node(name)
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
