//! Who the person is (issue 5, option 2): an OIDC login at a configured
//! enterprise IdP before a consent page decides anything. The ID token
//! checks specific to a login (the `nonce` sent, the audience being
//! gnapd's client id) on hand-made tokens here; the whole flow against
//! node-oidc-provider below.

use gnapd::authz::assertion::{AssertionError, verify_login_id_token};
use gnapd::proto::httpsig::Algorithm;
use serde_json::json;

use crate::assertion_approval::{AUD, T0, claims, idp};
use crate::support::agent::access_token;

#[test]
fn login_id_token_with_the_nonce_sent_signs_the_subject_in() {
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let mut claims = claims("alice@example.com");
    claims["nonce"] = json!("n-0nce");
    let token = idp.id_token("ES256", claims);
    let user = verify_login_id_token(&token, &idp.issuer, "n-0nce", T0).unwrap();
    assert_eq!(user.subject, "alice@example.com");
}

#[test]
fn login_id_token_with_a_wrong_or_missing_nonce_is_refused() {
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let mut wrong = claims("alice@example.com");
    wrong["nonce"] = json!("another-nonce");
    let token = idp.id_token("ES256", wrong);
    assert_eq!(
        verify_login_id_token(&token, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Nonce)
    );
    let token = idp.id_token("ES256", claims("alice@example.com"));
    assert_eq!(
        verify_login_id_token(&token, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Nonce)
    );
    let mut empty = claims("alice@example.com");
    empty["nonce"] = json!("");
    let token = idp.id_token("ES256", empty);
    assert_eq!(
        verify_login_id_token(&token, &idp.issuer, "", T0),
        Err(AssertionError::Nonce)
    );
}

#[test]
fn login_id_token_for_another_audience_or_expired_or_forged_is_refused() {
    let idp = idp(Algorithm::EcdsaP256Sha256);
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims("alice@example.com");
        c["nonce"] = json!("n-0nce");
        edit(&mut c);
        idp.id_token("ES256", c)
    };
    let other_audience = with(&|c| c["aud"] = json!("some-other-client"));
    assert_eq!(
        verify_login_id_token(&other_audience, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Audience)
    );
    // Several audiences: `azp` must name gnapd (OIDC Core §3.1.3.7).
    let also_ours = with(&|c| c["aud"] = json!(["some-other-client", AUD]));
    assert_eq!(
        verify_login_id_token(&also_ours, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Audience)
    );
    let authorized = with(&|c| {
        c["aud"] = json!(["some-other-client", AUD]);
        c["azp"] = json!(AUD);
    });
    assert!(verify_login_id_token(&authorized, &idp.issuer, "n-0nce", T0).is_ok());
    let other_party = with(&|c| c["azp"] = json!("some-other-client"));
    assert_eq!(
        verify_login_id_token(&other_party, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Audience)
    );
    let expired = with(&|c| c["exp"] = json!(T0 - 3_600));
    assert_eq!(
        verify_login_id_token(&expired, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Expired)
    );
    let other_issuer = with(&|c| c["iss"] = json!("https://evil.example"));
    assert_eq!(
        verify_login_id_token(&other_issuer, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Issuer)
    );
    let good = with(&|_| {});
    let (head, rest) = good.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let mut forged_claims = claims("mallory@example.com");
    forged_claims["nonce"] = json!("n-0nce");
    let forged = format!(
        "{head}.{}.{signature}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            serde_json::to_vec(&forged_claims).unwrap()
        )
    );
    assert_eq!(
        verify_login_id_token(&forged, &idp.issuer, "n-0nce", T0),
        Err(AssertionError::Signature)
    );
}

// --- The login against node-oidc-provider --------------------------------

pub(crate) mod flow {
    use std::path::{Path, PathBuf};

    use gnapd::proto::httpsig::HttpRequest;
    use serde_json::{Value, json};

    use crate::connect_upstream::Provider;
    use crate::interaction_pages::{
        ConsentForm, assert_secure, consent_form, encode, get, get_with_cookie, grant, html,
        post_form_with_cookie,
    };
    use crate::support::agent::Agent;
    use crate::support::server::Server;
    use crate::support::server::start_logged;

    /// The test's browser: its `gnapd_browser` cookie, sent with every
    /// step of a sign-in (a browser's name is its own to choose).
    pub(crate) const BROWSER: &str = "gnapd_browser=bBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBbBb";

    /// gnapd with `[login]` at a node-oidc-provider started for it (its
    /// JWKS fetched from `/jwks` into the file the config names), allowing
    /// `*@example.com`.
    pub(crate) struct Setup {
        pub(crate) provider: Provider,
        pub(crate) server: Server,
        pub(crate) public: String,
        pub(crate) callback: String,
        pub(super) log: PathBuf,
    }

