//! Interaction (RFC 9635 §2.5, §3.3, §4, §5.1) without sockets: the grant
//! state machine over the in-memory store and a pinned clock.

use std::sync::Arc;

use gnapd::authz::operator::Operator;
use gnapd::authz::{
    Authority, DecideError, Decider, Deciders, FinishAction, PageError, Policy, Presented, Reply,
    Selection,
};
use gnapd::proto::b64;
use gnapd::store::{InteractionStatus, Store as _};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::support::agent::{Agent, access_token, error_code};
use crate::support::core::{Core, GRANT, PUBLIC};

/// The in-process AS, with this file's helpers.
struct Harness(Core);

impl std::ops::Deref for Harness {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

fn harness(policy: Policy) -> Harness {
    Harness(Core::new(policy))
}

/// `--dev --require-interaction`.
fn interactive() -> Harness {
    harness(Policy {
        dev: true,
        require_interaction: true,
        ..Policy::default()
    })
}

impl Harness {
    fn grant(&self, agent: &Agent, interact: Option<Value>) -> (Reply, Value) {
        let mut body = agent.grant_body(json!(["mcp:github"]));
        if let Some(interact) = interact {
            body["interact"] = interact;
        }
        self.send(&agent.signed("POST", GRANT, None, Some(&body), self.now()))
    }

    /// Continues after the `wait`, with `interact_ref` if given; returns the
    /// reply and updates `cont` to the new continuation.
    fn continue_(
        &self,
        agent: &Agent,
        cont: &mut Value,
        interact_ref: Option<&str>,
    ) -> (Reply, Value) {
        self.clock.advance(cont["wait"].as_i64().unwrap_or(5));
        let uri = cont["uri"].as_str().unwrap().to_owned();
        let token = access_token(cont).to_owned();
        let body = interact_ref.map(|r| json!({"interact_ref": r}));
        let (reply, answer) =
            self.send(&agent.signed("POST", &uri, Some(&token), body.as_ref(), self.now()));
        if answer["continue"].is_object() {
            *cont = answer["continue"].clone();
        }
        (reply, answer)
    }
}

fn redirect_finish(nonce: &str) -> Value {
    json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "https://client.example/cb?s=1", "nonce": nonce}})
}

/// The query parameter `name` of `url`.
fn param<'a>(url: &'a str, name: &str) -> &'a str {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap()
}

/// §4.2.3, computed independently of gnapd's code.
fn expected_hash(client_nonce: &str, as_nonce: &str, interact_ref: &str) -> String {
    let base = format!("{client_nonce}\n{as_nonce}\n{interact_ref}\n{GRANT}");
    b64::encode_url(&sha2::Sha256::digest(base.as_bytes()))
}

#[test]
fn a_grant_needing_a_person_answers_interact_and_continue_and_no_token() {
    let h = interactive();
    let agent = Agent::new();
    let (reply, body) = h.grant(
        &agent,
        Some(json!({"start": ["redirect", "app", "user_code", "user_code_uri"], "finish": {"method": "push", "uri": "https://client.example/push", "nonce": "n0nce"}})),
    );
    assert_eq!(reply.status, 200, "{body}");
    assert!(body["access_token"].is_null());
    let interact = &body["interact"];
    let code = interact["user_code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert!(interact["finish"].as_str().unwrap().len() >= 20);
    assert_eq!(interact["expires_in"], 600);
    // §3.3.1: a unique, unguessable page; §3.3.4: the same code with the
    // short, stable user code page.
    let redirect = interact["redirect"].as_str().unwrap();
    let secret = redirect
        .strip_prefix(&format!("{PUBLIC}/gnap/interact/"))
        .unwrap()
        .split_once('/')
        .unwrap()
        .1;
    assert!(secret.len() >= 43, "{redirect}");
    assert_eq!(interact["user_code_uri"]["code"], code);
    assert_eq!(
        interact["user_code_uri"]["uri"],
        format!("{PUBLIC}/gnap/device")
    );
    // A mode this server does not support is not answered (§3.3).
    assert!(interact["app"].is_null());
    assert_eq!(body["continue"]["wait"], 5);
    assert!(body["instance_id"].is_string());
    let pending = h.server.pending_grants().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].display_name.as_deref(), Some("test agent"));
    assert_eq!(
        pending[0].user_code.as_deref().map(|c| c.replace('-', "")),
        Some(code.to_owned())
    );
    assert_eq!(pending[0].access, ["full access to MCP upstream `github`"]);
}

