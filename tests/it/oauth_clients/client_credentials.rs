//! Headless agents: `client_credentials` with `private_key_jwt` (RFC 7523,
//! MCP's SEP-1046), decided by the GNAP allow rules on the assertion key's
//! thumbprint. Driven as the token endpoint calls it, on the in-memory
//! store with a pinned clock.

use gnapd::authz::oauth_clients::client_credentials::{ClientCredentialsRequest, TOKEN_PATH};
use gnapd::authz::oauth_clients::{OAuthClients, Settings};
use gnapd::authz::{AllowRule, Policy};
use gnapd::proto::alg::Algorithm;
use gnapd::proto::gnap::AccessRight;
use gnapd::proto::jwk::SigningKey;
use gnapd::proto::oauth::client::{ClientInfo, ClientSource, TokenEndpointAuth};
use gnapd::proto::oauth::client_assertion::{JWT_BEARER_ASSERTION, danger_sign_for_tests};
use serde_json::{Value, json};

use crate::support::core::{Core, PUBLIC, T0};

const CLIENT: &str = "https://agent.example/client.json";

fn agent_key() -> SigningKey {
    SigningKey::generate(Algorithm::EcdsaP256Sha256).unwrap()
}

fn client(key: &SigningKey) -> ClientInfo {
    ClientInfo {
        client_id: CLIENT.into(),
        client_name: Some("nightly agent".into()),
        redirect_uris: vec![],
        token_endpoint_auth: TokenEndpointAuth::PrivateKeyJwt,
        secret_hash: None,
        jwks: Some(json!({"keys": [key.verifying_key().public_jwk().unwrap()]})),
        grant_types: vec!["client_credentials".into()],
        source: ClientSource::MetadataDocument {
            localhost_only: false,
        },
    }
}

fn claims(jti: &str) -> Value {
    json!({
        "iss": CLIENT, "sub": CLIENT, "aud": format!("{PUBLIC}{TOKEN_PATH}"),
        "iat": T0, "exp": T0 + 60, "jti": jti,
    })
}

fn allowing(key: &SigningKey, access: &[&str]) -> Policy {
    Policy {
        allow: vec![AllowRule {
            thumbprint: Some(key.verifying_key().thumbprint().as_str().to_owned()),
            class_id: None,
            access: access.iter().map(|a| (*a).to_owned()).collect(),
        }],
        ..Policy::default()
    }
}

struct Case {
    core: Core,
    clients: OAuthClients,
}

impl Case {
    fn new(policy: Policy) -> Self {
        let core = Core::new(policy);
        let clients = OAuthClients::new(&core.server, Settings::new(false));
        Self { core, clients }
    }

