//! `gnapd compare`'s attack suite against a real World (gnapd instances on
//! loopback, the shipped upstream): every attack against every variant,
//! each outcome checked against what gnapd must do. A test fails if an
//! attack gnapd must block succeeds, and also if an attack that works by
//! design (a Bearer token is replayable) stops being reported as working:
//! the table in the report must stay honest either way.

use std::path::Path;

use gnapd::compare::attacks::attempt;
use gnapd::compare::meter::Tap;
use gnapd::compare::report::Outcome::{self, Blocked, NotApplicable, Succeeded};
use gnapd::compare::variant::{Attack, Binding, Identification, Variant};
use gnapd::compare::world::World;

/// What gnapd must show for `attack` against `variant`.
fn expected(attack: Attack, variant: Variant) -> Outcome {
    let bearer = variant.binding() == Binding::Bearer;
    let dpop = variant.binding() == Binding::DpopEs256;
    let headless = variant == Variant::OAuthClientCredentials;
    match attack {
        // Bearer: whoever holds the token (and the captured request) is
        // the client. A signature's nonce and a DPoP proof's jti are spent.
        Attack::Replay | Attack::StolenToken if bearer => Succeeded,
        // Only the RFC 9421 signature covers the body (Content-Digest).
        Attack::BodyTampering if bearer || dpop => Succeeded,
        // No front channel: no code, no interact_ref, no refresh token.
        Attack::CodeInjection | Attack::MixUp | Attack::RefreshReuse if headless => NotApplicable,
        // A client named by a URL costs the AS a fetch and a cached
        // document per authorization request: only the cache's global
        // size (evicting others' documents) bounds it, not the stranger.
        // GNAP's grants waiting for a person (100 per address) and DCR's
        // registrations (10 per address in a burst) meet their bounds.
        Attack::RegistrationFlooding if variant.identification() == Identification::Cimd => {
            Succeeded
        }
        _ => Blocked,
    }
}

/// Runs `attack` against every variant on a fresh World and checks each
/// outcome against [`expected`].
fn check(attack: Attack) {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(Path::new(env!("CARGO_BIN_EXE_gnapd")), dir.path()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let tap = Tap::new();
    let mut wrong = Vec::new();
    for variant in Variant::GNAPD {
        let result = runtime.block_on(attempt(&world, variant, attack, &tap));
        tap.drain();
        assert_eq!(result.variant, variant.id());
        assert!(!result.evidence.is_empty(), "{}", variant.id());
        println!(
            "{} × {}: {:?}: {}",
            attack.id(),
            variant.id(),
            result.outcome,
            result.evidence
        );
        if result.outcome != expected(attack, variant) {
            wrong.push(format!(
                "{}: expected {:?}, observed {:?}: {}",
                variant.id(),
                expected(attack, variant),
                result.outcome,
                result.evidence
            ));
        }
    }
    assert!(wrong.is_empty(), "{}:\n{}", attack.id(), wrong.join("\n"));
}

#[test]
fn compare_attack_replay_of_a_captured_call() {
    check(Attack::Replay);
}

#[test]
fn compare_attack_stolen_token_without_its_key() {
    check(Attack::StolenToken);
}

#[test]
fn compare_attack_body_tampering_by_a_proxy() {
    check(Attack::BodyTampering);
}

#[test]
fn compare_attack_routing_headers_changed_by_a_proxy() {
    check(Attack::RoutingHeaderTampering);
}

#[test]
fn compare_attack_token_for_alpha_at_beta() {
    check(Attack::Audience);
}

#[test]
fn compare_attack_code_and_interact_ref_injection() {
    check(Attack::CodeInjection);
}

#[test]
fn compare_attack_as_mix_up() {
    check(Attack::MixUp);
}

#[test]
fn compare_attack_refresh_and_rotated_token_reuse() {
    check(Attack::RefreshReuse);
}

#[test]
fn compare_attack_cuckoos_token_across_two_ases() {
    check(Attack::CuckooToken);
}

#[test]
fn compare_attack_flooding_state_per_unauthenticated_request() {
    check(Attack::RegistrationFlooding);
}