#[test]
fn a_grant_needing_a_person_without_a_supported_mode_is_invalid_interaction() {
    let h = interactive();
    let agent = Agent::new();
    for interact in [
        None,
        Some(json!({"start": ["app"]})),
        Some(json!({"start": ["app", "future_mode", {"mode": "redirect"}]})),
        Some(json!({"start": [], "finish": {"method": "carrier-pigeon", "nonce": "n"}})),
    ] {
        let (reply, body) = h.grant(&agent, interact.clone());
        assert_eq!(
            (reply.status, error_code(&body)),
            (400, "invalid_interaction"),
            "{interact:?}"
        );
    }
    assert!(h.server.pending_grants().unwrap().is_empty());
}

#[test]
fn without_a_rule_a_grant_waits_for_a_person_outside_dev_mode() {
    let h = harness(Policy::default());
    let agent = Agent::new();
    let (reply, body) = h.grant(&agent, Some(redirect_finish("abc")));
    assert_eq!(reply.status, 200, "{body}");
    assert!(body["interact"]["finish"].is_string());
}

#[test]
fn user_code_approval_then_polling_gets_the_tokens_once() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(json!({"start": ["user_code"]})));
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    // Before the decision: the pending answer, a new continuation, no token.
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(reply.status, 200, "{answer}");
    assert!(answer["access_token"].is_null() && answer["continue"].is_object());
    // Typed the way a person might: lowercase, with a separator.
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let decided = h.server.decide_grant(&typed, true, "admin").unwrap();
    assert_eq!(decided.finish, FinishAction::None);
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(reply.status, 200, "{answer}");
    assert_eq!(answer["access_token"]["access"], json!(["mcp:github"]));
    // The code decided once.
    assert!(matches!(
        h.server.decide_grant(&code, false, "admin"),
        Err(DecideError::NotFound)
    ));
    assert!(matches!(
        h.server.decide_grant(&decided.grant.0, false, "admin"),
        Err(DecideError::AlreadyDecided)
    ));
    // The grant is approved now: polling issues nothing more.
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(reply.status, 200);
    assert!(answer["access_token"].is_null());
}

#[test]
fn redirect_finish_hash_verifies_and_the_reference_gets_the_tokens() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(redirect_finish("VJLO6A4CATR0KRO")));
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    let decided = h.server.decide_grant(&code, true, "admin").unwrap();
    let FinishAction::Redirect { url } = decided.finish else {
        panic!("{:?}", decided.finish)
    };
    assert!(
        url.starts_with("https://client.example/cb?s=1&hash="),
        "{url}"
    );
    let interact_ref = param(&url, "interact_ref").to_owned();
    assert_eq!(
        param(&url, "hash"),
        expected_hash("VJLO6A4CATR0KRO", &as_nonce, &interact_ref)
    );
    // With a finish method, polling without the reference stays pending.
    let (_, answer) = h.continue_(&agent, &mut cont, None);
    assert!(answer["access_token"].is_null(), "{answer}");
    let (reply, answer) = h.continue_(&agent, &mut cont, Some("not-the-reference"));
    assert_eq!(
        (reply.status, error_code(&answer)),
        (400, "invalid_interaction")
    );
    let (reply, answer) = h.continue_(&agent, &mut cont, Some(&interact_ref));
    assert_eq!(reply.status, 200, "{answer}");
    assert!(answer["access_token"]["value"].is_string());
}

