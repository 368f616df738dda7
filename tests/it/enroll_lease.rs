//! A node that starts while another node refreshes an upstream's `oauth2`
//! credential set waits for that refresh (the set's lease in the store)
//! before it decides whether to seal the configured seed, and so keeps the
//! refreshed tokens instead of writing the seed over them (issue 20).
//!
//! `enroll` runs on a thread of its own; a tracing layer on that thread says
//! when it starts waiting for the lease, so the tests know it reached the
//! point where it would have written, without sleeping.

use std::sync::mpsc;
use std::time::Duration;

use gnapd::clock::ManualClock;
use gnapd::store::{CredentialKind, CredentialSetRecord, RECORD_VERSION, Store};
use gnapd::upstream::credential::Credential;
use gnapd::upstream::oauth2::OAuth2Credential;
use gnapd::upstream::refresh_lease::{lease_seconds, refresh_lease};
use gnapd::upstream::server::{EnrollError, Upstream, enroll, enterprise_set_id};
use gnapd::upstream::vault::MasterKey;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::postgres::Schema;

const T0: i64 = 1_700_000_000;
const UPSTREAM: &str = "github";
/// The upstream timeout both nodes are configured with.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// The node refreshing the set while this one starts.
const OTHER_NODE: &str = "the-node-refreshing";
/// Longer than anything here takes: a bound against a hang, not a proof.
const NO_HANG: Duration = Duration::from_secs(60);

/// What the enrolling thread reports.
enum Progress {
    /// `enroll` found the lease held and waits for it.
    Waiting,
    /// `enroll` returned.
    Finished(Result<Vec<Upstream>, EnrollError>),
}

/// Reports [`Progress::Waiting`] on the event `enroll` logs when it
/// starts waiting for a set's lease (the one info event with a `lease`).
struct SaysWhenWaiting(mpsc::Sender<Progress>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SaysWhenWaiting {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() == tracing::Level::INFO && metadata.fields().field("lease").is_some() {
            let _ = self.0.send(Progress::Waiting);
        }
    }
}

fn master_key() -> MasterKey {
    MasterKey::from_text(&gnapd::proto::b64::encode_url(&[7u8; 32])).unwrap()
}

/// The `oauth2` credential both nodes have in their config.
fn configured() -> OAuth2Credential {
    OAuth2Credential::from_json(
        r#"{"access_token":"at-configured","refresh_token":"rt-configured","expires_at":1,
            "token_endpoint":"http://127.0.0.1:9/token","client_id":"gnapd-gw"}"#,
    )
    .unwrap()
}

/// `enroll` of the configured upstream on `store` as it runs at start,
/// with `clock`, reporting on `progress`.
fn enroll_reporting(store: &dyn Store, clock: &ManualClock, progress: mpsc::Sender<Progress>) {
    let mut upstreams = vec![
        Upstream::new(
            UPSTREAM,
            "http://127.0.0.1:9/mcp",
            Credential::OAuth2(Box::new(configured())),
        )
        .unwrap(),
    ];
    let subscriber = tracing_subscriber::registry().with(SaysWhenWaiting(progress.clone()));
    let outcome = tracing::subscriber::with_default(subscriber, || {
        enroll(
            &mut upstreams,
            store,
            &master_key(),
            clock,
            UPSTREAM_TIMEOUT,
        )
    });
    let _ = progress.send(Progress::Finished(outcome.map(|()| upstreams)));
}

/// Waits until `enroll` waits for the lease; fails if it finished first.
fn until_waiting(progress: &mpsc::Receiver<Progress>) {
    match progress.recv_timeout(NO_HANG) {
        Ok(Progress::Waiting) => {}
        Ok(Progress::Finished(outcome)) => panic!(
            "enroll finished while another node held the set's lease: {:?}",
            outcome.map(|_| ())
        ),
        Err(e) => panic!("enroll neither waited nor finished: {e}"),
    }
}

/// What `enroll` returned, once it did.
fn finished(progress: &mpsc::Receiver<Progress>) -> Result<Vec<Upstream>, EnrollError> {
    loop {
        match progress.recv_timeout(NO_HANG) {
            Ok(Progress::Waiting) => continue,
            Ok(Progress::Finished(outcome)) => return outcome,
            Err(e) => panic!("enroll did not finish: {e}"),
        }
    }
}

/// The `oauth2` state stored in set `id`, opened.
fn stored(store: &dyn Store, id: &str) -> Option<OAuth2Credential> {
    let set = store.credential_set_uncached(id).unwrap()?;
    let opened = master_key().open(id, &set.sealed).unwrap();
    match Credential::from_opened(set.kind, None, &opened).unwrap() {
        Credential::OAuth2(grant) => Some(*grant),
        other => panic!("set {id} holds {other:?}"),
    }
}

/// What the other node's refresh of the configured seed stores: new access
/// and refresh tokens (the configured refresh token is rotated away), the
/// seed kept.
fn refreshed_by_the_other_node() -> OAuth2Credential {
    let mut seeded = configured();
    seeded.seed = Some(seeded.seed_digest());
    let answer = br#"{"access_token":"at-refreshed","token_type":"Bearer","expires_in":3600,
                      "refresh_token":"rt-rotated"}"#;
    seeded.refreshed(200, answer, T0).unwrap()
}

