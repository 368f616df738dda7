//! The OAuth services over the memory store and a manual clock: what the
//! loopback tests cannot reach (time, DPoP keys, records as stored, policy
//! rules naming an OAuth client).

use std::sync::Arc;

use super::*;
use crate::authz::{AllowRule, AsConfig, Assignments, AuthServer, Policy};
use crate::clock::ManualClock;
use crate::proto::oauth::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use crate::proto::oauth::form::Params;
use crate::proto::oauth::pkce;
use crate::store::memory::MemoryStore;
use crate::store::{GrantId, Store, TokenHash};

const PUBLIC: &str = "https://gw.example";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:4000/cb";

struct Setup {
    auth: AuthServer,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    client: ClientInfo,
}

fn setup(policy: Policy) -> Setup {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let client = ClientInfo {
        client_id: "cli".into(),
        client_name: Some("CLI".into()),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        token_endpoint_auth: TokenEndpointAuth::None,
        secret_hash: None,
        jwks: None,
        grant_types: Vec::new(),
        source: ClientSource::MetadataDocument {
            localhost_only: true,
        },
    };
    let auth = AuthServer::new(store.clone(), clock.clone(), policy, AsConfig::new(PUBLIC))
        .with_credential_sets(Assignments::new([(
            "github".to_owned(),
            "set-1".to_owned(),
        )]));
    Setup {
        auth,
        store,
        clock,
        client,
    }
}

fn dev() -> Policy {
    Policy {
        dev: true,
        ..Policy::default()
    }
}

fn known(name: &str) -> bool {
    name == "github"
}

fn request(extra: &[(&str, &str)]) -> Params {
    let challenge = pkce::s256(VERIFIER);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", "cli"),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("resource", "https://gw.example/mcp/github"),
    ];
    pairs.extend_from_slice(extra);
    Params::from_pairs(&pairs)
}

fn code(s: &Setup, extra: &[(&str, &str)]) -> String {
    match s.auth.oauth_authorize(
        &request(extra),
        Some(&s.client),
        &known,
        None,
        Some("127.0.0.1"),
    ) {
        Authorized::Redirect(url) => {
            let query = url.split_once('?').unwrap().1;
            form_urlencoded::parse(query.as_bytes())
                .find(|(n, _)| n == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no code in {url}"))
        }
        Authorized::Refused(e) => panic!("{e:?}"),
    }
}

fn redeem(
    s: &Setup,
    code: &str,
    dpop: Option<&DpopKey>,
) -> Result<TokenAnswer, crate::proto::oauth::error::OAuthError> {
    let params = Params::from_pairs(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]);
    s.auth.oauth_token(&params, &s.client, dpop, &known, None)
}

fn jkt(n: u8) -> DpopKey {
    DpopKey {
        jkt: crate::proto::b64::encode_url(&[n; 32]),
        jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": n.to_string(), "y": "y"}),
    }
}

#[test]
fn a_code_expires_after_its_lifetime() {
    let s = setup(dev());
    let code = code(&s, &[]);
    s.clock.advance(CODE_LIFETIME + 1);
    let e = redeem(&s, &code, None).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    assert!(e.description.contains("expired"), "{e:?}");
}

#[test]
fn the_token_record_is_an_audience_bound_oauth_token_mapped_like_a_gnap_one() {
    let s = setup(dev());
    let answer = redeem(&s, &code(&s, &[]), None).unwrap();
    let record = s
        .store
        .token(&TokenHash::of(&answer.access_token))
        .unwrap()
        .unwrap();
    let oauth = record.oauth.clone().unwrap();
    assert_eq!(oauth.audience, "https://gw.example/mcp/github");
    assert_eq!(oauth.client_id, "cli");
    assert!(!oauth.dpop && record.bearer);
    assert_eq!(record.key, client_binding("cli"));
    assert_eq!(
        record.credential_sets,
        vec![("github".to_owned(), "set-1".to_owned())]
    );
    assert_eq!(
        record.manage,
        TokenHash::of(answer.refresh_token.as_deref().unwrap())
    );
    assert_eq!(record.expires_at - record.issued_at, 900);
    // The grant, as stored, reads back (its request is a GNAP request).
    let grant = s.store.grant(&record.grant).unwrap().unwrap();
    let bytes = serde_json::to_vec(&grant).unwrap();
    let back: crate::store::GrantRecord = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, grant);
}

