//! The compact form gives back every entry exactly, is small for the
//! entries gnapd writes, and refuses hostile bytes without panicking.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::proto::gnap::{ProofKind, parse_grant_request};
use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::SigningKey;
use crate::store::{
    Continuation, GrantId, GrantState, KeyBinding, OAuthAuthorization, OAuthToken, located_value,
};

const NOW: i64 = 1_790_000_000;
const GRANT_ID: &str = "0190a0b0-c0d0-7e0f-8a1b-2c3d4e5f6a7b";

/// Decodes `bytes` and checks it is `entry`, down to the JSON bytes of
/// every part.
fn assert_reads_back(entry: &GrantEntry, bytes: &[u8]) {
    let read = decode(bytes).unwrap();
    assert_eq!(&read, entry);
    let json = |e: &GrantEntry| serde_json::to_vec(e).unwrap();
    assert_eq!(json(&read), json(entry), "the same JSON bytes");
    for ((_, a), (_, b)) in read.tokens.iter().zip(&entry.tokens) {
        assert_eq!(
            serde_json::to_vec(a).unwrap(),
            serde_json::to_vec(b).unwrap()
        );
    }
    assert_eq!(
        serde_json::to_vec(&read.grant.request).unwrap(),
        serde_json::to_vec(&entry.grant.request).unwrap()
    );
    let due = expiry(bytes).unwrap();
    assert_eq!(
        (due.expires_at, due.tokens_expire),
        (entry.expires_at, entry.tokens_expire)
    );
}

fn round_trip(entry: &GrantEntry) -> Vec<u8> {
    let bytes = encode_entry(entry).unwrap();
    assert_reads_back(entry, &bytes);
    bytes
}

/// A client's Ed25519 key as gnapd binds it: the JWK it stores and the
/// RFC 7638 thumbprint.
fn ed25519_binding() -> KeyBinding {
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let verifying = key.verifying_key();
    KeyBinding {
        thumbprint: verifying.thumbprint().as_str().to_owned(),
        jwk: verifying.public_jwk().unwrap().clone(),
        method: ProofKind::HttpSig,
    }
}

