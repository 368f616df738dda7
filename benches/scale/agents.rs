//! A brand-new agent and its first token: a fresh Ed25519 key, a grant
//! request for a tool at the bench's upstream (so the gateway takes the
//! token), signed with HTTP Message Signatures, answered 200 with the
//! token. The same flow as benches/as_flows, with the gateway bench's
//! access.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gnapd::client::AccessSpec;
use gnapd::client::grant::grant_request;
use gnapd::proto::httpsig::{Algorithm, HttpRequest, SignOptions, sign_gnap};
use gnapd::proto::jwk::SigningKey;
use http_body_util::Full;
use serde_json::{Value, json};

use super::Res;
use super::server::UPSTREAM;
use super::wire::{Conn, snippet};

/// The tool the tokens are for.
pub const TOOL: &str = "create_issue";

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A key and its grant request body (which carries its public JWK).
pub struct Agent {
    pub key: SigningKey,
    body: Bytes,
}

impl Agent {
    pub fn new() -> Res<Self> {
        let key = SigningKey::generate(Algorithm::Ed25519).map_err(|e| e.to_string())?;
        let access = AccessSpec::Explicit(vec![json!({"type": "mcp", "identifier": UPSTREAM,
            "actions": ["tools/call"], "tools": [TOOL]})]);
        let body = grant_request(&key, "scale bench agent", &access, &[], None);
        Ok(Self {
            body: Bytes::from(serde_json::to_vec(&body)?),
            key,
        })
    }
}

/// `n` agents, made on every core.
pub fn many(n: usize) -> Res<Vec<Agent>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .min(n.max(1));
    let parts: Vec<Res<Vec<Agent>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let share = n / threads + usize::from(i < n % threads);
                scope.spawn(move || (0..share).map(|_| Agent::new()).collect())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("agent thread failed".into()))
            })
            .collect()
    });
    let mut agents = Vec::with_capacity(n);
    for part in parts {
        agents.extend(part?);
    }
    Ok(agents)
}

/// Where grant requests go.
pub struct Target {
    /// `host:port`.
    pub authority: String,
    /// The grant endpoint's URL, as gnapd signs it.
    pub url: String,
    /// Its path.
    pub path: String,
}

impl Target {
    pub fn new(grant_endpoint: &str) -> Res<Self> {
        let rest = grant_endpoint
            .strip_prefix("http://")
            .ok_or_else(|| format!("not an http URL: {grant_endpoint}"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        Ok(Self {
            authority: authority.to_owned(),
            url: grant_endpoint.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One flow: the signed grant request, and the token it was answered with.
pub async fn first_token(conn: &mut Conn, target: &Target, agent: &Agent) -> Res<String> {
    let mut req = HttpRequest::new("POST", &target.url);
    req.body = agent.body.to_vec();
    req.fields.append("Content-Type", "application/json");
    sign_gnap(&mut req, &agent.key, unix_now(), &SignOptions::default())
        .map_err(|e| e.to_string())?;
    let mut builder = hyper::Request::builder()
        .method("POST")
        .uri(target.path.as_str())
        .header("host", target.authority.as_str());
    for (name, value) in req.fields.iter() {
        builder = builder.header(name, value);
    }
    let (status, body) = conn
        .send(builder.body(Full::new(Bytes::from(req.body)))?)
        .await?;
    if status != 200 {
        return Err(format!("grant: HTTP {status}: {}", snippet(&body)).into());
    }
    let answer: Value = serde_json::from_slice(&body)?;
    answer["access_token"]["value"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("grant: no access_token.value: {}", snippet(&body)).into())
}
