//! Client ID Metadata Documents fetched over real https on loopback by
//! `resolve_client`, as the authorization and token endpoints call it:
//! checked against their URL, cached per their headers, and refused when
//! private, too large, too slow or redirected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gnapd::authz::oauth_clients::{OAuthClients, Settings};
use gnapd::authz::{AsConfig, AuthServer, Policy};
use gnapd::clock::SystemClock;
use gnapd::gateway::forward::Gateway;
use gnapd::http::oauth_clients::{Clients, ResolveError, fetch::DocumentFetcher, resolve_client};
use gnapd::http::{App, DEFAULT_MAX_BODY};
use gnapd::proto::oauth::cimd::CimdError;
use gnapd::proto::oauth::client::{ClientSource, TokenEndpointAuth};
use gnapd::store::memory::MemoryStore;
use serde_json::{Value, json};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;

use super::document_server::{Doc, DocumentServer};
use crate::support::pki::{TestPki, test_pki};

/// gnapd's service in this process (no listener: `resolve_client` is
/// called as the endpoints call it), trusting `pki`'s CA, admitting
/// loopback documents or not.
struct Resolver {
    app: Arc<App>,
    runtime: tokio::runtime::Runtime,
}

impl Resolver {
    fn new(pki: &TestPki, allow_private: bool) -> Self {
        Self::with_policy(pki, allow_private, Policy::default())
    }

    fn with_policy(pki: &TestPki, allow_private: bool, policy: Policy) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.ca)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let store = Arc::new(MemoryStore::new());
        let auth = Arc::new(AuthServer::new(
            store.clone(),
            Arc::new(SystemClock),
            policy,
            AsConfig::new("https://as.example"),
        ));
        let app = runtime.block_on(async {
            let gateway = Gateway::new(
                Vec::new(),
                store,
                Arc::new(SystemClock),
                auth.config().profile,
                Duration::from_secs(5),
                None,
                &[],
            )
            .unwrap();
            let mut settings = Settings::new(true);
            settings.allow_private_documents = allow_private;
            Arc::new(App {
                oauth_clients: Arc::new(Clients {
                    registry: Arc::new(OAuthClients::new(&auth, settings)),
                    fetcher: DocumentFetcher::new(allow_private, &cas).unwrap(),
                }),
                auth,
                max_body: DEFAULT_MAX_BODY,
                gateway: Arc::new(gateway),
                pusher: Arc::new(gnapd::http::push::Pusher::new(false, &[]).unwrap()),
                connections: Arc::default(),
                login: None,
                trusted_proxy: None,
                metrics_on_main: true,
                role: gnapd::http::Role::All,
                admission: Arc::new(gnapd::http::admission::Admission::new(16, 16)),
                connection_limits: Default::default(),
                interop: None,
            })
        });
        Self { app, runtime }
    }

    fn resolve(
        &self,
        client_id: &str,
    ) -> Result<gnapd::proto::oauth::client::ClientInfo, ResolveError> {
        self.runtime.block_on(resolve_client(&self.app, client_id))
    }
}

fn document(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Example Agent",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "token_endpoint_auth_method": "none",
    })
}

struct Setup {
    _dir: tempfile::TempDir,
    pki: TestPki,
    docs: DocumentServer,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let docs = DocumentServer::start(&pki.cert, &pki.key);
    Setup {
        _dir: dir,
        pki,
        docs,
    }
}

#[track_caller]
fn refused_document(
    result: Result<gnapd::proto::oauth::client::ClientInfo, ResolveError>,
) -> CimdError {
    match result {
        Err(ResolveError::Document(e)) => e,
        other => panic!("expected a refused document, got {other:?}"),
    }
}