fn request(body: Value) -> crate::proto::gnap::GrantRequest {
    parse_grant_request(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .stored()
}

fn minted(id: &GrantId, n: u8) -> TokenHash {
    TokenHash::of(&located_value(&id.locator().unwrap(), &[n; 32]))
}

/// The entry the AS writes for an immediately approved first grant
/// (`authz/grant.rs`): a key by value gets an instance named after the
/// grant; one token with the asked rights, mapped to the upstream's
/// enterprise-held credential set; a continuation.
fn first_grant() -> GrantEntry {
    let client = ed25519_binding();
    let request = request(json!({
        "access_token": {"access": [{"type": "mcp", "identifier": "github",
            "actions": ["tools/call"], "tools": ["create_issue"]}]},
        "client": {"key": {"proof": "httpsig", "jwk": client.jwk},
            "display": {"name": "scale bench agent"}},
    }));
    let id = GrantId(GRANT_ID.into());
    let access = request.access_token.as_ref().unwrap().as_slice()[0]
        .access
        .clone();
    let expires_at = NOW + 30 * 24 * 3600;
    let token = TokenRecord {
        v: RECORD_VERSION,
        grant: id.clone(),
        label: None,
        access,
        key: client.clone(),
        manage: minted(&id, 2),
        bearer: false,
        issued_at: NOW,
        expires_at: NOW + 3600,
        credential_sets: vec![("github".into(), "enterprise:github".into())],
        oauth: None,
    };
    let grant = GrantRecord {
        v: RECORD_VERSION,
        id: id.clone(),
        state: GrantState::Approved,
        client: client.clone(),
        instance_id: Some(id.0.clone()),
        request,
        tokens: vec![minted(&id, 1)],
        continuation: Some(Continuation {
            token: minted(&id, 3),
            wait: 5,
            issued_at: NOW,
        }),
        created_at: NOW,
        expires_at,
        oauth: None,
    };
    let mut entry = GrantEntry::new(grant, vec![(minted(&id, 1), token)]);
    entry.instance = Some(InstanceRecord {
        v: RECORD_VERSION,
        key: client,
        created_at: NOW,
        expires_at: Some(expires_at),
    });
    entry
}

#[test]
fn the_first_grant_record_the_as_writes_reads_back_exactly() {
    let entry = first_grant();
    let bytes = encode(&entry.grant, &entry.tokens, entry.instance.as_ref()).unwrap();
    assert_eq!(bytes[0], TAG);
    assert_eq!(bytes, encode_entry(&entry).unwrap());
    assert_reads_back(&entry, &bytes);
}

#[test]
fn a_typical_first_grant_record_is_at_most_210_bytes_against_1600_as_json() {
    let entry = first_grant();
    let compact = encode_entry(&entry).unwrap().len();
    let json = crate::store::codec::encode(&entry).unwrap().len();
    println!("first grant record: {json} bytes as JSON, {compact} compact");
    assert!(compact <= 210, "{compact} bytes");
    assert!(json >= 1_500, "the JSON this replaces: {json} bytes");
}

#[test]
fn a_record_of_another_version_is_refused_on_write_and_an_unknown_format_on_read() {
    let mut entry = first_grant();
    entry.tokens[0].1.v = 2;
    assert_eq!(encode_entry(&entry), Err(StoreError::Version(2)));
    let mut entry = first_grant();
    entry.instance.as_mut().unwrap().v = 3;
    assert_eq!(
        encode(&entry.grant, &entry.tokens, entry.instance.as_ref()),
        Err(StoreError::Version(3))
    );
    let mut bytes = encode_entry(&first_grant()).unwrap();
    bytes[1] = 9;
    assert_eq!(decode(&bytes), Err(StoreError::Version(9)));
    assert_eq!(expiry(&bytes), Err(StoreError::Version(9)));
}

/// A pending grant with an interaction, and what a person's approval and a
/// rotation later make of it: no continuation at creation time, a token
/// key that is not the client's, labels, bearer, several tokens, revoked
/// hashes in the grant's list.
#[test]
fn interaction_rotated_keys_labels_bearer_and_several_tokens_read_back() {
    let mut entry = first_grant();
    let grant = &mut entry.grant;
    grant.state = GrantState::Pending;
    grant.request = request(json!({
        "access_token": [
            {"label": "read", "access": ["mcp:github", {"type": "mcp", "identifier": "jira"}]},
            {"label": "write", "access": [{"type": "photo-api", "actions": ["write"],
                "locations": ["https://x.example/"], "datatypes": ["jpeg"]}], "flags": ["bearer"]},
        ],
        "client": {"key": {"proof": {"method": "httpsig", "alg": "ed25519",
            "content-digest-alg": "sha-256"}, "jwk": grant.client.jwk}, "class_id": "cls"},
        "interact": {"start": ["redirect", "user_code"],
            "finish": {"method": "redirect", "uri": "https://client.example/cb", "nonce": "n0nce"}},
        "subject": {"sub_id_formats": ["opaque", "iss_sub"]},
    }));
    grant.continuation.as_mut().unwrap().issued_at = NOW + 77;
    let asked = grant
        .request
        .access_token
        .as_ref()
        .unwrap()
        .as_slice()
        .to_vec();
    let rotated = ed25519_binding();
    let mut second = entry.tokens[0].1.clone();
    second.label = Some("write".into());
    second.access = asked[1].access.clone();
    second.bearer = true;
    second.key = rotated;
    second.issued_at = NOW + 100;
    second.credential_sets = vec![("jira".into(), "person-set-1".into())];
    entry.tokens[0].1.label = Some("read".into());
    entry.tokens[0].1.access = asked[0].access.clone();
    let id = entry.grant.id.clone();
    entry.tokens.push((minted(&id, 9), second));
    entry.grant.tokens = vec![minted(&id, 8), minted(&id, 9), minted(&id, 1)];
    entry.grant.instance_id = Some("another-instance".into());
    entry.instance = None;
    entry.add_tokens(&[]);
    round_trip(&entry);
}

#[test]
fn an_oauth_grant_and_its_tokens_read_back() {
    let mut entry = first_grant();
    entry.grant.oauth = Some(OAuthAuthorization {
        client_id: "client-1".into(),
        redirect_uri: "http://127.0.0.1:4242/callback".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        resource: "https://gw.example/mcp/github".into(),
        state: Some("xyz".into()),
        dpop_jkt: None,
        client_name: Some("Claude".into()),
        client_source: None,
        redeemed: Some(TokenHash([7; 32])),
    });
    entry.tokens[0].1.oauth = Some(OAuthToken {
        client_id: "client-1".into(),
        audience: "https://gw.example/mcp/github".into(),
        dpop: true,
    });
    entry.tokens[0].1.key = KeyBinding {
        thumbprint: "not base64url!".into(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "k1"}),
        method: ProofKind::Jws,
    };
    entry.grant.continuation = None;
    entry.add_tokens(&[]);
    assert_eq!(
        entry.tokens_expire, None,
        "an OAuth token goes with its grant"
    );
    round_trip(&entry);
}