#[test]
fn a_replayed_interact_ref_is_too_many_attempts_and_finalizes_the_grant() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(redirect_finish("n1")));
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    let FinishAction::Redirect { url } =
        h.server.decide_grant(&code, true, "admin").unwrap().finish
    else {
        panic!()
    };
    let interact_ref = param(&url, "interact_ref").to_owned();
    let (_, answer) = h.continue_(&agent, &mut cont, Some(&interact_ref));
    assert!(answer["access_token"]["value"].is_string());
    let (reply, answer) = h.continue_(&agent, &mut cont, Some(&interact_ref));
    assert_eq!(
        (reply.status, error_code(&answer)),
        (403, "too_many_attempts")
    );
    assert!(answer["continue"].is_null());
    // Finalized: the continuation is gone.
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(
        (reply.status, error_code(&answer)),
        (401, "invalid_continuation")
    );
}

#[test]
fn a_denied_interaction_is_user_denied_on_continuation() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(redirect_finish("n2")));
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    let decided = h.server.decide_grant(&code, false, "admin").unwrap();
    assert!(!decided.approved);
    // §4.2: the finish method is still enacted on a denial.
    let FinishAction::Redirect { url } = decided.finish else {
        panic!()
    };
    let (reply, answer) = h.continue_(&agent, &mut cont, Some(param(&url, "interact_ref")));
    assert_eq!((reply.status, error_code(&answer)), (403, "user_denied"));
    assert!(answer["access_token"].is_null());
}

#[test]
fn an_expired_interaction_is_invalid_interaction_and_cannot_be_decided() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(json!({"start": ["user_code"]})));
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let mut cont = body["continue"].clone();
    h.clock.advance(601);
    assert!(matches!(
        h.server.decide_grant(&code, true, "admin"),
        Err(DecideError::Expired)
    ));
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(
        (reply.status, error_code(&answer)),
        (400, "invalid_interaction")
    );
    assert!(h.server.pending_grants().unwrap().is_empty());
}

#[test]
fn wrong_user_codes_are_limited_per_source() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(&agent, Some(json!({"start": ["user_code"]})));
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    for _ in 0..10 {
        assert!(matches!(
            h.server.decide_grant("2222-2222", true, "10.0.0.9"),
            Err(DecideError::NotFound)
        ));
    }
    // The source is cut off, even with the right code; another is not.
    assert!(matches!(
        h.server.decide_grant(&code, true, "10.0.0.9"),
        Err(DecideError::TooManyAttempts)
    ));
    assert!(h.server.decide_grant(&code, true, "10.0.0.10").is_ok());
}

#[test]
fn a_push_to_a_literal_internal_address_is_refused_without_the_allowance() {
    let h = interactive();
    let agent = Agent::new();
    let (reply, body) = h.grant(
        &agent,
        Some(json!({"start": [], "finish": {"method": "push", "uri": "http://127.0.0.1:9/push", "nonce": "n"}})),
    );
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_request"));
}

#[test]
fn an_unsupported_hash_method_is_invalid_request() {
    let h = interactive();
    let agent = Agent::new();
    let (reply, body) = h.grant(
        &agent,
        Some(json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "https://c.example/cb", "nonce": "n", "hash_method": "sha-256-32"}})),
    );
    assert_eq!((reply.status, error_code(&body)), (400, "invalid_request"));
}