    fn ask(
        &self,
        client: &ClientInfo,
        assertion: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<
        gnapd::authz::oauth_clients::client_credentials::ClientCredentialsGrant,
        (u16, &'static str),
    > {
        self.clients
            .client_credentials(
                &self.core.server,
                client,
                &ClientCredentialsRequest {
                    client_assertion_type: Some(JWT_BEARER_ASSERTION),
                    client_assertion: Some(assertion),
                    scope,
                    resource_upstream: resource,
                },
            )
            .map_err(|r| (r.status, r.code))
    }
}

#[test]
fn an_allow_rule_on_the_assertion_key_approves_what_it_covers() {
    let key = agent_key();
    let case = Case::new(allowing(&key, &["mcp:github"]));
    let jwt = danger_sign_for_tests(&key, None, &claims("j1"));
    let grant = case
        .ask(&client(&key), &jwt, Some("mcp:github"), Some("github"))
        .unwrap();
    assert_eq!(grant.client_id, CLIENT);
    assert_eq!(grant.upstream, "github");
    assert_eq!(
        grant.rights,
        vec![AccessRight::Reference("mcp:github".into())]
    );
    assert_eq!(
        grant.key.thumbprint,
        key.verifying_key().thumbprint().as_str()
    );
    // No scope: the whole upstream the resource names.
    let jwt = danger_sign_for_tests(&key, None, &claims("j2"));
    assert_eq!(
        case.ask(&client(&key), &jwt, None, Some("github"))
            .unwrap()
            .rights,
        vec![AccessRight::Reference("mcp:github".into())]
    );
    // Beyond the rule: refused, not widened.
    let jwt = danger_sign_for_tests(&key, None, &claims("j3"));
    assert_eq!(
        case.ask(&client(&key), &jwt, Some("mcp:slack"), None),
        Err((400, "invalid_scope"))
    );
}

#[test]
fn without_a_rule_for_its_key_a_headless_client_gets_nothing_and_dev_approves() {
    let key = agent_key();
    let other = agent_key();
    let case = Case::new(allowing(&other, &["*"]));
    let jwt = danger_sign_for_tests(&key, None, &claims("j1"));
    assert_eq!(
        case.ask(&client(&key), &jwt, Some("mcp:github"), None),
        Err((400, "unauthorized_client"))
    );
    let dev = Case::new(Policy {
        dev: true,
        ..Policy::default()
    });
    let jwt = danger_sign_for_tests(&key, None, &claims("j1"));
    assert!(
        dev.ask(&client(&key), &jwt, Some("mcp:github:tool:search"), None)
            .is_ok()
    );
    let interactive = Case::new(Policy {
        dev: true,
        require_interaction: true,
        ..Policy::default()
    });
    let jwt = danger_sign_for_tests(&key, None, &claims("j1"));
    assert_eq!(
        interactive.ask(&client(&key), &jwt, Some("mcp:github"), None),
        Err((400, "unauthorized_client"))
    );
}

#[test]
fn a_wrong_key_audience_expiry_or_a_replayed_jti_is_invalid_client() {
    let key = agent_key();
    let case = Case::new(allowing(&key, &["mcp:github"]));
    let c = client(&key);
    // Attack: an assertion signed by a key not in the client's metadata.
    let thief = agent_key();
    let forged = danger_sign_for_tests(&thief, None, &claims("f1"));
    assert_eq!(
        case.ask(&c, &forged, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    // Attack: an assertion made for another AS, replayed here.
    let mut elsewhere = claims("a1");
    elsewhere["aud"] = json!("https://other-as.example/token");
    let jwt = danger_sign_for_tests(&key, None, &elsewhere);
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    // The issuer is an audience too.
    let mut issuer = claims("a2");
    issuer["aud"] = json!(PUBLIC);
    let jwt = danger_sign_for_tests(&key, None, &issuer);
    assert!(case.ask(&c, &jwt, Some("mcp:github"), None).is_ok());
    // Expired, and living too long.
    let mut old = claims("e1");
    old["exp"] = json!(T0 - 120);
    let jwt = danger_sign_for_tests(&key, None, &old);
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    let mut long = claims("e2");
    long["exp"] = json!(T0 + 3600);
    let jwt = danger_sign_for_tests(&key, None, &long);
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    // Attack: the same assertion twice (its jti is single use).
    let jwt = danger_sign_for_tests(&key, None, &claims("r1"));
    assert!(case.ask(&c, &jwt, Some("mcp:github"), None).is_ok());
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    // iss/sub of another client.
    let mut other = claims("s1");
    other["sub"] = json!("https://victim.example/client.json");
    let jwt = danger_sign_for_tests(&key, None, &other);
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
}

/// The revocation endpoint authenticates a client by the same call the
/// grant makes (RFC 7009 §2.1): one replay memory, one audience set.
#[test]
fn an_assertion_spent_authenticating_a_revocation_is_spent_for_the_grant_too() {
    let key = agent_key();
    let case = Case::new(allowing(&key, &["mcp:github"]));
    let c = client(&key);
    let authenticate = |jwt: &str| {
        case.clients
            .authenticate_private_key_jwt(&c, Some(JWT_BEARER_ASSERTION), Some(jwt))
            .map_err(|r| (r.status, r.code))
    };
    let jwt = danger_sign_for_tests(&key, None, &claims("v1"));
    assert!(authenticate(&jwt).is_ok());
    assert_eq!(authenticate(&jwt).err(), Some((401, "invalid_client")));
    assert_eq!(
        case.ask(&c, &jwt, Some("mcp:github"), None),
        Err((401, "invalid_client"))
    );
    // The AS is named by its issuer or token endpoint, not by the URL of
    // the endpoint the assertion is shown to.
    let mut revoke_url = claims("v2");
    revoke_url["aud"] = json!(format!("{PUBLIC}/oauth/revoke"));
    let jwt = danger_sign_for_tests(&key, None, &revoke_url);
    assert_eq!(authenticate(&jwt).err(), Some((401, "invalid_client")));
    let mut issuer = claims("v3");
    issuer["aud"] = json!(PUBLIC);
    assert!(authenticate(&danger_sign_for_tests(&key, None, &issuer)).is_ok());
}

#[test]
fn only_private_key_jwt_clients_registered_for_the_grant_may_use_it() {
    let key = agent_key();
    let case = Case::new(allowing(&key, &["*"]));
    let jwt = danger_sign_for_tests(&key, None, &claims("j1"));
    let mut public = client(&key);
    public.token_endpoint_auth = TokenEndpointAuth::None;
    assert_eq!(
        case.ask(&public, &jwt, Some("mcp:github"), None),
        Err((400, "unauthorized_client"))
    );
    let mut code_only = client(&key);
    code_only.grant_types = vec!["authorization_code".into()];
    assert_eq!(
        case.ask(&code_only, &jwt, Some("mcp:github"), None),
        Err((400, "unauthorized_client"))
    );
    // A token is for one resource: scopes elsewhere than `resource`.
    assert_eq!(
        case.ask(&client(&key), &jwt, Some("mcp:slack"), Some("github")),
        Err((400, "invalid_target"))
    );
    let jwt = danger_sign_for_tests(&key, None, &claims("j2"));
    assert_eq!(
        case.ask(&client(&key), &jwt, Some("mcp:github mcp:slack"), None),
        Err((400, "invalid_target"))
    );
    let wrong_type = case.clients.client_credentials(
        &case.core.server,
        &client(&key),
        &ClientCredentialsRequest {
            client_assertion_type: Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer"),
            client_assertion: Some(&jwt),
            scope: Some("mcp:github"),
            resource_upstream: None,
        },
    );
    assert_eq!(wrong_type.unwrap_err().code, "invalid_client");
}