#[test]
fn a_grant_whose_id_is_not_a_uuid_and_whose_hashes_carry_no_locator_reads_back() {
    let mut entry = first_grant();
    let uppercase = GrantId(GRANT_ID.to_uppercase());
    for id in [GrantId("g".into()), uppercase] {
        entry.grant.id = id.clone();
        entry.tokens[0].1.grant = id;
        entry.tokens[0].0 = TokenHash([0xab; 32]);
        entry.tokens[0].1.manage = TokenHash::of("plain value");
        entry.grant.tokens = vec![TokenHash([0xab; 32])];
        entry.grant.continuation.as_mut().unwrap().token = TokenHash([5; 32]);
        round_trip(&entry);
    }
    // A token of another grant, under a UUID grant: its hashes stay whole.
    let mut entry = first_grant();
    entry.tokens[0].1.grant = GrantId("elsewhere".into());
    entry.tokens[0].0 = TokenHash([3; 32]);
    round_trip(&entry);
}

#[test]
fn jwks_in_unusual_shapes_read_back_member_for_member() {
    let mut entry = first_grant();
    let x = entry.grant.client.jwk["x"].clone();
    for jwk in [
        // Members in another order: the same JWK, other bytes.
        json!({"x": x, "kty": "OKP", "crv": "Ed25519"}),
        json!({"crv": "Ed25519", "kty": "OKP", "x": x, "kid": "key-1", "alg": "ed25519"}),
        json!({"crv": "Ed25519", "kty": "OKP", "x": "AAAA"}),
        Value::Null,
        json!({"n": 1.5, "e": -3, "big": u64::MAX, "t": [true, false, null]}),
    ] {
        entry.grant.client.jwk = jwk.clone();
        entry.instance.as_mut().unwrap().key.jwk = jwk;
        round_trip(&entry);
    }
}