/// The other node's write of its refreshed set.
fn store_refreshed(store: &dyn Store, id: &str, grant: &OAuth2Credential) {
    store
        .put_credential_set(&CredentialSetRecord {
            v: RECORD_VERSION,
            id: id.to_owned(),
            upstream: UPSTREAM.to_owned(),
            kind: CredentialKind::OAuth2,
            header_name: None,
            sealed: master_key().seal(id, &grant.to_json()).unwrap(),
            created_at: T0,
            owner: None,
        })
        .unwrap();
}

/// The race, with `starting` the store of the node that starts and `other`
/// that of the node refreshing (one store for a backend of one node).
fn a_start_waits_for_another_nodes_refresh_and_keeps_the_refreshed_tokens(
    starting: &dyn Store,
    other: &dyn Store,
) {
    let id = enterprise_set_id(UPSTREAM);
    let lease = refresh_lease(&id);
    let clock = ManualClock::at(T0);
    // The other node's refresh is under way: it holds the lease and has
    // not stored its answer yet (the set is not there: a first start).
    let until = T0 + lease_seconds(UPSTREAM_TIMEOUT);
    assert!(other.take_lease(&lease, OTHER_NODE, T0, until).unwrap());
    let (report, progress) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| enroll_reporting(starting, &clock, report));
        until_waiting(&progress);
        assert_eq!(
            stored(other, &id),
            None,
            "nothing written while the lease is held"
        );
        let refreshed = refreshed_by_the_other_node();
        store_refreshed(other, &id, &refreshed);
        other.release_lease(&lease, OTHER_NODE).unwrap();

        let upstreams = finished(&progress).unwrap();
        assert_eq!(upstreams[0].credential_set.as_deref(), Some(id.as_str()));
        assert_eq!(upstreams[0].credential, Credential::None);
        let kept = stored(starting, &id).unwrap();
        assert_eq!(kept, refreshed, "the refreshed tokens, not the seed");
        assert_eq!(kept.refresh_token.unwrap().expose(), "rt-rotated");
    });
    // The lease is free again: the starting node released it.
    assert!(other.take_lease(&lease, OTHER_NODE, T0, until).unwrap());
}

#[test]
fn a_start_on_memory_waits_for_a_refresh_in_flight_and_keeps_the_refreshed_tokens() {
    let store = gnapd::store::memory::MemoryStore::new();
    a_start_waits_for_another_nodes_refresh_and_keeps_the_refreshed_tokens(&store, &store);
}

#[test]
fn a_start_on_sled_waits_for_a_refresh_in_flight_and_keeps_the_refreshed_tokens() {
    let sled = crate::store_contract::TempSled::new();
    a_start_waits_for_another_nodes_refresh_and_keeps_the_refreshed_tokens(&*sled, &*sled);
}

#[test]
fn a_start_on_postgres_waits_for_a_refresh_in_flight_and_keeps_the_refreshed_tokens() {
    // Two nodes on one schema of the shared test server.
    let schema = Schema::new();
    let starting = gnapd::store::postgres::PostgresStore::open(&schema.parsed()).unwrap();
    let other = gnapd::store::postgres::PostgresStore::open(&schema.parsed()).unwrap();
    a_start_waits_for_another_nodes_refresh_and_keeps_the_refreshed_tokens(&starting, &other);
    // The connections go before the schema is dropped under them.
    starting.close().unwrap();
    other.close().unwrap();
}

/// `enroll` on `store` while another node holds the set's lease until
/// `until` (from `T0`), the clock moved on by `later` once it waits.
fn enroll_with_the_clock_moved_on(
    store: &dyn Store,
    until: i64,
    later: i64,
) -> Result<Vec<Upstream>, EnrollError> {
    let id = enterprise_set_id(UPSTREAM);
    let clock = ManualClock::at(T0);
    assert!(
        store
            .take_lease(&refresh_lease(&id), OTHER_NODE, T0, until)
            .unwrap()
    );
    let (report, progress) = mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| enroll_reporting(store, &clock, report));
        until_waiting(&progress);
        clock.advance(later);
        finished(&progress)
    })
}

#[test]
fn a_start_fails_when_another_node_holds_the_lease_past_its_length_and_writes_nothing() {
    let store = gnapd::store::memory::MemoryStore::new();
    let length = lease_seconds(UPSTREAM_TIMEOUT);
    // A node with a much longer upstream timeout, or a clock far ahead.
    let outcome = enroll_with_the_clock_moved_on(&store, T0 + 100 * length, length + 2);
    let id = enterprise_set_id(UPSTREAM);
    assert!(
        matches!(&outcome, Err(EnrollError::LeaseBusy { id: busy, .. }) if *busy == id),
        "{:?}",
        outcome.map(|_| ())
    );
    assert_eq!(stored(&store, &id), None);
}

#[test]
fn a_start_takes_the_lease_of_a_node_that_died_holding_it_once_it_lapses() {
    let store = gnapd::store::memory::MemoryStore::new();
    let length = lease_seconds(UPSTREAM_TIMEOUT);
    // Past the lease's last whole second, through which it is live.
    enroll_with_the_clock_moved_on(&store, T0 + length, length + 1).unwrap();
    let seeded = stored(&store, &enterprise_set_id(UPSTREAM)).unwrap();
    assert_eq!(seeded.access_token.expose(), "at-configured");
    assert_eq!(seeded.seed, Some(configured().seed_digest()));
}
