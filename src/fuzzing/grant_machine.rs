//! The grant state machine (RFC 9635 §2–§6, RFC 9767 §3.3) driven by
//! operation sequences: the in-process AS over the memory store and a
//! manual clock, against a model of what its answers promised
//! (`grant_model`).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};

use super::NOW;
use super::grant_model::{Answer, Grant, Token, within_rule};
use crate::authz::usercode::ADMIN_SOURCE;
use crate::authz::{AllowRule, AsConfig, AuthServer, Endpoint, FinishAction, Policy, RsRule};
use crate::clock::{Clock as _, ManualClock};
use crate::proto::b64;
use crate::proto::httpsig::{HttpRequest, SignOptions, sign_gnap, sign_gnap_rotation};
use crate::proto::jwk::SigningKey;
use crate::store::memory::MemoryStore;

const PUBLIC: &str = "https://as.example";
/// Agents 0 and 1 make grants (0 is allowlisted, 1 is not); 2 is the key
/// tokens rotate to; 3 is the resource server.
const AGENTS: usize = 3;
const RS: usize = 3;
/// Most operations one input runs.
const MAX_OPS: usize = 48;
/// Clock steps an input can take (seconds): within the poll wait, past it,
/// past an interaction, a token, a grant.
const STEPS: [i64; 7] = [1, 5, 61, 601, 3_601, 4 * 3_600, 31 * 86_400];

/// Fixed Ed25519 keys (seed bytes `i + 1`).
pub(super) fn keys() -> &'static [SigningKey] {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (1..=4u8)
            .map(|seed| {
                let secret = [seed; 32];
                let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
                let jwk = json!({"kty": "OKP", "crv": "Ed25519",
                    "d": b64::encode_url(&secret), "x": b64::encode_url(public.as_bytes())});
                SigningKey::from_private_jwk(&jwk, None).expect("fixed key")
            })
            .collect()
    })
}

fn public_jwk(key: usize) -> Value {
    keys()[key]
        .verifying_key()
        .public_jwk()
        .cloned()
        .expect("a public JWK")
}

/// The fuzzer's bytes, read one choice at a time (zeros once used up).
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    /// An index below `n` (`n` > 0).
    fn pick(&mut self, n: usize) -> usize {
        usize::from(self.next()) % n
    }
}

struct Machine {
    server: AuthServer,
    clock: Arc<ManualClock>,
    grants: Vec<Grant>,
    tokens: Vec<Token>,
    /// Every secret the AS handed out: none twice.
    issued: HashSet<String>,
    /// Every continuation and management token handed out, for
    /// introspection.
    others: Vec<String>,
    instances: [Option<String>; 2],
    last: Option<(Endpoint, HttpRequest)>,
    nonce: u32,
}