#[test]
fn the_sha3_512_hash_method_is_used_for_the_finish() {
    let h = interactive();
    let agent = Agent::new();
    let (_, body) = h.grant(
        &agent,
        Some(json!({"start": ["user_code"], "finish": {"method": "redirect", "uri": "https://c.example/cb", "nonce": "cn", "hash_method": "sha3-512"}})),
    );
    let as_nonce = body["interact"]["finish"].as_str().unwrap().to_owned();
    let code = body["interact"]["user_code"].as_str().unwrap().to_owned();
    let FinishAction::Redirect { url } =
        h.server.decide_grant(&code, true, "admin").unwrap().finish
    else {
        panic!()
    };
    let base = format!("cn\n{as_nonce}\n{}\n{GRANT}", param(&url, "interact_ref"));
    let expected = b64::encode_url(&sha3::Sha3_512::digest(base.as_bytes()));
    assert_eq!(param(&url, "hash"), expected);
}

// --- The pages' side (§4.1): links, codes, form tokens, narrowing ---------

/// A grant request for `access` with the `redirect` and `user_code_uri`
/// start modes; returns the response body.
fn page_grant(h: &Harness, agent: &Agent, access: Value, finish: Option<Value>) -> Value {
    let mut body = agent.grant_body(access);
    body["interact"] = json!({"start": ["redirect", "user_code_uri"]});
    if let Some(finish) = finish {
        body["interact"]["finish"] = finish;
    }
    let (reply, answer) = h.send(&agent.signed("POST", GRANT, None, Some(&body), h.now()));
    assert_eq!(reply.status, 200, "{answer}");
    answer
}

/// (grant id, secret) of an interaction page link.
fn link_parts(body: &Value) -> (String, String) {
    let link = body["interact"]["redirect"].as_str().unwrap();
    let (grant, secret) = link
        .strip_prefix(&format!("{PUBLIC}/gnap/interact/"))
        .unwrap()
        .split_once('/')
        .unwrap();
    (grant.to_owned(), secret.to_owned())
}

#[test]
fn a_page_link_opens_its_grant_and_nothing_else() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    assert_eq!(view.grant, grant);
    assert_eq!(view.display_name.as_deref(), Some("test agent"));
    assert_eq!(
        view.thumbprint,
        agent.key.verifying_key().thumbprint().as_str()
    );
    assert_eq!(view.rights.len(), 1);
    assert_eq!(view.rights[0].text, "full access to MCP upstream “github”");
    assert_eq!(view.expires_in_minutes, 10);
    let other = page_grant(&h, &Agent::new(), json!(["mcp:github"]), None);
    let (other_grant, other_secret) = link_parts(&other);
    for (g, s) in [
        (grant.as_str(), other_secret.as_str()),
        (other_grant.as_str(), secret.as_str()),
        (grant.as_str(), "guess"),
        ("not-a-grant", secret.as_str()),
    ] {
        assert!(
            matches!(h.server.consent_by_link(g, s), Err(PageError::NotFound)),
            "{g} {s}"
        );
    }
}

#[test]
fn a_page_decision_without_the_right_form_token_is_refused_and_decides_nothing() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    let all = Selection {
        rights: ["0.0".to_owned()].into(),
        tools: Default::default(),
    };
    let other = page_grant(&h, &Agent::new(), json!(["mcp:github"]), None);
    let (other_grant, other_secret) = link_parts(&other);
    let other_token = h
        .server
        .consent_by_link(&other_grant, &other_secret)
        .unwrap()
        .csrf;
    for token in [None, Some(""), Some("forged"), Some(other_token.as_str())] {
        assert!(
            matches!(
                h.server.decide_by_page(
                    &grant,
                    token,
                    Presented::default(),
                    true,
                    &all,
                    "10.0.0.1"
                ),
                Err(PageError::Forbidden)
            ),
            "{token:?}"
        );
    }
    assert_eq!(h.server.pending_grants().unwrap().len(), 2);
    let decided = h
        .server
        .decide_by_page(
            &grant,
            Some(&view.csrf),
            Presented::default(),
            true,
            &all,
            "10.0.0.1",
        )
        .unwrap();
    assert!(decided.approved);
    // Decided once: the page and the form say so.
    assert!(matches!(
        h.server.consent_by_link(&grant, &secret),
        Err(PageError::AlreadyDecided)
    ));
    assert!(matches!(
        h.server.decide_by_page(
            &grant,
            Some(&view.csrf),
            Presented::default(),
            false,
            &all,
            "10.0.0.1"
        ),
        Err(PageError::AlreadyDecided)
    ));
}