#[test]
fn extreme_times_read_back() {
    let mut entry = first_grant();
    for (a, b) in [(i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (0, -1)] {
        entry.grant.created_at = a;
        entry.grant.expires_at = b;
        entry.tokens[0].1.issued_at = b;
        entry.tokens[0].1.expires_at = a;
        entry.instance.as_mut().unwrap().created_at = b;
        entry.instance.as_mut().unwrap().expires_at = Some(a);
        entry.add_tokens(&[]);
        round_trip(&entry);
        // An entry whose expiries are out of step with its records (as
        // `SledStore::check` reports) keeps them as they are.
        entry.expires_at = 12;
        entry.tokens_expire = Some(a);
        round_trip(&entry);
    }
}

#[test]
fn every_strict_prefix_of_a_record_is_an_undecodable_record() {
    let bytes = encode_entry(&first_grant()).unwrap();
    for len in 0..bytes.len() {
        match decode(&bytes[..len]) {
            Err(StoreError::Backend(why)) => {
                assert!(why.starts_with("undecodable grant record: "), "{why}");
            }
            other => panic!("a record cut at {len} bytes gave {other:?}"),
        }
    }
    assert!(expiry(&bytes[..2]).is_err());
}

#[test]
fn a_length_beyond_the_record_is_refused_without_allocating_it() {
    // Tag, format, no flags, expiry 0, then a grant whose id is text of
    // length 2^62.
    let mut out = wire::Writer::default();
    out.bytes(&[TAG, FORMAT, 0, 0, 0]);
    out.varint(1 << 62);
    assert!(matches!(decode(&out.0), Err(StoreError::Backend(_))));
    // A client JWK nested far beyond serde_json's limit: refused, not a
    // stack overflow. (Grant flags: approved, text id "g"; key flags 0,
    // empty thumbprint; then arrays of one array.)
    let mut deep = vec![TAG, FORMAT, 0, 0, 1, 1, b'g', 0, 0];
    deep.extend(std::iter::repeat_n([6u8, 1], 100_000).flatten());
    assert!(matches!(decode(&deep), Err(StoreError::Backend(_))));
}

// ---- generated entries ----

fn binding() -> impl Strategy<Value = KeyBinding> {
    (
        prop_oneof![Just(None), any::<[u8; 32]>().prop_map(Some),],
        prop_oneof![
            any::<[u8; 32]>().prop_map(|x| json!({"crv": "Ed25519", "kty": "OKP",
                "x": crate::proto::b64::encode_url(&x)})),
            any::<[u8; 32]>().prop_map(|x| json!({"crv": "Ed25519", "kty": "OKP",
                "x": crate::proto::b64::encode_url(&x), "kid": "k"})),
            Just(Value::Null),
            "[a-z]{0,8}".prop_map(|k| json!({"kty": k, "crv": "P-256", "n": 3})),
        ],
        prop_oneof![
            Just(ProofKind::HttpSig),
            Just(ProofKind::Jwsd),
            Just(ProofKind::Jws),
            Just(ProofKind::Mtls),
        ],
        "[ -~]{0,50}",
    )
        .prop_map(|(raw, jwk, method, text)| KeyBinding {
            thumbprint: raw.map_or(text, |r| crate::proto::b64::encode_url(&r)),
            jwk,
            method,
        })
}

fn access_json() -> impl Strategy<Value = Value> {
    let right =
        prop_oneof![
        "[a-z:]{1,12}".prop_map(Value::from),
        ("[a-z]{1,8}", "[a-z]{0,8}", prop::collection::vec("[a-z/]{1,12}", 0..3)).prop_map(
            |(kind, id, actions)| json!({"type": kind, "identifier": id, "actions": actions})
        ),
    ];
    prop::collection::vec(right, 1..3).prop_map(Value::Array)
}

fn grant_request(client_jwk: Value) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec((access_json(), any::<bool>()), 1..3),
        any::<bool>(),
        prop::option::of("[ -~]{0,30}"),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(tokens, multiple, name, own_jwk, interact)| {
            let asked: Vec<Value> = tokens
                .iter()
                .enumerate()
                .map(|(i, (access, bearer))| {
                    let mut t = json!({"access": access, "label": format!("t{i}")});
                    if *bearer {
                        t["flags"] = json!(["bearer"]);
                    }
                    t
                })
                .collect();
            let access_token = if multiple {
                Value::Array(asked)
            } else {
                asked[0].clone()
            };
            let jwk = if own_jwk && client_jwk.is_object() {
                client_jwk.clone()
            } else {
                json!({"kty": "OKP", "crv": "Ed25519",
                    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})
            };
            let mut client = json!({"key": {"proof": "httpsig", "jwk": jwk}});
            if let Some(name) = name {
                client["display"] = json!({"name": name});
            }
            let mut body = json!({"access_token": access_token, "client": client});
            if interact {
                body["interact"] = json!({"start": ["redirect"]});
            }
            body
        })
}