#[test]
fn a_metadata_document_is_fetched_checked_and_cached_per_its_headers() {
    let s = setup();
    let resolver = Resolver::new(&s.pki, true);
    let url = s.docs.url("/client.json");
    s.docs.serve(
        "/client.json",
        Doc::json(&document(&url)).header("cache-control", "max-age=600"),
    );
    let client = resolver.resolve(&url).unwrap();
    assert_eq!(client.client_id, url);
    assert_eq!(client.client_name.as_deref(), Some("Example Agent"));
    assert_eq!(client.token_endpoint_auth, TokenEndpointAuth::None);
    // Only loopback redirects: the consent page warns.
    assert_eq!(
        client.source,
        ClientSource::MetadataDocument {
            localhost_only: true
        }
    );
    assert_eq!(resolver.resolve(&url).unwrap(), client);
    assert_eq!(
        s.docs.hits("/client.json"),
        1,
        "the second resolve came from the cache"
    );

    // `no-store`: fetched every time.
    let fresh = s.docs.url("/fresh.json");
    s.docs.serve(
        "/fresh.json",
        Doc::json(&document(&fresh)).header("cache-control", "no-store"),
    );
    resolver.resolve(&fresh).unwrap();
    resolver.resolve(&fresh).unwrap();
    assert_eq!(s.docs.hits("/fresh.json"), 2);

    // A failure is not cached: once fixed, the document is read again.
    let broken = s.docs.url("/broken.json");
    s.docs
        .serve("/broken.json", Doc::json(&document(&broken)).status(500));
    refused_document(resolver.resolve(&broken));
    s.docs.serve(
        "/broken.json",
        Doc::json(&document(&broken)).header("cache-control", "max-age=600"),
    );
    assert!(resolver.resolve(&broken).is_ok());
    assert_eq!(s.docs.hits("/broken.json"), 2);
}

#[test]
fn a_document_whose_client_id_is_not_its_url_is_refused() {
    let s = setup();
    let resolver = Resolver::new(&s.pki, true);
    let url = s.docs.url("/impostor.json");
    // Attack: a document copied from another client, or naming a
    // trusted client's id, to borrow its name on the consent page.
    for claimed in [
        "https://vscode.dev/oauth/client-metadata.json".to_owned(),
        format!("{url}/"),
        url.replace("127.0.0.1", "localhost"),
    ] {
        let mut doc = document(&url);
        doc["client_id"] = json!(claimed);
        s.docs.serve("/impostor.json", Doc::json(&doc));
        assert_eq!(
            refused_document(resolver.resolve(&url)),
            CimdError::ClientIdMismatch
        );
    }
}

#[test]
fn a_document_on_a_private_address_is_not_fetched_without_the_test_switch() {
    let s = setup();
    let resolver = Resolver::new(&s.pki, false);
    let url = s.docs.url("/client.json");
    s.docs.serve("/client.json", Doc::json(&document(&url)));
    // Attack: SSRF, making the AS read from inside its own network.
    match refused_document(resolver.resolve(&url)) {
        CimdError::Fetch(why) => assert!(why.contains("private, loopback"), "{why}"),
        other => panic!("{other:?}"),
    }
    let local = format!("https://localhost:{}/client.json", s.docs.addr.port());
    assert!(matches!(
        refused_document(resolver.resolve(&local)),
        CimdError::Fetch(_)
    ));
    assert_eq!(s.docs.hits("/client.json"), 0, "no request reached it");
}

