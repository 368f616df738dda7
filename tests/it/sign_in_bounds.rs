//! Sign-ins under way are bounded per grant, per address and in all, and
//! past a bound only the oldest under it goes (issue 14): anyone holding a
//! pending grant's page can start sign-ins, and must not push out a
//! person's sign-in under way on another grant by starting many. Against
//! node-oidc-provider: the person's sign-in, started first, still
//! finishes after the flood.

use std::net::IpAddr;

use gnapd::proto::httpsig::HttpRequest;

use crate::connect_upstream::sign_in_as;
use crate::interaction_pages::{consent_form, encode, html};
use crate::login_oidc::flow;
use crate::support::agent::Agent;
use crate::support::http_client::send_from;

/// Presses "Sign in" on `page` from address `from` in the browser holding
/// `cookie`: the status (a 303 to the IdP when a sign-in started).
fn start_sign_in(setup: &flow::Setup, page: &str, from: IpAddr, cookie: &str) -> u16 {
    let form = consent_form(&setup.server, page);
    let mut request = HttpRequest::new("POST", form.action.as_str());
    request.fields.append("cookie", cookie.as_bytes().to_vec());
    request.fields.append(
        "content-type",
        b"application/x-www-form-urlencoded".to_vec(),
    );
    request.body = format!("csrf={}&decision=signin", encode(&form.csrf)).into_bytes();
    send_from(from, setup.server.addr, &request).status
}

#[test]
fn sign_ins_started_in_bulk_on_another_grant_or_from_another_address_do_not_push_out_a_persons() {
    let dir = tempfile::tempdir().unwrap();
    // Small bounds, so that a few dozen starts cross the global one.
    let setup = flow::setup_with(
        dir.path(),
        "\n[sign_ins]\nmax = 16\nper_grant = 2\nper_address = 4\n",
    );
    // The person's sign-in, under way at the IdP.
    let (page, _) = setup.pending(&Agent::new());
    let location = setup.sign_in_button(&page);

    let attacker = "gnapd_browser=aAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAa";
    // 40 sign-ins on one grant of the attacker's, from 40 addresses.
    let (own, _) = setup.pending(&Agent::new());
    for i in 0..40u8 {
        let from = IpAddr::from([127, 0, 1, i + 1]);
        assert_eq!(start_sign_in(&setup, &own, from, attacker), 303);
    }
    // 20 sign-ins from one address, each on a grant of its own.
    let from: IpAddr = "127.0.2.1".parse().unwrap();
    for _ in 0..20 {
        let (page, _) = setup.pending(&Agent::new());
        assert_eq!(start_sign_in(&setup, &page, from, attacker), 303);
    }

    let back = sign_in_as(
        &setup.provider,
        &location,
        &setup.callback,
        "alice@example.com",
    );
    let signed_in = setup.at_gnapd(&back);
    assert_eq!(signed_in.status, 200, "{}", html(&signed_in));
    assert!(signed_in.header("set-cookie").is_some(), "not signed in");
}
