//! The admin socket protocol: a command line in, one JSON answer out
//! (`admin::socket`), and the command carried out (`admin::Admin::run`),
//! over a socket pair, without a server.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zeroize::Zeroizing;

use super::NOW;
use crate::admin::socket::{MAX_LINE, connection};
use crate::admin::{Admin, Command, Interaction, parse_command};
use crate::authz::{AsConfig, Assignments, AuthServer, Endpoint, Policy};
use crate::clock::ManualClock;
use crate::gateway::forward::Gateway;
use crate::http::push::Pusher;
use crate::proto::httpsig::{GnapProfile, HttpRequest, SignOptions, sign_gnap};
use crate::store::Store;
use crate::store::memory::MemoryStore;
use crate::upstream::credential::Credential;
use crate::upstream::server::{Upstream, enterprise_set_id};
use crate::upstream::vault::MasterKey;

/// The upstream of the "config file": the admin may change neither it nor
/// its credential.
const CONFIGURED: &str = "cfg";
/// Most connections one input opens.
const MAX_CONNECTIONS: usize = 8;
/// The master key (base64url of 32 bytes of 0x05).
const MASTER_KEY: &str = "BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQU";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn configured() -> Upstream {
    Upstream::new(CONFIGURED, "http://127.0.0.1:9/mcp", Credential::None).expect("upstream")
}

/// One gateway for every input (its client is costly to build); each
/// input starts from the configured upstream alone.
fn gateway() -> Arc<Gateway> {
    static GATEWAY: OnceLock<Arc<Gateway>> = OnceLock::new();
    let gateway = GATEWAY.get_or_init(|| {
        let _guard = runtime().enter();
        Arc::new(
            Gateway::new(
                Vec::new(),
                Arc::new(MemoryStore::new()),
                Arc::new(ManualClock::at(NOW)),
                GnapProfile::default(),
                Duration::from_secs(1),
                None,
                &[],
            )
            .expect("a gateway"),
        )
    });
    for upstream in gateway.upstreams() {
        gateway.remove_upstream(&upstream.name);
    }
    gateway.put_upstream(configured());
    gateway.clone()
}

fn pusher() -> Arc<Pusher> {
    static PUSHER: OnceLock<Arc<Pusher>> = OnceLock::new();
    PUSHER
        .get_or_init(|| Arc::new(Pusher::new(false, &[]).expect("a pusher")))
        .clone()
}

/// Two grants waiting for a person, made by one agent: one with a
/// user code, one with a user code and a redirect finish. Their ids and
/// codes, for the input's `$0`, `$1`, `%0`, `%1`.
fn pending_grants(auth: &AuthServer) -> Vec<(String, String)> {
    let key = &super::grant_machine::keys()[1];
    let jwk = key
        .verifying_key()
        .public_jwk()
        .cloned()
        .expect("public JWK");
    let mut out = Vec::new();
    for interact in [
        json!({"start": ["user_code"]}),
        json!({"start": ["user_code"], "finish": {"method": "redirect",
            "uri": "https://client.example/cb", "nonce": "n1"}}),
    ] {
        let body = json!({"access_token": {"access": ["mcp:cfg"]},
            "client": {"key": {"proof": "httpsig", "jwk": jwk}}, "interact": interact});
        let mut req = HttpRequest::new("POST", "https://as.example/gnap")
            .with_field("Content-Type", "application/json")
            .with_body(serde_json::to_vec(&body).expect("JSON"));
        sign_gnap(&mut req, key, NOW, &SignOptions::default()).expect("sign");
        let reply = auth.handle(&Endpoint::Grant, &req);
        let answer: Value = serde_json::from_slice(&reply.body).expect("JSON");
        let id = answer["continue"]["uri"].as_str().expect("a pending grant");
        let id = id.rsplit('/').next().unwrap_or_default().to_owned();
        let code = answer["interact"]["user_code"].as_str().expect("a code");
        out.push((id, code.to_owned()));
    }
    out
}

/// The part of a credential spec that is the secret, when it looks like
/// one no answer could contain by chance: found once in the whole input.
fn secret_of(spec: &str, input: &[u8]) -> Option<String> {
    let (kind, rest) = spec.split_once(':')?;
    let secret = match kind {
        "bearer" => rest,
        "header" | "basic" => rest.split_once(':')?.1,
        "env" => rest.split_once('=')?.1,
        _ => return None,
    };
    let distinct = secret.len() >= 10
        && secret.bytes().filter(u8::is_ascii_digit).count() >= 2
        && input
            .windows(secret.len())
            .filter(|w| *w == secret.as_bytes())
            .count()
            == 1;
    distinct.then(|| secret.to_owned())
}

/// The commands that list what the admin socket holds.
const LISTINGS: [&str; 3] = ["upstream_list", "credentials_list", "grants_pending"];

