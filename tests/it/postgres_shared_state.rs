//! What a person or a single-use value leaves on one node must be seen by
//! every node sharing one PostgreSQL schema (issue 20: a load balancer
//! without session affinity), on real `gnapd serve` processes outside dev
//! mode: an assertion one node accepted is refused by another; the
//! operator's link made on one node signs in on another, the session
//! works on a third, and a consent page one node rendered is decided by a
//! POST to another.

use std::path::Path;

use gnapd::proto::httpsig::Algorithm;
use serde_json::json;

use crate::assertion_approval::{AUD, ISS, Idp, fresh_claims, grant_with, idp};
use crate::interaction_pages::{
    consent_form, continue_, get_with_cookie, html, post_form_with_cookie,
};
use crate::support::agent::Agent;
use crate::support::pg_nodes::Nodes;
use crate::support::run::gnapd_cli;
use crate::who_decides::{operator_cookie, pending, sign_in};

/// Nodes trusting `idp`, whose rule approves `mcp:github` for alice.
fn trusting(dir: &Path, idp: &Idp) -> Nodes {
    let jwks = dir.join("idp-jwks.json");
    let keys = json!({"keys": [idp.key.verifying_key().public_jwk().unwrap()]});
    std::fs::write(&jwks, serde_json::to_vec(&keys).unwrap()).unwrap();
    let config = format!(
        "poll_wait = 0\n\n[[issuer]]\nissuer = \"{ISS}\"\naudience = \"{AUD}\"\njwks_file = \"{}\"\n\n[[assertion_rule]]\nissuer = \"{ISS}\"\nsubjects = [\"alice@example.com\"]\naccess = [\"mcp:github\"]\n",
        jwks.display()
    );
    Nodes::new(dir, &config, &[])
}

#[test]
fn an_assertion_one_postgres_node_accepted_is_refused_by_another() {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let nodes = trusting(dir.path(), &idp);
    let (a, b) = (nodes.node("a"), nodes.node("b"));
    let agent = Agent::new();
    // Without `jti` (remembered by its hash) and with one.
    let mut with_jti = fresh_claims();
    with_jti["jti"] = json!(uuid::Uuid::new_v4().to_string());
    for claims in [fresh_claims(), with_jti] {
        let token = idp.id_token("ES256", claims);
        let first = grant_with(&a, &agent, &token);
        assert_eq!(first.status, 200, "{}", first.text());
        for node in [&b, &a] {
            let again = grant_with(node, &agent, &token);
            assert_eq!(
                (again.status, again.json()["error"]["code"].as_str()),
                (400, Some("unknown_user")),
                "{}",
                again.text()
            );
        }
    }
    // A node started after the assertion was issued still accepts a fresh
    // one: the shared memory of used ones needs no "issued before start".
    let mut claims = fresh_claims();
    claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let token = idp.id_token("ES256", claims);
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let c = nodes.node("c");
    let answer = grant_with(&c, &agent, &token);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(grant_with(&a, &agent, &token).status, 400);
}

#[test]
fn an_operator_link_made_on_one_postgres_node_signs_in_on_another_and_a_page_from_a_third_is_decided_on_the_first()
 {
    let dir = tempfile::tempdir().unwrap();
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let nodes = trusting(dir.path(), &idp);
    let (a, b, c) = (nodes.node("a"), nodes.node("b"), nodes.node("c"));

    // A fresh link made through A's admin socket, redeemed on B.
    let (ok, link) = gnapd_cli(&nodes.data("a"), &["admin", "login-link"]);
    assert!(ok, "{link}");
    let signed_in = sign_in(&b, link.trim());
    assert_eq!(signed_in.status, 200, "{}", signed_in.text());
    let cookie = operator_cookie(&signed_in);
    // Single use across nodes: C refuses it, as A would.
    assert_eq!(sign_in(&c, link.trim()).status, 403);

    // A grant made on A; its page rendered by C for the signed-in operator.
    let agent = Agent::new();
    let body = pending(&a, &agent);
    let mut cont = body["continue"].clone();
    let page_link = body["interact"]["redirect"].as_str().unwrap();
    let page = get_with_cookie(&c, page_link, Some(&cookie));
    assert_eq!(page.status, 200, "{}", page.text());
    let text = html(&page);
    assert!(text.contains("value=\"approve\""), "signed in on C: {text}");

    // Approved by a POST to A: C's form token holds there.
    let form = consent_form(&c, &text);
    let mut fields = vec![("csrf", form.csrf.as_str()), ("decision", "approve")];
    for (name, value) in &form.boxes {
        fields.push((name.as_str(), value.as_str()));
    }
    let action = form.action.replace(&c.base(), &a.base());
    let approved = post_form_with_cookie(&a, &action, &fields, Some(&cookie));
    assert_eq!(approved.status, 200, "{}", approved.text());
    let answer = continue_(&b, &agent, &mut cont, None);
    assert!(answer["access_token"]["value"].is_string(), "{answer}");

    // `gnapd admin logout` on C signs the operator out on every node.
    let (ok, out) = gnapd_cli(&nodes.data("c"), &["admin", "logout"]);
    assert!(ok && out.contains("signed out 1"), "{out}");
    let body = pending(&b, &agent);
    let page_link = body["interact"]["redirect"].as_str().unwrap();
    let text = html(&get_with_cookie(&a, page_link, Some(&cookie)));
    assert!(!text.contains("value=\"approve\""), "signed out: {text}");
}