fn hash(locator: Option<[u8; 16]>) -> impl Strategy<Value = TokenHash> {
    (any::<[u8; 32]>(), any::<bool>()).prop_map(move |(mut h, located)| {
        if let (Some(l), true) = (locator, located) {
            h[..16].copy_from_slice(&l);
        }
        TokenHash(h)
    })
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![Just(NOW), NOW - 100_000..NOW + 100_000, any::<i64>()]
}

prop_compose! {
    fn token(grant: GrantRecord)(
        h in hash(grant.id.locator()),
        manage in hash(grant.id.locator()),
        other_grant in prop::option::of("[a-z0-9-]{0,40}"),
        label in prop::option::of("[ -~]{0,20}"),
        asked in prop::option::of(0usize..3),
        own_access in access_json(),
        key in prop::option::of(binding()),
        bearer in any::<bool>(),
        issued_at in prop::option::of(time()),
        expires_at in time(),
        sets in prop::collection::vec(("[a-z]{1,8}", prop::option::of("[ -~]{0,20}")), 0..3),
        oauth in prop::option::of(("[a-z]{0,10}", "[ -~]{0,30}", any::<bool>())),
    ) -> (TokenHash, TokenRecord) {
        let requested = grant.request.access_token.as_ref().map(|r| r.as_slice().to_vec()).unwrap_or_default();
        let access = asked
            .and_then(|i| requested.get(i))
            .map(|t| t.access.clone())
            .unwrap_or_else(|| serde_json::from_value(own_access).unwrap());
        let record = TokenRecord {
            v: RECORD_VERSION,
            grant: other_grant.map_or_else(|| grant.id.clone(), GrantId),
            label,
            access,
            key: key.unwrap_or_else(|| grant.client.clone()),
            manage,
            bearer,
            issued_at: issued_at.unwrap_or(grant.created_at),
            expires_at,
            credential_sets: sets
                .into_iter()
                .map(|(u, s)| {
                    let s = s.unwrap_or_else(|| format!("enterprise:{u}"));
                    (u, s)
                })
                .collect(),
            oauth: oauth.map(|(client_id, audience, dpop)| OAuthToken { client_id, audience, dpop }),
        };
        (h, record)
    }
}

fn grant() -> impl Strategy<Value = GrantRecord> {
    (
        binding(),
        prop_oneof![
            Just(GRANT_ID.to_owned()),
            any::<[u8; 16]>().prop_map(|b| uuid::Uuid::from_bytes(b).hyphenated().to_string()),
            "[ -~]{0,40}",
        ],
    )
        .prop_flat_map(|(client, id)| {
            let id = GrantId(id);
            (
                Just(client.clone()),
                Just(id.clone()),
                grant_request(client.jwk.clone()),
                prop_oneof![
                    Just(GrantState::Pending),
                    Just(GrantState::Approved),
                    Just(GrantState::Denied)
                ],
                prop_oneof![
                    Just(None),
                    Just(Some(id.0.clone())),
                    "[a-z]{0,12}".prop_map(Some)
                ],
                prop::option::of((hash(id.locator()), any::<u64>(), prop::option::of(time()))),
                time(),
                time(),
                any::<bool>(),
            )
        })
        .prop_map(
            |(
                client,
                id,
                body,
                state,
                instance_id,
                continuation,
                created_at,
                expires_at,
                oauth,
            )| {
                GrantRecord {
                    v: RECORD_VERSION,
                    id,
                    state,
                    client,
                    instance_id,
                    request: request(body),
                    tokens: Vec::new(),
                    continuation: continuation.map(|(token, wait, at)| Continuation {
                        token,
                        wait,
                        issued_at: at.unwrap_or(created_at),
                    }),
                    created_at,
                    expires_at,
                    oauth: oauth.then(|| OAuthAuthorization {
                        client_id: "c".into(),
                        redirect_uri: "http://127.0.0.1/cb".into(),
                        code_challenge: "ch".into(),
                        resource: "https://gw.example/mcp/x".into(),
                        state: None,
                        dpop_jkt: Some("jkt".into()),
                        client_name: None,
                        client_source: None,
                        redeemed: None,
                    }),
                }
            },
        )
}