#[test]
fn too_large_slow_or_redirected_documents_and_bad_urls_are_refused() {
    let s = setup();
    let resolver = Resolver::new(&s.pki, true);
    let big = s.docs.url("/big.json");
    let mut doc = document(&big);
    doc["client_name"] = json!("x".repeat(6 * 1024));
    s.docs.serve("/big.json", Doc::json(&doc));
    match refused_document(resolver.resolve(&big)) {
        CimdError::Fetch(why) => assert!(why.contains("larger than 5 KB"), "{why}"),
        other => panic!("{other:?}"),
    }

    let target = s.docs.url("/target.json");
    s.docs.serve("/target.json", Doc::json(&document(&target)));
    let moved = s.docs.url("/moved.json");
    s.docs.serve(
        "/moved.json",
        Doc::json(&json!({}))
            .status(302)
            .header("location", &target),
    );
    match refused_document(resolver.resolve(&moved)) {
        CimdError::Fetch(why) => assert!(why.contains("redirects are not followed"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.docs.hits("/target.json"), 0);

    let slow = s.docs.url("/slow.json");
    s.docs.serve(
        "/slow.json",
        Doc::json(&document(&slow)).delay(Duration::from_secs(8)),
    );
    let started = Instant::now();
    match refused_document(resolver.resolve(&slow)) {
        CimdError::Fetch(why) => assert!(why.contains("longer than 5 seconds"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(7));

    for bad in [
        format!("https://{}/", s.docs.addr),
        format!("https://{}/a/../client.json", s.docs.addr),
        format!("https://user@{}/client.json", s.docs.addr),
    ] {
        assert_eq!(
            refused_document(resolver.resolve(&bad)),
            CimdError::Url,
            "{bad}"
        );
    }
    // A client_id that is neither configured, registered nor https.
    assert_eq!(resolver.resolve("nobody"), Err(ResolveError::Unknown));
    // A registered one resolves from the store, without a fetch.
    let registered = resolver.app.oauth_clients.registry.register(
        Some("application/json"),
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none"})
            .to_string()
            .as_bytes(),
        Some("127.0.0.1"),
    );
    let id: Value = serde_json::from_slice(&registered.body).unwrap();
    let client = resolver.resolve(id["client_id"].as_str().unwrap()).unwrap();
    assert_eq!(client.source, ClientSource::Registered);
}

#[test]
fn a_headless_client_known_by_its_document_or_registration_gets_client_credentials() {
    use gnapd::authz::AllowRule;
    use gnapd::authz::oauth_clients::client_credentials::ClientCredentialsRequest;
    use gnapd::proto::alg::Algorithm;
    use gnapd::proto::jwk::SigningKey;
    use gnapd::proto::oauth::client_assertion::{JWT_BEARER_ASSERTION, danger_sign_for_tests};

    let s = setup();
    let key = SigningKey::generate(Algorithm::Ed25519).unwrap();
    let jwks = json!({"keys": [key.verifying_key().public_jwk().unwrap()]});
    let policy = Policy {
        allow: vec![AllowRule {
            thumbprint: Some(key.verifying_key().thumbprint().as_str().to_owned()),
            class_id: None,
            access: vec!["mcp:github".into()],
        }],
        ..Policy::default()
    };
    let resolver = Resolver::with_policy(&s.pki, true, policy);
    let url = s.docs.url("/agent.json");
    s.docs.serve(
        "/agent.json",
        Doc::json(&json!({
            "client_id": url,
            "client_name": "nightly agent",
            "redirect_uris": [],
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": jwks,
        })),
    );
    let registered = resolver.app.oauth_clients.registry.register(
        Some("application/json"),
        json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks})
            .to_string()
            .as_bytes(),
        Some("127.0.0.1"),
    );
    assert_eq!(registered.status, 201);
    let registered: Value = serde_json::from_slice(&registered.body).unwrap();
    let now = gnapd::clock::Clock::now(&SystemClock);
    for client_id in [url.as_str(), registered["client_id"].as_str().unwrap()] {
        let client = resolver.resolve(client_id).unwrap();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": "https://as.example/oauth/token",
            "iat": now, "exp": now + 60, "jti": "once",
        });
        let jwt = danger_sign_for_tests(&key, None, &claims);
        let grant = resolver
            .app
            .oauth_clients
            .registry
            .client_credentials(
                &resolver.app.auth,
                &client,
                &ClientCredentialsRequest {
                    client_assertion_type: Some(JWT_BEARER_ASSERTION),
                    client_assertion: Some(&jwt),
                    scope: None,
                    resource_upstream: Some("github"),
                },
            )
            .unwrap();
        assert_eq!(grant.client_id, client_id);
        assert_eq!(grant.upstream, "github");
    }
}

#[test]
fn slow_documents_cannot_hold_more_than_a_bounded_number_of_fetches() {
    use gnapd::http::oauth_clients::fetch::MAX_IN_FLIGHT;
    let s = setup();
    let resolver = Resolver::new(&s.pki, true);
    let slow = s.docs.url("/slow.json");
    s.docs.serve(
        "/slow.json",
        Doc::json(&document(&slow)).delay(Duration::from_secs(8)),
    );
    // Attack: many authorization requests naming a document that never
    // comes, each holding a fetch until its time limit.
    let held: Vec<_> = (0..MAX_IN_FLIGHT)
        .map(|_| {
            let (app, url) = (resolver.app.clone(), slow.clone());
            resolver
                .runtime
                .spawn(async move { resolve_client(&app, &url).await })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let other = s.docs.url("/other.json");
    s.docs.serve("/other.json", Doc::json(&document(&other)));
    match refused_document(resolver.resolve(&other)) {
        CimdError::Fetch(why) => assert!(why.contains("too many"), "{why}"),
        e => panic!("{e:?}"),
    }
    assert_eq!(s.docs.hits("/other.json"), 0, "refused without a request");
    for handle in held {
        assert!(resolver.runtime.block_on(handle).unwrap().is_err());
    }
    // Their slots are back.
    assert!(resolver.resolve(&other).is_ok());
}