/// Sends `data` on a fresh connection and returns the answer's bytes.
fn exchange(admin: &Arc<Admin>, data: Vec<u8>) -> Vec<u8> {
    runtime().block_on(async {
        let (client, server) = tokio::net::UnixStream::pair().expect("a socket pair");
        let served = tokio::spawn(connection(server, admin.clone()));
        let (mut read, mut write) = client.into_split();
        // Written while the answer is read: the server stops reading at
        // its limit, and a writer alone would wait for it forever.
        let writer = tokio::spawn(async move {
            let _ = write.write_all(&data).await;
            let _ = write.shutdown().await;
        });
        let mut answer = Vec::new();
        // Closed with input left unread (a line at the limit, then more),
        // the server's end resets the connection: after its answer, which
        // was queued first and is still read in full.
        match read.read_to_end(&mut answer).await {
            Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => panic!("the answer: {e}"),
            _ => {}
        }
        let _ = writer.await;
        let _ = served.await;
        answer
    })
}

/// The admin socket.
///
/// Input: up to eight connections' bytes, separated by NUL; in each, `$0`,
/// `$1` stand for the ids of two pending grants and `%0`, `%1` for their
/// user codes. A first byte with its high bit set pads the first
/// connection's first line with spaces to the line limit (less one, or
/// more). Checks:
/// - every connection gets exactly one line: a JSON object with `ok`
///   true and a `result`, or false and an `error` string; a line over the
///   limit is refused, one at the limit is read;
/// - what a command reports done is done (an upstream added or removed, a
///   credential set stored and sealed or removed, a grant decided once and
///   gone from the pending list), and the configured upstream and its
///   credential never change;
/// - no answer, listing or stored record shows a credential's secret.
pub fn admin_socket(data: &[u8]) {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(NOW));
    let auth = Arc::new(AuthServer::new(
        store.clone(),
        clock.clone(),
        Policy::default(),
        AsConfig::new("https://as.example"),
    ));
    let grants = pending_grants(&auth);
    let gateway = gateway();
    let master = Arc::new(MasterKey::from_text(MASTER_KEY).expect("master key"));
    let admin = Arc::new(
        Admin::new(
            gateway.clone(),
            store.clone(),
            Assignments::default(),
            Some(master.clone()),
            clock,
            BTreeSet::from([CONFIGURED.to_owned()]),
            BTreeSet::from([CONFIGURED.to_owned()]),
        )
        .with_interaction(Interaction {
            auth: auth.clone(),
            pusher: pusher(),
            runtime: runtime().handle().clone(),
            login: None,
            operator: None,
        }),
    );
    let (pad, data) = match data.split_first() {
        Some((first, rest)) if first & 0x80 != 0 => (Some(first & 1), rest),
        _ => (None, data),
    };
    // What gnapd shows before any input (the configured upstream's URL,
    // the pending grants): a secret spelled like it is not looked for.
    let shown_unasked: Vec<u8> = LISTINGS
        .iter()
        .flat_map(|op| exchange(&admin, format!("{{\"op\":\"{op}\"}}\n").into_bytes()))
        .collect();
    let mut secrets: Vec<String> = Vec::new();
    let mut answers: Vec<Vec<u8>> = Vec::new();
    let mut decided: Vec<String> = Vec::new();
    for (i, raw) in data.split(|b| *b == 0).take(MAX_CONNECTIONS).enumerate() {
        let mut bytes = raw.to_vec();
        for (n, (id, code)) in grants.iter().enumerate() {
            bytes = replace(&bytes, format!("${n}").as_bytes(), id.as_bytes());
            bytes = replace(&bytes, format!("%{n}").as_bytes(), code.as_bytes());
        }
        let first_end = bytes.iter().position(|b| *b == b'\n');
        let mut line = bytes[..first_end.map_or(bytes.len(), |e| e + 1)].to_vec();
        if let (0, Some(over)) = (i, pad) {
            // The line with its newline: MAX_LINE bytes is read, one more
            // is refused.
            let newline = line.last() == Some(&b'\n');
            let body = line.len() - usize::from(newline);
            let want = MAX_LINE - 1 + usize::from(over);
            line.splice(
                body..body,
                std::iter::repeat_n(b' ', want.saturating_sub(body)),
            );
            if !newline {
                line.push(b'\n');
            }
            bytes = [
                line.clone(),
                bytes[first_end.map_or(bytes.len(), |e| e + 1)..].to_vec(),
            ]
            .concat();
        }
        let too_long = line.len() > MAX_LINE;
        let command = parse_command(Zeroizing::new(line.clone())).ok();
        if let Some(Command::CredentialsAdd { credential, .. }) = &command {
            // Once in the whole input: an upstream's URL, which is shown,
            // may carry the same text.
            for spec in credential.expose().lines() {
                secrets.extend(secret_of(spec, data).filter(|secret| {
                    !shown_unasked
                        .windows(secret.len())
                        .any(|w| w == secret.as_bytes())
                }));
            }
        }
        let pending_before = auth.pending_grants().expect("pending").len();
        let answer = exchange(&admin, bytes);
        let text = std::str::from_utf8(&answer).expect("a UTF-8 answer");
        let text = text.strip_suffix('\n').expect("one line");
        assert!(!text.contains('\n'), "more than one line");
        let value: Value = serde_json::from_str(text).expect("a JSON answer");
        let ok = value["ok"].as_bool().expect("`ok`");
        if ok {
            assert!(value.get("result").is_some(), "{value}");
        } else {
            assert!(value["error"].is_string(), "{value}");
        }
        if too_long {
            assert!(!ok, "a line over the limit was read");
        }
        if pad.is_some() && i == 0 && !too_long && command.is_some() {
            assert!(ok || value["error"] != "the command is too long", "{value}");
        }
        if ok {
            let command = command.expect("an answered command parses");
            done(
                &command,
                &value["result"],
                &gateway,
                store.as_ref(),
                &master,
            );
            if let Command::GrantsApprove { .. } | Command::GrantsDeny { .. } = command {
                let grant = value["result"]["grant"]
                    .as_str()
                    .expect("the grant")
                    .to_owned();
                assert!(!decided.contains(&grant), "a grant decided twice");
                let pending = auth.pending_grants().expect("pending");
                assert!(pending.iter().all(|p| p.grant != grant), "still pending");
                assert_eq!(pending.len() + 1, pending_before);
                decided.push(grant);
            }
        }
        answers.push(answer);
    }
    let configured_now = gateway
        .upstream(CONFIGURED)
        .expect("the configured upstream");
    assert_eq!(
        configured_now.credential_set, None,
        "the configured credential changed"
    );
    for op in LISTINGS {
        answers.push(exchange(
            &admin,
            format!("{{\"op\":\"{op}\"}}\n").into_bytes(),
        ));
    }
    let records = serde_json::to_vec(&store.credential_sets().expect("sets")).expect("JSON");
    for secret in &secrets {
        for answer in answers.iter().chain([&records]) {
            assert!(
                !shows(answer, secret),
                "a secret is shown: {}",
                String::from_utf8_lossy(answer)
            );
        }
    }
}