fn entry() -> impl Strategy<Value = GrantEntry> {
    grant()
        .prop_flat_map(|grant| {
            (
                Just(grant.clone()),
                prop::collection::vec(token(grant.clone()), 0..4),
                prop::collection::vec(hash(grant.id.locator()), 0..3),
                0u8..3,
                prop::option::of((
                    prop::option::of(binding()),
                    prop::option::of(time()),
                    prop_oneof![
                        Just(None),
                        Just(Some(None)),
                        time().prop_map(|t| Some(Some(t)))
                    ],
                )),
                prop::option::of((time(), prop::option::of(time()))),
            )
        })
        .prop_map(|(mut grant, tokens, revoked, listing, instance, header)| {
            grant.tokens = match listing {
                0 => tokens.iter().map(|(h, _)| *h).collect(),
                1 => revoked
                    .iter()
                    .chain(tokens.iter().map(|(h, _)| h))
                    .copied()
                    .collect(),
                _ => revoked,
            };
            let instance = instance.map(|(key, created_at, expires_at)| InstanceRecord {
                v: RECORD_VERSION,
                key: key.unwrap_or_else(|| grant.client.clone()),
                created_at: created_at.unwrap_or(grant.created_at),
                expires_at: expires_at.unwrap_or(Some(grant.expires_at)),
            });
            let mut entry = GrantEntry::new(grant, tokens);
            entry.instance = instance;
            if let Some((expires_at, tokens_expire)) = header {
                entry.expires_at = expires_at;
                entry.tokens_expire = tokens_expire;
            }
            entry
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_generated_grant_entry_reads_back_exactly_and_serializes_the_same(entry in entry()) {
        let bytes = encode_entry(&entry).unwrap();
        assert_reads_back(&entry, &bytes);
        // The entry's own expiries, or the parts' when written new.
        let fresh = GrantEntry { instance: entry.instance.clone(), ..GrantEntry::new(entry.grant.clone(), entry.tokens.clone()) };
        assert_reads_back(&fresh, &encode(&entry.grant, &entry.tokens, entry.instance.as_ref()).unwrap());
    }

    #[test]
    fn random_bytes_after_the_tag_never_panic_and_decode_only_to_what_encodes_again(
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![TAG, FORMAT];
        bytes.extend(tail);
        let _ = expiry(&bytes);
        if let Ok(entry) = decode(&bytes) {
            encode_entry(&entry).unwrap();
        }
        // Without the tag, the bytes are not a compact record at all.
        bytes[0] = b'{';
        prop_assert!(decode(&bytes).is_err());
    }

    #[test]
    fn a_record_with_a_byte_changed_or_cut_short_never_panics(
        entry in entry(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let bytes = encode_entry(&entry).unwrap();
        let at = at.index(bytes.len());
        let mut changed = bytes.clone();
        changed[at] ^= flip;
        let _ = expiry(&changed);
        if let Ok(read) = decode(&changed) {
            encode_entry(&read).unwrap();
        }
        prop_assert!(decode(&bytes[..at]).is_err(), "a strict prefix is never a record");
    }
}

/// Written from borrowed parts or from the owned entry: the same bytes,
/// and the JSON form still reads.
#[test]
fn a_new_grant_encoded_from_borrowed_parts_is_the_entry_it_decodes_to() {
    let request = crate::proto::gnap::parse_grant_request(
        br#"{"access_token":{"access":["x"]},"client":"inst"}"#,
    )
    .unwrap();
    let key = crate::store::KeyBinding {
        thumbprint: "tp".into(),
        jwk: serde_json::json!({"kty": "OKP"}),
        method: crate::proto::gnap::ProofKind::HttpSig,
    };
    let grant = GrantRecord {
        v: RECORD_VERSION,
        id: GrantId("g".into()),
        state: crate::store::GrantState::Approved,
        client: key.clone(),
        instance_id: None,
        request,
        tokens: vec![TokenHash([1; 32])],
        continuation: None,
        created_at: 1,
        expires_at: 900,
        oauth: None,
    };
    let token = |expires_at, oauth: bool| TokenRecord {
        v: RECORD_VERSION,
        grant: grant.id.clone(),
        label: None,
        access: Vec::new(),
        key: key.clone(),
        manage: TokenHash([2; 32]),
        bearer: false,
        issued_at: 1,
        expires_at,
        credential_sets: Vec::new(),
        oauth: oauth.then(|| crate::store::OAuthToken {
            client_id: "c".into(),
            audience: "a".into(),
            dpop: false,
        }),
    };
    let tokens = vec![
        (TokenHash([1; 32]), token(300, true)),
        (TokenHash([3; 32]), token(500, false)),
    ];
    let owned = GrantEntry::new(grant.clone(), tokens.clone());
    assert_eq!(
        owned.tokens_expire,
        Some(500),
        "an OAuth token's expiry is not a sweep's"
    );
    let bytes = encode(&grant, &tokens, None).unwrap();
    assert_eq!(bytes, owned.encode().unwrap());
    assert_eq!(GrantEntry::decode(&bytes).unwrap(), owned);
    // The JSON form written before the compact one reads the same.
    let json = crate::store::codec::encode(&owned).unwrap();
    assert_eq!(GrantEntry::decode(&json).unwrap(), owned);
    assert_eq!(
        EntryExpiry::of(&json).unwrap(),
        EntryExpiry::of(&bytes).unwrap()
    );
    let instance = InstanceRecord {
        v: RECORD_VERSION,
        key,
        created_at: 1,
        expires_at: Some(900),
    };
    let with = GrantEntry {
        instance: Some(instance.clone()),
        ..owned
    };
    let bytes = encode(&grant, &tokens, Some(&instance)).unwrap();
    assert_eq!(GrantEntry::decode(&bytes).unwrap(), with);
    let mut future = grant;
    future.v = 99;
    assert_eq!(encode(&future, &tokens, None), Err(StoreError::Version(99)));
}

#[test]
fn each_word_has_one_index_and_fits_one_byte_as_text() {
    for (i, word) in words::WORDS.iter().enumerate() {
        assert_eq!(words::index_of(word), Some(i), "{word}");
    }
    // Kinds 0–8, then a word: below 128, one varint byte.
    assert!(words::WORDS.len() + 9 <= 128);
}

/// The fuzz target `grant_record`'s seeds: records this build writes (a
/// first grant; one with interaction, labels and several tokens) and the
/// first grant as JSON, as older builds wrote it. Each keeps the target's
/// properties; with `GNAPD_WRITE_SEEDS` set they are written to
/// `fuzz/corpus/grant_record/`.
#[test]
fn the_grant_record_fuzz_seeds_keep_the_targets_properties() {
    let first = first_grant();
    let mut several = first_grant();
    several.tokens.push(several.tokens[0].clone());
    several.tokens[1].0 = minted(&several.grant.id, 9);
    several.grant.tokens = several.tokens.iter().map(|(h, _)| *h).collect();
    several.tokens_expire = super::super::entry::tokens_expire(&several.tokens);
    let seeds = [
        ("seed-first-grant", encode_entry(&first).unwrap()),
        ("seed-two-tokens", encode_entry(&several).unwrap()),
        (
            "seed-first-grant-json",
            crate::store::codec::encode(&first).unwrap(),
        ),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/grant_record");
    for (name, bytes) in &seeds {
        assert_eq!(
            crate::store::sled::danger_check_record_bytes(bytes),
            Ok(()),
            "{name}"
        );
        assert!(GrantEntry::decode(bytes).is_ok(), "{name} reads");
        if std::env::var_os("GNAPD_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