#[test]
fn a_narrowed_page_approval_is_the_access_the_tokens_carry() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(
        &h,
        &agent,
        json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue", "delete_repo"]}, "mcp:slack"]),
        None,
    );
    let mut cont = body["continue"].clone();
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    let fields: Vec<_> = view.rights[0]
        .tools
        .iter()
        .map(|t| t.field.as_str())
        .collect();
    assert_eq!(fields, ["0.0.0", "0.0.1", "0.0.2"]);
    assert_eq!(view.rights[1].field, "0.1");
    // Untick `delete_repo` and the whole `mcp:slack` right.
    let selection = Selection {
        rights: Default::default(),
        tools: ["0.0.0".to_owned(), "0.0.1".to_owned()].into(),
    };
    h.server
        .decide_by_page(
            &grant,
            Some(&view.csrf),
            Presented::default(),
            true,
            &selection,
            "10.0.0.1",
        )
        .unwrap();
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(reply.status, 200, "{answer}");
    assert_eq!(
        answer["access_token"]["access"],
        json!([{"type": "mcp", "identifier": "github", "actions": ["tools/call"], "tools": ["search", "create_issue"]}])
    );
}

#[test]
fn a_page_approval_with_nothing_ticked_decides_nothing() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    assert!(matches!(
        h.server.decide_by_page(
            &grant,
            Some(&view.csrf),
            Presented::default(),
            true,
            &Selection::default(),
            "s"
        ),
        Err(PageError::NothingSelected)
    ));
    assert_eq!(h.server.pending_grants().unwrap().len(), 1);
}

#[test]
fn the_user_code_page_takes_codes_never_grant_ids() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let (grant, _) = link_parts(&body);
    let code = body["interact"]["user_code_uri"]["code"].as_str().unwrap();
    assert!(matches!(
        h.server.consent_by_code(&grant, "10.0.0.1"),
        Err(PageError::BadCode)
    ));
    let typed = format!("{}-{}", &code[..4], &code[4..]).to_lowercase();
    let view = h.server.consent_by_code(&typed, "10.0.0.1").unwrap();
    assert_eq!(view.grant, grant);
    // The same form token as by the link: it is bound to the grant.
    assert_eq!(
        view.csrf,
        h.server
            .consent_by_link(&grant, &link_parts(&body).1)
            .unwrap()
            .csrf
    );
}

#[test]
fn the_page_of_an_expired_interaction_says_expired() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let (grant, secret) = link_parts(&body);
    let csrf = h.server.consent_by_link(&grant, &secret).unwrap().csrf;
    h.clock.advance(601);
    assert!(matches!(
        h.server.consent_by_link(&grant, &secret),
        Err(PageError::Expired)
    ));
    let all = Selection {
        rights: ["0.0".to_owned()].into(),
        tools: Default::default(),
    };
    assert!(matches!(
        h.server
            .decide_by_page(&grant, Some(&csrf), Presented::default(), true, &all, "s"),
        Err(PageError::Expired)
    ));
}

#[test]
fn a_page_with_a_redirect_finish_allows_the_clients_origin_as_form_target() {
    let h = interactive();
    let agent = Agent::new();
    let body = page_grant(
        &h,
        &agent,
        json!(["mcp:github"]),
        Some(
            json!({"method": "redirect", "uri": "https://client.example:8443/cb?x=1", "nonce": "n"}),
        ),
    );
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    assert_eq!(
        view.finish_origin.as_deref(),
        Some("https://client.example:8443")
    );
}

/// No rule approves anything and a person must decide (outside `--dev`),
/// with the operator's sign-in when `operator` is given.
fn production(operator: Option<Arc<Operator>>) -> Harness {
    Harness(Core::with_deciders(
        Policy::default(),
        Deciders {
            login: None,
            operator,
        },
    ))
}

