//! DPoP at the token endpoint over loopback (RFC 9449 §5): a proof binds
//! the tokens to its key, works once, and must come again, from the same
//! key, for every refresh; the gateway then takes the token only with a
//! fresh proof of that key.

use gnapd::proto::httpsig::Algorithm;
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::oauth::dpop;

use super::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fresh proof by `key` for `method uri` (and `token`, at a resource).
fn proof(key: &SigningKey, method: &str, uri: &str, token: Option<&str>) -> String {
    let jti = uuid::Uuid::new_v4().to_string();
    dpop::sign(key, method, uri, token, now(), &jti).unwrap()
}

/// A token request carrying `proof` in its `DPoP` field.
fn token_with_proof(server: &Server, fields: &[(&str, &str)], proof: &str) -> Answer {
    let mut request = HttpRequest::new("POST", format!("{}/oauth/token", server.base()));
    request.fields.append("dpop", proof.as_bytes().to_vec());
    request.fields.append(
        "content-type",
        b"application/x-www-form-urlencoded".to_vec(),
    );
    request.body = fields
        .iter()
        .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes();
    send(server.addr, &request)
}

fn redeem_fields<'a>(code: &'a str, resource: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("resource", resource),
    ]
}

/// A gateway call with `authorization` and, if given, a `DPoP` proof.
fn call(server: &Server, authorization: &str, proof: Option<&str>) -> Answer {
    let mut request = HttpRequest::new("POST", resource(server, "github"));
    request
        .fields
        .append("authorization", authorization.as_bytes().to_vec());
    if let Some(proof) = proof {
        request.fields.append("dpop", proof.as_bytes().to_vec());
    }
    request
        .fields
        .append("content-type", b"application/json".to_vec());
    request
        .fields
        .append("accept", b"application/json, text/event-stream".to_vec());
    request.body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.to_vec();
    send(server.addr, &request)
}

#[test]
fn a_dpop_proof_at_the_token_endpoint_binds_the_tokens_to_its_key_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--dev"]);
    let endpoint = format!("{}/oauth/token", server.base());
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let github = resource(&server, "github");

    let code = code_for(&server, "github");
    let first = proof(&key, "POST", &endpoint, None);
    let answer = token_with_proof(&server, &redeem_fields(&code, &github), &first);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["token_type"], "DPoP");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();

    // The same proof again: refused, and the refresh token is not spent.
    let refresh_fields = [
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT),
        ("refresh_token", refresh_token.as_str()),
    ];
    let replayed = token_with_proof(&server, &refresh_fields, &first);
    assert_eq!(replayed.status, 400);
    assert_eq!(oauth_error(&replayed), "invalid_dpop_proof");
    // A proof for another URI or method: refused.
    for (method, uri) in [("POST", github.as_str()), ("GET", endpoint.as_str())] {
        let wrong = token_with_proof(&server, &refresh_fields, &proof(&key, method, uri, None));
        assert_eq!(oauth_error(&wrong), "invalid_dpop_proof", "{method} {uri}");
    }
    // Another key, or no proof: the refresh token is bound to this key.
    let other = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let stolen = token_with_proof(
        &server,
        &refresh_fields,
        &proof(&other, "POST", &endpoint, None),
    );
    assert_eq!(stolen.status, 400, "{}", stolen.text());
    assert_eq!(refresh(&server, &refresh_token).status, 400);
    // The right key refreshes, and the new token is DPoP-bound too.
    let renewed = token_with_proof(
        &server,
        &refresh_fields,
        &proof(&key, "POST", &endpoint, None),
    );
    assert_eq!(renewed.status, 200, "{}", renewed.text());
    assert_eq!(renewed.json()["token_type"], "DPoP");
    let access = renewed.json()["access_token"].as_str().unwrap().to_owned();

    // At the gateway: as Bearer, or without a proof, or with another key's
    // proof, 401; with a fresh proof of the key, past the token check (the
    // upstream of this test is unreachable: 502, not 401).
    assert_eq!(call(&server, &format!("Bearer {access}"), None).status, 401);
    assert_eq!(call(&server, &format!("DPoP {access}"), None).status, 401);
    let foreign = proof(&other, "POST", &github, Some(&access));
    assert_eq!(
        call(&server, &format!("DPoP {access}"), Some(&foreign)).status,
        401
    );
    let good = proof(&key, "POST", &github, Some(&access));
    let passed = call(&server, &format!("DPoP {access}"), Some(&good));
    assert_ne!(passed.status, 401, "{}", passed.text());
    assert_ne!(passed.status, 403, "{}", passed.text());
}