#[test]
fn a_dpop_bound_code_needs_its_key_and_the_tokens_stay_bound_through_refresh() {
    let s = setup(dev());
    let key = jkt(1);
    let code = code(&s, &[("dpop_jkt", &key.jkt)]);
    assert_eq!(
        redeem(&s, &code, None).unwrap_err().code,
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        redeem(&s, &code, Some(&jkt(2))).unwrap_err().code,
        ErrorCode::InvalidGrant
    );
    let answer = redeem(&s, &code, Some(&key)).unwrap();
    assert_eq!(answer.token_type, "DPoP");
    let record = s
        .store
        .token(&TokenHash::of(&answer.access_token))
        .unwrap()
        .unwrap();
    assert!(!record.bearer && record.oauth.as_ref().unwrap().dpop);
    assert_eq!(record.key.thumbprint, key.jkt);
    let refresh = |dpop: Option<&DpopKey>, token: &str| {
        s.auth.oauth_token(
            &Params::from_pairs(&[("grant_type", "refresh_token"), ("refresh_token", token)]),
            &s.client,
            dpop,
            &known,
            None,
        )
    };
    let token = answer.refresh_token.unwrap();
    assert_eq!(
        refresh(None, &token).unwrap_err().code,
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        refresh(Some(&jkt(2)), &token).unwrap_err().code,
        ErrorCode::InvalidGrant
    );
    let next = refresh(Some(&key), &token).unwrap();
    assert_eq!(next.token_type, "DPoP");
}

#[test]
fn a_gnap_management_token_is_no_refresh_token() {
    let s = setup(dev());
    let answer = redeem(&s, &code(&s, &[]), None).unwrap();
    let mut record = s
        .store
        .token(&TokenHash::of(&answer.access_token))
        .unwrap()
        .unwrap();
    // The same record without its OAuth part: a GNAP token.
    record.oauth = None;
    let manage = "gnap-management-token";
    record.manage = TokenHash::of(manage);
    let grant = crate::store::GrantRecord {
        id: GrantId("gnap-grant".into()),
        tokens: vec![TokenHash::of("gnap-access")],
        oauth: None,
        ..s.store.grant(&record.grant).unwrap().unwrap()
    };
    record.grant = grant.id.clone();
    s.store
        .create_grant(&grant, &[(TokenHash::of("gnap-access"), record)])
        .unwrap();
    let e = s
        .auth
        .oauth_token(
            &Params::from_pairs(&[("grant_type", "refresh_token"), ("refresh_token", manage)]),
            &s.client,
            None,
            &known,
            None,
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidGrant);
    // Nor can it be revoked here: 200 without effect.
    let params = Params::from_pairs(&[("token", "gnap-access")]);
    s.auth.oauth_revoke(&params, &s.client).unwrap();
    assert!(
        s.store
            .token(&TokenHash::of("gnap-access"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn outside_dev_an_allow_rule_naming_the_client_approves_and_no_rule_asks_a_person() {
    let rule = AllowRule {
        thumbprint: Some(client_binding("cli").thumbprint),
        class_id: None,
        access: vec!["mcp:github".into()],
    };
    let s = setup(Policy {
        allow: vec![rule],
        ..Policy::default()
    });
    assert!(redeem(&s, &code(&s, &[]), None).is_ok());
    let s = setup(Policy::default());
    match s.auth.oauth_authorize(
        &request(&[]),
        Some(&s.client),
        &known,
        None,
        Some("127.0.0.1"),
    ) {
        Authorized::Redirect(url) => {
            assert!(
                url.starts_with("https://gw.example/gnap/interact/"),
                "{url}"
            );
            let grant = url.trim_start_matches("https://gw.example/gnap/interact/");
            let grant = GrantId(grant.split('/').next().unwrap().to_owned());
            // The consent page shows the client as the grant remembers it,
            // warning of a metadata document with localhost redirects only.
            let secret = url.rsplit('/').next().unwrap();
            let view = s.auth.consent_by_link(&grant.0, secret).unwrap();
            assert_eq!(view.display_name.as_deref(), Some("CLI"));
            let shown = view.oauth.unwrap();
            assert!(shown.localhost_only);
            assert_eq!(shown.client_id, "cli");
            assert_eq!(shown.redirect_host, "127.0.0.1");
            assert!(view.finishes_by_redirect);
            let oauth = s.store.grant(&grant).unwrap().unwrap().oauth.unwrap();
            assert_eq!(oauth.client_name.as_deref(), Some("CLI"));
            assert_eq!(
                oauth.client_source,
                Some(ClientSource::MetadataDocument {
                    localhost_only: true
                })
            );
        }
        Authorized::Refused(e) => panic!("{e:?}"),
    }
}
