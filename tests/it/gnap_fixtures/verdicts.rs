//! gnapd's AS judges each fixture as the file says: the positives granted
//! (200), each negative refused with exactly its stated error.

use super::make::{FILE, fixture_as, request_from_json as request};
use crate::support::agent::error_code;
use crate::support::paths::vector;

#[test]
fn gnapd_grants_every_positive_gnap_fixture_and_refuses_each_negative_with_its_error() {
    let file = vector(FILE);
    let fixtures = file["fixtures"].as_array().unwrap();
    let by_name = |name: &str| {
        fixtures
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
    };
    let mut refused = 0;
    for fixture in fixtures {
        let name = fixture["name"].as_str().unwrap();
        // A fresh AS for each: a fixed nonce or proof is accepted only once.
        let core = fixture_as(file["created"].as_i64().unwrap());
        if let Some(first) = fixture["after"].as_str() {
            let first = by_name(first);
            core.clock.set(first["as_time"].as_i64().unwrap());
            let (reply, body) = core.send(&request(first));
            assert_eq!(reply.status, 200, "{name}: its grant: {body}");
        }
        core.clock.set(fixture["as_time"].as_i64().unwrap());
        let (reply, body) = core.send(&request(fixture));
        let expected = &fixture["expected"];
        assert_eq!(
            u64::from(reply.status),
            expected["status"].as_u64().unwrap(),
            "{name}: {body}"
        );
        if let Some(code) = expected["error"].as_str() {
            assert_eq!(error_code(&body), code, "{name}: {body}");
            refused += 1;
        }
    }
    assert!(refused >= 10, "only {refused} negative fixtures");
}