/// Whether `answer` shows `secret`. A JSON answer can only show it in a
/// string (a key or a value): its numbers and punctuation are the record's
/// own, and a secret spelled like them (`:1790000000}]` beside a
/// `created_at` at the fixed clock) is not shown by them.
fn shows(answer: &[u8], secret: &str) -> bool {
    fn in_strings(value: &Value, secret: &str) -> bool {
        match value {
            Value::String(s) => s.contains(secret),
            Value::Array(items) => items.iter().any(|v| in_strings(v, secret)),
            Value::Object(members) => members
                .iter()
                .any(|(k, v)| k.contains(secret) || in_strings(v, secret)),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    match serde_json::from_slice::<Value>(answer) {
        Ok(value) => in_strings(&value, secret),
        Err(_) => answer.windows(secret.len()).any(|w| w == secret.as_bytes()),
    }
}

/// What an answered command reports done, checked against the gateway and
/// the store.
fn done(command: &Command, result: &Value, gateway: &Gateway, store: &dyn Store, key: &MasterKey) {
    match command {
        Command::UpstreamAdd { name, .. } => {
            assert!(
                gateway.upstream(name).is_some(),
                "added, not there: {result}"
            );
        }
        Command::UpstreamRemove { name } => {
            assert_ne!(name, CONFIGURED, "the configured upstream was removed");
            assert!(gateway.upstream(name).is_none(), "removed, still there");
            let set = store
                .credential_set(&enterprise_set_id(name))
                .expect("store");
            assert!(set.is_none(), "its credential set is still there");
        }
        Command::CredentialsAdd { upstream, .. } => {
            assert_ne!(
                upstream, CONFIGURED,
                "the configured credential was replaced"
            );
            let id = enterprise_set_id(upstream);
            let set = store.credential_set(&id).expect("store").expect("stored");
            assert!(
                key.open(&id, &set.sealed).is_ok(),
                "the sealed set does not open"
            );
            let target = gateway.upstream(upstream).expect("its upstream");
            assert_eq!(target.credential_set.as_deref(), Some(id.as_str()));
        }
        Command::CredentialsRemove { upstream } => {
            assert_ne!(
                upstream, CONFIGURED,
                "the configured credential was removed"
            );
            let set = store
                .credential_set(&enterprise_set_id(upstream))
                .expect("store");
            assert!(set.is_none(), "removed, still stored");
        }
        _ => {}
    }
}

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shows;

    #[test]
    fn a_secret_is_shown_by_any_string_and_never_by_the_records_numbers() {
        let secret = ":1790000000}]";
        let record = br#"[{"id":"enterprise:fs","created_at":1790000000}]"#;
        assert!(!shows(record, secret));
        let leaked = br#"[{"id":"enterprise:fs","note":"x:1790000000}]y"}]"#;
        assert!(shows(leaked, secret));
        assert!(shows(br#"{"abc123def456":1}"#, "abc123def456"));
        assert!(shows(b"not json abc123def456", "abc123def456"));
    }
}