    pub(super) fn setup(dir: &Path) -> Setup {
        setup_with(dir, "")
    }

    /// [`setup`] with `extra` appended to the config file.
    pub(crate) fn setup_with(dir: &Path, extra: &str) -> Setup {
        // The public URL names a port reserved now: the provider must know
        // the redirect URI before gnapd starts.
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let public = format!("http://{}", reserved.local_addr().unwrap());
        drop(reserved);
        let callback = format!("{public}/gnap/login/callback");
        let provider = Provider::start(&callback);
        let jwks = crate::support::http_client::send(
            provider.addr(),
            &HttpRequest::new("GET", format!("{}/jwks", provider.issuer).as_str()),
        );
        assert_eq!(jwks.status, 200);
        let jwks_file = dir.join("idp-jwks.json");
        std::fs::write(&jwks_file, &jwks.body).unwrap();
        let config = dir.join("gnapd.toml");
        std::fs::write(
            &config,
            format!(
                r#"poll_wait = 0
public_url = "{public}"

[login]
kind = "oidc"
issuer = "{issuer}"
authorization_endpoint = "{issuer}/auth"
token_endpoint = "{issuer}/token"
client_id = "gnapd"
client_secret = "gnapd-upstream-secret"
jwks_file = "{}"
subjects = ["*@example.com"]
{extra}"#,
                jwks_file.display(),
                issuer = provider.issuer
            ),
        )
        .unwrap();
        let log = dir.join("gnapd.log");
        let server = start_logged(
            &dir.join("data"),
            &log,
            &[
                "--dev",
                "--require-interaction",
                "--config",
                config.to_str().unwrap(),
            ],
        );
        Setup {
            provider,
            server,
            public,
            callback,
            log,
        }
    }

    impl Setup {
        /// A GET at gnapd of a URL under its public URL.
        pub(crate) fn at_gnapd(&self, url: &str) -> crate::support::http_client::Answer {
            self.at_gnapd_from(url, Some(BROWSER))
        }

        /// A GET at gnapd of a URL under its public URL, from the browser
        /// holding `cookie` (`name=value`), if any.
        pub(crate) fn at_gnapd_from(
            &self,
            url: &str,
            cookie: Option<&str>,
        ) -> crate::support::http_client::Answer {
            let path = url.strip_prefix(&self.public).unwrap();
            get_with_cookie(
                &self.server,
                &format!("{}{path}", self.server.base()),
                cookie,
            )
        }

        /// A pending grant: its page's text and its continuation.
        pub(crate) fn pending(&self, agent: &Agent) -> (String, Value) {
            self.pending_for(agent, json!([{"type": "photo-api", "actions": ["read"]}]))
        }

        /// A pending grant for `access`: its page's text and its
        /// continuation.
        pub(super) fn pending_for(&self, agent: &Agent, access: Value) -> (String, Value) {
            let body = grant(&self.server, agent, access, json!({"start": ["redirect"]}));
            let link = body["interact"]["redirect"].as_str().unwrap();
            let page = get(
                &self.server,
                &link.replace(&self.public, &self.server.base()),
            );
            assert_eq!(page.status, 200);
            (html(&page), body["continue"].clone())
        }