#[test]
fn outside_dev_holding_the_link_and_its_form_token_decides_nothing() {
    let all = Selection {
        rights: ["0.0".to_owned()].into(),
        tools: Default::default(),
    };
    for (operator, refusal) in [
        (Some(Arc::new(Operator::default())), "sign in"),
        (None, "admin only"),
    ] {
        let h = production(operator.clone());
        let agent = Agent::new();
        let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
        let mut cont = body["continue"].clone();
        let (grant, secret) = link_parts(&body);
        // The agent opens its own page: it sees the request, not a way to
        // approve it.
        let view = h.server.consent_by_link(&grant, &secret).unwrap();
        assert!(!view.can_decide() && !view.dev_banner, "{refusal}");
        assert_eq!(view.offers_operator(), operator.is_some());
        for approve in [true, false] {
            let decided = h.server.decide_by_page(
                &grant,
                Some(&view.csrf),
                Presented {
                    login: Some("forged"),
                    operator: Some("forged"),
                },
                approve,
                &all,
                "10.0.0.1",
            );
            match refusal {
                "sign in" => assert!(matches!(decided, Err(PageError::SignInRequired))),
                _ => assert!(matches!(decided, Err(PageError::AdminOnly))),
            }
        }
        assert_eq!(h.server.pending_grants().unwrap().len(), 1, "{refusal}");
        let (reply, answer) = h.continue_(&agent, &mut cont, None);
        assert_eq!(reply.status, 200, "{answer}");
        assert!(answer["access_token"].is_null(), "{refusal}: {answer}");
    }
}

#[test]
fn an_operator_signed_in_with_the_one_time_link_decides_and_is_recorded_as_the_decider() {
    let operator = Arc::new(Operator::default());
    let h = production(Some(operator.clone()));
    let agent = Agent::new();
    let body = page_grant(&h, &agent, json!(["mcp:github"]), None);
    let mut cont = body["continue"].clone();
    let (grant, secret) = link_parts(&body);
    let link = operator.new_link(h.now()).unwrap();
    let session = operator.redeem(&link, h.now()).unwrap();
    let presented = Presented {
        login: None,
        operator: Some(&session),
    };
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    assert_eq!(
        h.server.authority(&grant, presented, h.now()),
        Authority::Decides(Decider::Operator)
    );
    let all = Selection {
        rights: ["0.0".to_owned()].into(),
        tools: Default::default(),
    };
    let decided = h
        .server
        .decide_by_page(&grant, Some(&view.csrf), presented, true, &all, "10.0.0.1")
        .unwrap();
    assert!(decided.approved);
    let record = h
        .store
        .interaction(&gnapd::store::GrantId(grant.clone()))
        .unwrap()
        .unwrap();
    assert!(
        matches!(&record.status, InteractionStatus::Approved { by: Some(by), .. } if by == "operator"),
        "{:?}",
        record.status
    );
    let (reply, answer) = h.continue_(&agent, &mut cont, None);
    assert_eq!(reply.status, 200, "{answer}");
    assert!(answer["access_token"]["value"].is_string(), "{answer}");
    // Signed out: the same browser decides nothing more.
    operator.revoke_all();
    assert!(matches!(
        h.server.decider(&grant, presented, h.now()),
        Err(PageError::SignInRequired)
    ));
}

#[test]
fn dev_mode_pages_decide_for_the_link_holder_and_say_so() {
    let h = interactive();
    let body = page_grant(&h, &Agent::new(), json!(["mcp:github"]), None);
    let (grant, secret) = link_parts(&body);
    let view = h.server.consent_by_link(&grant, &secret).unwrap();
    assert!(view.dev_banner && view.can_decide());
    assert_eq!(view.authority, Authority::Decides(Decider::LinkHolder));
}