impl Machine {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::at(NOW));
        let thumbprint = |k: usize| keys()[k].verifying_key().thumbprint().as_str().to_owned();
        let policy = Policy {
            allow: vec![AllowRule {
                thumbprint: Some(thumbprint(0)),
                class_id: None,
                access: vec!["mcp:a".into(), "type:mcp".into()],
            }],
            resource_servers: vec![RsRule {
                thumbprint: thumbprint(RS),
                access: vec!["*".into()],
            }],
            ..Policy::default()
        };
        let server = AuthServer::new(
            Arc::new(MemoryStore::new()),
            clock.clone(),
            policy,
            AsConfig::new(PUBLIC),
        );
        Self {
            server,
            clock,
            grants: Vec::new(),
            tokens: Vec::new(),
            issued: HashSet::new(),
            others: Vec::new(),
            instances: [None, None],
            last: None,
            nonce: 0,
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    fn signed(
        &self,
        key: usize,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> HttpRequest {
        let mut req = HttpRequest::new(method, uri);
        if let Some(body) = body {
            req.body = serde_json::to_vec(body).expect("JSON");
            req.fields.append("Content-Type", "application/json");
        }
        if let Some(token) = token {
            req.fields.append("Authorization", format!("GNAP {token}"));
        }
        sign_gnap(&mut req, &keys()[key], self.now(), &SignOptions::default()).expect("sign");
        req
    }

    /// Sends `req`: never a server error; the status and the JSON body.
    fn send(&mut self, endpoint: Endpoint, req: HttpRequest) -> (u16, Value) {
        let reply = self.server.handle(&endpoint, &req);
        assert!(reply.status < 500, "{} for {endpoint:?}", reply.status);
        self.last = Some((endpoint, req));
        let body = if reply.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&reply.body).expect("a JSON reply")
        };
        if reply.status >= 400 {
            assert!(
                body["error"]["code"].is_string(),
                "{} without an error: {body}",
                reply.status
            );
        }
        (reply.status, body)
    }

    /// Reads an answer's secrets, each of which must be new.
    fn answer(&mut self, body: &Value) -> Answer {
        let answer = Answer::read(body);
        for secret in answer.secrets() {
            assert!(
                self.issued.insert(secret.to_owned()),
                "a secret handed out twice"
            );
        }
        answer
    }

    fn add_tokens(&mut self, grant: usize, answer: &Answer) {
        let key = self.grants[grant].agent;
        for (value, manage, access) in &answer.tokens {
            self.others.push(manage.clone());
            self.tokens.push(Token {
                value: value.clone(),
                manage: manage.clone(),
                grant,
                key,
                access: access.clone(),
                dead: false,
                expires_at: self.now() + 3_600,
            });
        }
    }

    fn kill_grant(&mut self, g: usize) {
        self.grants[g].gone = true;
        for t in self.tokens.iter_mut().filter(|t| t.grant == g) {
            t.dead = true;
        }
    }

    fn continue_uri(&self, g: usize) -> String {
        format!("{PUBLIC}/gnap/continue/{}", self.grants[g].id)
    }

    /// §2: a new grant request.
    fn grant(&mut self, c: &mut Choices<'_>) {
        let agent = c.pick(2);
        let access_token = match c.pick(4) {
            0 => json!({"access": ["mcp:a"]}),
            1 => json!({"access": ["mcp:b"]}),
            2 => {
                json!({"access": [{"type": "mcp", "identifier": "a", "tools": ["t"]}], "label": "x"})
            }
            _ => json!([{"label": "a", "access": ["mcp:a"]}, {"label": "b", "access": ["mcp:b"]}]),
        };
        self.nonce += 1;
        let interact = match c.pick(3) {
            0 => None,
            1 => Some(json!({"start": ["user_code"]})),
            _ => Some(
                json!({"start": ["redirect"], "finish": {"method": "redirect",
                "uri": "https://client.example/cb", "nonce": format!("n{}", self.nonce)}}),
            ),
        };
        let client = match (&self.instances[agent], c.pick(2)) {
            (Some(instance), 0) => json!(instance),
            _ => json!({"key": {"proof": "httpsig", "jwk": public_jwk(agent)}}),
        };
        let mut body = json!({"access_token": access_token, "client": client});
        if let Some(interact) = interact {
            body["interact"] = interact;
        }
        let req = self.signed(agent, "POST", &format!("{PUBLIC}/gnap"), None, Some(&body));
        let (status, reply) = self.send(Endpoint::Grant, req);
        if status != 200 {
            return;
        }
        let answer = self.answer(&reply);
        if let Some(instance) = &answer.instance_id {
            self.instances[agent] = Some(instance.clone());
        }
        let now = self.now();
        let pending = answer.interact;
        // Agent 1 has no rule: never a token without a person.
        assert!(
            agent == 0 || answer.tokens.is_empty(),
            "a token without approval"
        );
        assert_eq!(pending, agent == 1, "{reply}");
        for (_, _, access) in &answer.tokens {
            assert!(within_rule(access), "issued beyond the rule: {access}");
        }
        self.grants.push(Grant {
            id: answer.grant_id.clone().expect("a continuation URI"),
            agent,
            continuation: answer.continuation.clone().expect("a continuation"),
            spent: Vec::new(),
            pending,
            decided: None,
            finish: answer.finish,
            interact_ref: None,
            user_code: answer.user_code.clone(),
            interaction_expires: now + 600,
            expires_at: if pending {
                now + 600 + 3_600
            } else {
                now + 30 * 86_400
            },
            gone: false,
        });
        self.add_tokens(self.grants.len() - 1, &answer);
    }

    /// The continuation token to present: mostly the current one.
    fn continuation(&self, g: usize, c: &mut Choices<'_>) -> (String, bool) {
        let grant = &self.grants[g];
        match c.pick(4) {
            0 if !grant.spent.is_empty() => {
                let i = c.pick(grant.spent.len());
                (grant.spent[i].clone(), true)
            }
            _ => (grant.continuation.clone(), false),
        }
    }

    /// §5.1, §5.2, §5.3, §5.4: poll, finish, modify or delete, signed by
    /// the grant's key or (`wrong_key`) another.
    fn continue_grant(&mut self, c: &mut Choices<'_>, kind: u8) {
        if self.grants.is_empty() {
            return;
        }
        let g = c.pick(self.grants.len());
        let (token, spent) = self.continuation(g, c);
        let wrong_key = kind == 4;
        let key = if wrong_key {
            (self.grants[g].agent + 1) % AGENTS
        } else {
            self.grants[g].agent
        };
        let uri = self.continue_uri(g);
        let (method, body) = match kind {
            1 => {
                let r = self.grants[g].interact_ref.clone();
                let r = r
                    .filter(|_| c.pick(4) != 0)
                    .unwrap_or_else(|| "wrong-ref".into());
                ("POST", Some(json!({"interact_ref": r})))
            }
            2 => {
                let access = if c.pick(2) == 0 { "mcp:a" } else { "mcp:b" };
                ("PATCH", Some(json!({"access_token": {"access": [access]}})))
            }
            3 => ("DELETE", None),
            _ => ("POST", None),
        };
        let req = self.signed(key, method, &uri, Some(&token), body.as_ref());
        let id = self.grants[g].id.clone();
        let (status, reply) = self.send(Endpoint::Continue(id), req);
        let grant = self.grants[g].clone();
        let ok = status == 200 || status == 204;
        if ok {
            assert!(!spent, "a used continuation token worked again ({method})");
            assert!(!grant.gone, "a deleted grant continued ({method})");
            assert!(!wrong_key, "another key continued a grant");
            assert!(self.now() <= grant.expires_at, "an expired grant continued");
        }
        let code = reply["error"]["code"].as_str().unwrap_or_default();
        if code == "too_many_attempts" {
            // §5.1: an interaction reference on a grant no longer pending
            // finalizes it.
            assert!(!grant.pending && !spent && !wrong_key, "{reply}");
            self.kill_grant(g);
            return;
        }
        if !ok {
            return;
        }
        if status == 204 {
            assert_eq!(method, "DELETE");
            self.others.push(token.clone());
            self.grants[g].spent.push(token);
            self.kill_grant(g);
            return;
        }
        let answer = self.answer(&reply);
        let next = answer.continuation.clone().expect("a new continuation");
        self.others.push(token.clone());
        self.grants[g].spent.push(token);
        self.grants[g].continuation = next;
        if !answer.tokens.is_empty() {
            match method {
                "PATCH" => {
                    assert!(
                        !grant.pending && grant.agent == 0,
                        "modified without a rule"
                    );
                    for (_, _, access) in &answer.tokens {
                        assert!(within_rule(access), "modified beyond the rule: {access}");
                    }
                }
                _ => {
                    // Tokens after interaction: approved by the person, and
                    // with the reference when there is a finish method.
                    assert!(grant.pending, "tokens for a grant not pending");
                    assert_eq!(grant.decided, Some(true), "tokens without approval");
                    assert_eq!(body.is_some(), grant.finish, "tokens without the reference");
                    self.grants[g].pending = false;
                    self.grants[g].expires_at = self.now() + 30 * 86_400;
                }
            }
            self.add_tokens(g, &answer);
        } else if grant.pending && grant.decided == Some(true) && !grant.finish {
            panic!("an approved grant polled without its tokens: {reply}");
        }
        if grant.decided == Some(false) {
            panic!("a denied grant continued: {reply}");
        }
    }

    /// A person's decision at the admin socket (`grants approve|deny`).
    fn decide(&mut self, c: &mut Choices<'_>) {
        let waiting: Vec<usize> = (0..self.grants.len())
            .filter(|g| self.grants[*g].pending && self.grants[*g].decided.is_none())
            .collect();
        let g = match waiting.is_empty() {
            true if self.grants.is_empty() => return,
            true => c.pick(self.grants.len()),
            false => waiting[c.pick(waiting.len())],
        };
        let approve = c.pick(2) == 0;
        let grant = self.grants[g].clone();
        let selector = match (&grant.user_code, c.pick(2)) {
            (Some(code), 0) => code.clone(),
            _ => grant.id.clone(),
        };
        let decided = self.server.decide_grant(&selector, approve, ADMIN_SOURCE);
        let Ok(decided) = decided else {
            return;
        };
        assert!(
            grant.pending && grant.decided.is_none() && !grant.gone,
            "decided twice, or a grant not waiting"
        );
        assert!(
            self.now() <= grant.interaction_expires,
            "decided after expiry"
        );
        self.grants[g].decided = Some(approve);
        if let FinishAction::Redirect { url } = decided.finish {
            let r = url
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("interact_ref="))
                .expect("the redirect carries the reference");
            self.grants[g].interact_ref = Some(r.to_owned());
        }
    }

    /// §6.1: rotation, with the same key or to agent 2's.
    fn rotate(&mut self, c: &mut Choices<'_>) {
        if self.tokens.is_empty() {
            return;
        }
        let t = c.pick(self.tokens.len());
        let token = self.tokens[t].clone();
        let grant = self.grants[token.grant].id.clone();
        let uri = format!("{PUBLIC}/gnap/token/{grant}");
        let new_key = (c.pick(2) == 0).then_some(2);
        let req = match new_key {
            None => self.signed(token.key, "POST", &uri, Some(&token.manage), None),
            Some(new) => {
                let body = json!({"key": {"proof": "httpsig", "jwk": public_jwk(new)}});
                let mut req = HttpRequest::new("POST", &uri)
                    .with_field("Content-Type", "application/json")
                    .with_field("Authorization", format!("GNAP {}", token.manage))
                    .with_body(serde_json::to_vec(&body).expect("JSON"));
                sign_gnap_rotation(&mut req, &keys()[token.key], &keys()[new], self.now())
                    .expect("sign");
                req
            }
        };
        let (status, reply) = self.send(Endpoint::Manage(grant), req);
        if status != 200 {
            return;
        }
        assert!(!token.dead, "a revoked or rotated token rotated");
        assert!(self.now() <= token.expires_at, "an expired token rotated");
        let answer = self.answer(&json!({"access_token": reply["access_token"]}));
        assert_eq!(answer.tokens.len(), 1);
        assert_eq!(
            answer.tokens[0].2, token.access,
            "rotation changed the access"
        );
        self.tokens[t].dead = true;
        let (value, manage, access) = answer.tokens[0].clone();
        self.others.push(manage.clone());
        self.tokens.push(Token {
            value,
            manage,
            access,
            key: new_key.unwrap_or(token.key),
            dead: false,
            expires_at: self.now() + 3_600,
            ..token
        });
    }

    /// §6.2: revocation.
    fn revoke(&mut self, c: &mut Choices<'_>) {
        if self.tokens.is_empty() {
            return;
        }
        let t = c.pick(self.tokens.len());
        let token = self.tokens[t].clone();
        let grant = self.grants[token.grant].id.clone();
        let uri = format!("{PUBLIC}/gnap/token/{grant}");
        let req = self.signed(token.key, "DELETE", &uri, Some(&token.manage), None);
        let (status, _) = self.send(Endpoint::Manage(grant), req);
        if status == 204 {
            self.tokens[t].dead = true;
        }
    }

    /// RFC 9767 §3.3: what the RS learns of a secret the client holds.
    fn introspect(&mut self, value: &str) -> Value {
        let body = json!({"access_token": value, "proof": "httpsig",
            "resource_server": {"key": {"proof": "httpsig", "jwk": public_jwk(RS)}}});
        let req = self.signed(
            RS,
            "POST",
            &format!("{PUBLIC}/gnap/introspect"),
            None,
            Some(&body),
        );
        let (status, reply) = self.send(Endpoint::Introspect, req);
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// Checks what introspection says of token `t` against the model.
    fn check_token(&mut self, t: usize) {
        let token = self.tokens[t].clone();
        let grant = self.grants[token.grant].clone();
        let now = self.now();
        let live = !token.dead && !grant.gone && now <= token.expires_at && now <= grant.expires_at;
        let reply = self.introspect(&token.value);
        if token.dead || grant.gone {
            assert_eq!(reply, json!({"active": false}), "a revoked token is active");
        }
        if live {
            assert_eq!(reply["active"], true, "a live token is inactive");
            assert_eq!(reply["access"], token.access);
            assert_eq!(
                reply["key"]["jwk"],
                public_jwk(token.key),
                "bound to another key"
            );
        }
        if now > token.expires_at || now > grant.expires_at {
            assert_eq!(reply["active"], false, "an expired token is active");
        }
    }

    fn introspect_any(&mut self, c: &mut Choices<'_>) {
        let n = self.tokens.len();
        let others = self.others.len() + self.grants.len();
        if n + others == 0 {
            return;
        }
        let i = c.pick(n + others);
        if i < n {
            return self.check_token(i);
        }
        // Continuation and management tokens, spent or not: never active.
        let i = i - n;
        let value = match self.others.get(i) {
            Some(v) => v.clone(),
            None => self.grants[i - self.others.len()].continuation.clone(),
        };
        let reply = self.introspect(&value);
        assert_eq!(
            reply,
            json!({"active": false}),
            "a non-access token is active"
        );
    }

    /// The last request again, signature and all: a replay.
    fn replay(&mut self) {
        let Some((endpoint, req)) = self.last.clone() else {
            return;
        };
        let revoke = matches!(endpoint, Endpoint::Manage(_)) && req.method == "DELETE";
        let (status, reply) = self.send(endpoint, req);
        // A revocation is idempotent (already revoked: 204 without a
        // check); anything else replayed is refused.
        assert!(
            status >= 400 || (revoke && status == 204),
            "a replayed request was served: {status} {reply}"
        );
    }

    fn run(&mut self, c: &mut Choices<'_>) {
        for _ in 0..MAX_OPS {
            if c.0.is_empty() {
                break;
            }
            match c.next() % 12 {
                0 => self.grant(c),
                op @ 1..=5 => self.continue_grant(c, op - 1),
                6 => self.decide(c),
                7 => self.rotate(c),
                8 => self.revoke(c),
                9 => self.introspect_any(c),
                10 => self.clock.advance(STEPS[c.pick(STEPS.len())]),
                _ => self.replay(),
            }
        }
        // Whatever happened, every token reads as the model says.
        for t in 0..self.tokens.len() {
            self.check_token(t);
        }
    }
}

/// The grant state machine.
///
/// Input: a sequence of operations (one byte picks each, the next bytes
/// its choices): grant requests by an allowlisted and an unknown agent,
/// with or without interaction; polls, finishes, modifications and
/// deletions with the current or a used continuation token, or signed by
/// another key; a person's decision; rotations (also to another key) and
/// revocations; introspection of any secret; clock steps; the last
/// request replayed. Checks, after every answer and at the end:
/// - no server error, and an error status always carries a GNAP error;
/// - no secret is handed out twice;
/// - a used continuation token, a deleted grant, another key's signature,
///   or an expired grant never continue a grant;
/// - no token without the allowlist rule or a person's approval, nor
///   beyond the rule; after interaction, tokens only with the reference
///   when there is a finish method; a denied grant never continues;
/// - a revoked, rotated-away, expired or finalized token never introspects
///   active, nor does a continuation or management token; a live one is
///   active with its access and its (possibly rotated) key;
/// - a replayed request is refused (a revocation stays idempotent).
pub fn grant_machine(data: &[u8]) {
    Machine::new().run(&mut Choices(data));
}