        /// Submits `form` with `decision` and every box ticked, as a browser
        /// holding the login `cookie` (`name=value`), if any.
        pub(super) fn submit(
            &self,
            form: &ConsentForm,
            decision: &str,
            cookie: Option<&str>,
        ) -> crate::support::http_client::Answer {
            let mut request = HttpRequest::new("POST", form.action.as_str());
            request.fields.append(
                "content-type",
                b"application/x-www-form-urlencoded".to_vec(),
            );
            if let Some(cookie) = cookie {
                request.fields.append("cookie", cookie.as_bytes().to_vec());
            }
            let mut fields = vec![("csrf", form.csrf.as_str()), ("decision", decision)];
            fields.extend(form.boxes.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            request.body = fields
                .iter()
                .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes();
            crate::support::http_client::send(self.server.addr, &request)
        }

        /// Signs `login` in from `page` (through the IdP): the page then
        /// shown and the login cookie (`name=value`).
        pub(super) fn sign_in(&self, page: &str, login: &str) -> (String, String) {
            let location = self.sign_in_button(page);
            let back = crate::connect_upstream::sign_in_as(
                &self.provider,
                &location,
                &self.callback,
                login,
            );
            let signed_in = self.at_gnapd(&back);
            assert_eq!(signed_in.status, 200, "{}", html(&signed_in));
            let cookie = signed_in
                .header("set-cookie")
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            (html(&signed_in), cookie)
        }

        /// Presses the page's "Sign in" button in the test's browser
        /// ([`BROWSER`]): the 303's location.
        pub(crate) fn sign_in_button(&self, page: &str) -> String {
            let form = consent_form(&self.server, page);
            let go = post_form_with_cookie(
                &self.server,
                &form.action,
                &[("csrf", &form.csrf), ("decision", "signin")],
                Some(BROWSER),
            );
            assert_eq!(go.status, 303, "{}", html(&go));
            assert_secure(&go);
            go.header("location").unwrap().to_owned()
        }
    }
}

#[test]
fn sign_in_then_approve_issues_tokens_and_records_the_subject() {
    use crate::connect_upstream::{query_param, sign_in_as};
    use crate::interaction_pages::{assert_secure, consent_form, continue_, html, post_form};

    let dir = tempfile::tempdir().unwrap();
    let setup = flow::setup(dir.path());
    let server = &setup.server;
    let agent = crate::support::agent::Agent::new();
    let (text, mut cont) = setup.pending(&agent);
    assert!(text.contains("value=\"signin\""), "{text}");
    assert!(!text.contains("value=\"approve\""), "{text}");
    let form = consent_form(server, &text);

    // Deciding before signing in decides nothing.
    for decision in ["approve", "deny"] {
        let early = form.submit(server, decision, |_, _| true);
        assert_eq!(early.status, 403, "{}", html(&early));
        assert!(html(&early).contains("Sign in first"));
    }
    let still = continue_(server, &agent, &mut cont, None);
    assert!(
        still["access_token"].is_null() && still["continue"].is_object(),
        "{still}"
    );
    // The button needs the form token.
    let forged = post_form(
        server,
        &form.action,
        &[("csrf", "forged"), ("decision", "signin")],
    );
    assert_eq!(forged.status, 403);

    let location = setup.sign_in_button(&text);
    assert!(
        location.starts_with(&format!("{}/auth?", setup.provider.issuer)),
        "{location}"
    );
    assert_eq!(
        query_param(&location, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&location, "nonce").is_some_and(|n| n.len() >= 40));
    let state = query_param(&location, "state").unwrap();
    let back = sign_in_as(
        &setup.provider,
        &location,
        &setup.callback,
        "alice@example.com",
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some(state.as_str()));

    // A wrong state is refused and takes nothing.
    let wrong = setup.at_gnapd(&back.replace(&state, "not-the-state"));
    assert_eq!(wrong.status, 400);
    let signed_in = setup.at_gnapd(&back);
    assert_eq!(signed_in.status, 200, "{}", html(&signed_in));
    let set_cookie = signed_in.header("set-cookie").unwrap().to_owned();
    assert!(
        set_cookie.contains("; Path=/gnap/;") && set_cookie.contains("; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("gnapd_login_"), "{cookie}");
    let text = html(&signed_in);
    assert!(
        text.contains("Signed in as <code>alice@example.com</code>"),
        "{text}"
    );
    assert!(text.contains("value=\"approve\""), "{text}");
    // The state works once.
    assert_eq!(setup.at_gnapd(&back).status, 400);
    // The admin's list shows who is signed in on the pending grant.
    let data = dir.path().join("data");
    let (ok, out, err) = crate::gateway_http::gnapd_admin(&data, &["grants", "pending"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("signed in on its page: alice@example.com"),
        "{out}"
    );

    // The sign-in is bound to the browser that went through it: someone
    // else holding the link and the form token (the agent can open the
    // link itself) but not the cookie decides nothing.
    let form = consent_form(server, &text);
    let elsewhere = setup.submit(&form, "approve", None);
    assert_eq!(elsewhere.status, 403, "{}", html(&elsewhere));
    assert_secure(&elsewhere);
    let forged = setup.submit(&form, "approve", Some(&format!("{cookie}x")));
    assert_eq!(forged.status, 403, "{}", html(&forged));

    let grant_id = form.action.rsplit('/').next().unwrap().to_owned();
    let approved = setup.submit(&form, "approve", Some(&cookie));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    assert!(html(&approved).contains("Access approved"));
    let tokens = continue_(server, &agent, &mut cont, None);
    assert!(tokens["access_token"]["value"].is_string(), "{tokens}");

    // The subject who decided is logged with the decision; codes are not.
    let flow::Setup { server, log, .. } = setup;
    server.stop();
    let logged = std::fs::read_to_string(&log).unwrap();
    let decided = logged
        .lines()
        .find(|l| l.contains("interaction decided"))
        .unwrap_or_else(|| panic!("{logged}"));
    assert!(decided.contains("alice@example.com"), "{decided}");
    let code = query_param(&back, "code").unwrap();
    assert!(!logged.contains(&code), "the code was logged");
    // And recorded with the interaction, past the token pickup.
    let store = gnapd::store::sled::SledStore::open(&dir.path().join("data/store")).unwrap();
    let interaction = gnapd::store::Store::interaction(&store, &gnapd::store::GrantId(grant_id))
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            &interaction.status,
            gnapd::store::InteractionStatus::Finished { by: Some(by), .. } if by == "alice@example.com"
        ),
        "{:?}",
        interaction.status
    );
}

#[test]
fn a_subject_outside_subjects_may_not_decide() {
    use crate::connect_upstream::sign_in_as;
    use crate::interaction_pages::{consent_form, continue_, html};

    let dir = tempfile::tempdir().unwrap();
    let setup = flow::setup(dir.path());
    let server = &setup.server;
    let agent = crate::support::agent::Agent::new();
    let (text, mut cont) = setup.pending(&agent);
    let location = setup.sign_in_button(&text);
    let back = sign_in_as(
        &setup.provider,
        &location,
        &setup.callback,
        "mallory@example.org",
    );
    let refused = setup.at_gnapd(&back);
    assert_eq!(refused.status, 403, "{}", html(&refused));
    assert!(html(&refused).contains("mallory@example.org, who may not approve"));

    let form = consent_form(server, &text);
    for decision in ["approve", "deny"] {
        let attempt = form.submit(server, decision, |_, _| true);
        assert_eq!(attempt.status, 403, "{}", html(&attempt));
    }
    let still = continue_(server, &agent, &mut cont, None);
    assert!(
        still["access_token"].is_null() && still["continue"].is_object(),
        "{still}"
    );
}

#[test]
fn the_user_code_page_asks_for_the_sign_in_too_and_records_a_denial() {
    use crate::interaction_pages::{consent_form, continue_, grant, html, post_form};

    let dir = tempfile::tempdir().unwrap();
    let setup = flow::setup(dir.path());
    let server = &setup.server;
    let agent = crate::support::agent::Agent::new();
    let body = grant(
        server,
        &agent,
        json!([{"type": "photo-api", "actions": ["read"]}]),
        json!({"start": ["user_code_uri"]}),
    );
    let code = body["interact"]["user_code_uri"]["code"].as_str().unwrap();
    let mut cont = body["continue"].clone();
    let page = post_form(
        server,
        &format!("{}/gnap/device", server.base()),
        &[("code", code)],
    );
    assert_eq!(page.status, 200, "{}", html(&page));
    let text = html(&page);
    assert!(text.contains("value=\"signin\""), "{text}");
    assert!(!text.contains("value=\"approve\""), "{text}");

    let (text, cookie) = setup.sign_in(&text, "bob@example.com");
    assert!(
        text.contains("Signed in as <code>bob@example.com</code>"),
        "{text}"
    );
    let denied = setup.submit(&consent_form(server, &text), "deny", Some(&cookie));
    assert_eq!(denied.status, 200, "{}", html(&denied));
    assert!(html(&denied).contains("Access denied"));
    let answer = continue_(server, &agent, &mut cont, None);
    assert!(answer["access_token"].is_null(), "{answer}");
}

#[test]
fn a_key_a_subject_connected_is_offered_to_that_subject_on_later_grants_only() {
    use crate::interaction_pages::{attrs, consent_form, continue_, html, post_form_with_cookie};

    const KEY: &str = "alice-tracker-key-93be";
    let dir = tempfile::tempdir().unwrap();
    let upstream = crate::support::mcp_upstream::Upstream::start_requiring(
        dir.path(),
        "authorization",
        &format!("Bearer {KEY}"),
    );
    // No enterprise-held credential: a person must connect the upstream.
    let setup = flow::setup_with(
        dir.path(),
        &format!(
            r#"
[[upstream]]
name = "tracker"
url = "{}"
connect = {{ kind = "api_key", header = "Authorization", scheme = "Bearer" }}
"#,
            upstream.url()
        ),
    );
    let server = &setup.server;
    let access = json!([{"type": "mcp", "identifier": "tracker", "actions": ["initialize", "notifications/initialized", "tools/list"]}]);
    let approve = |page: &str, cookie: &str, choice: (&str, &str)| {
        let form = consent_form(server, page);
        let mut fields = vec![
            ("csrf", form.csrf.as_str()),
            ("decision", "approve"),
            choice,
        ];
        fields.extend(form.boxes.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        post_form_with_cookie(server, &form.action, &fields, Some(cookie))
    };

    // Alice connects a key on her first grant. Nobody is offered anything
    // before signing in, and she has nothing earlier yet.
    let (page, _) = setup.pending_for(&crate::support::agent::Agent::new(), access.clone());
    assert!(!page.contains("type=\"radio\""), "{page}");
    let (page, alice) = setup.sign_in(&page, "alice@example.com");
    assert!(!page.contains("type=\"radio\""), "{page}");
    assert!(page.contains(" required>"), "the key is required: {page}");
    let approved = approve(&page, &alice, ("connect.tracker", KEY));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    // With a login, the person is the subject, not the browser: no cookie.
    assert!(
        approved
            .headers
            .iter()
            .all(|(n, v)| n != "set-cookie" || !v.starts_with("gnapd_connected=")),
        "{:?}",
        approved.headers
    );

    // Her next grant, signed in again (as from another browser): offered.
    let agent = crate::support::agent::Agent::new();
    let (page, mut cont) = setup.pending_for(&agent, access.clone());
    assert!(
        !page.contains("type=\"radio\""),
        "not before signing in: {page}"
    );
    let (page, alice) = setup.sign_in(&page, "alice@example.com");
    let offered = attrs(&page, "name=\"use.tracker\"", "value");
    assert_eq!(offered.len(), 2, "{page}");
    let id = offered[0].clone();
    assert!(page.contains(&format!("value=\"{id}\" checked")), "{page}");
    assert!(!page.contains(" required>"), "{page}");

    // Bob is offered nothing of hers, and cannot pick it by its id.
    let bobs_agent = crate::support::agent::Agent::new();
    let (bobs_page, mut bobs_cont) = setup.pending_for(&bobs_agent, access.clone());
    let (bobs_page, bob) = setup.sign_in(&bobs_page, "bob@example.com");
    assert!(!bobs_page.contains("type=\"radio\""), "{bobs_page}");
    let refused = approve(&bobs_page, &bob, ("use.tracker", &id));
    assert_eq!(refused.status, 400, "{}", html(&refused));
    assert!(html(&refused).contains("cannot be used here"));
    let still = continue_(server, &bobs_agent, &mut bobs_cont, None);
    assert!(still["access_token"].is_null(), "{still}");

    // Alice picks it: her token reaches the upstream with her key.
    let approved = approve(&page, &alice, ("use.tracker", &id));
    assert_eq!(approved.status, 200, "{}", html(&approved));
    let tokens = continue_(server, &agent, &mut cont, None);
    let token = access_token(&tokens).to_owned();
    let before = upstream.requests().len();
    let mut session = crate::gateway_http::Session::new(server, &agent, Some(token), "tracker");
    session.initialize();
    let calls = &upstream.requests()[before..];
    assert!(!calls.is_empty());
    for (_, headers) in calls {
        assert!(
            headers
                .iter()
                .any(|(n, v)| n == "authorization" && *v == format!("Bearer {KEY}"))
        );
    }

    // The set records its owner: the issuer and the subject.
    let flow::Setup {
        server, provider, ..
    } = setup;
    server.stop();
    let store = gnapd::store::sled::SledStore::open(&dir.path().join("data/store")).unwrap();
    let set = gnapd::store::Store::credential_set(&store, &id)
        .unwrap()
        .unwrap();
    assert_eq!(
        set.owner.as_deref(),
        Some(format!("{}#alice@example.com", provider.issuer).as_str())
    );
}

#[test]
fn a_sign_in_started_by_another_browser_does_not_sign_this_one_in() {
    use crate::connect_upstream::sign_in_as;

    let dir = tempfile::tempdir().unwrap();
    let setup = flow::setup(dir.path());
    let agent = crate::support::agent::Agent::new();
    let (text, _) = setup.pending(&agent);
    // The sign-in is started by the test's browser; the IdP sends another
    // browser (or one without gnapd's cookie) back with the code.
    let location = setup.sign_in_button(&text);
    let back = sign_in_as(
        &setup.provider,
        &location,
        &setup.callback,
        "alice@example.com",
    );
    let other = "gnapd_browser=oOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOoOo";
    for cookie in [None, Some(other)] {
        let refused = setup.at_gnapd_from(&back, cookie);
        assert_eq!(
            refused.status,
            400,
            "{}",
            crate::interaction_pages::html(&refused)
        );
        assert!(refused.header("set-cookie").is_none(), "nobody signed in");
    }
    // Used up: the starting browser cannot finish it afterwards either.
    assert_eq!(setup.at_gnapd(&back).status, 400);
}
