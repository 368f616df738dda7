//! Who the person is (issue 5, option 2): an OIDC login at a configured
//! enterprise IdP before a consent page decides anything. The ID token
//! checks specific to a login (the `nonce` sent, the audience being
//! gnapd's client id) on hand-made tokens here; the whole flow against
//! node-oidc-provider below.

use gnapd::authz::assertion::{AssertionError, verify_login_id_token};
use gnapd::proto::httpsig::Algorithm;
use serde_json::json;

use crate::assertion_approval::{AUD, T0, claims, idp};

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
    let also_ours = with(&|c| c["aud"] = json!(["some-other-client", AUD]));
    assert!(verify_login_id_token(&also_ours, &idp.issuer, "n-0nce", T0).is_ok());
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
