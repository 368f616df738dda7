//! Access tokens of an external OAuth AS (`[external_oauth_as]`): a Bearer
//! or DPoP token the store does not know is introspected there (RFC 7662),
//! and an active one for this resource becomes an OAuth token record, which
//! [`super::oauth::open`] and [`super::conclude`] then decide on as on any
//! of gnapd's own (scheme, DPoP proof, rights, step-up, credential).
//!
//! The AS's answer is bounded in time (`timeout_seconds`, its turn among
//! the [`IN_FLIGHT`] introspections under way included) and size; an AS
//! that fails, is slow or answers nonsense gets the agent a 503, never a
//! verdict on its token. The questions one client address causes that find
//! no active token are rate-limited (`unknown_tokens_per_address`): tokens
//! are free to invent, and each unknown one costs the AS a request.

mod cache;
pub(crate) mod reading;
mod settings;
mod transport;

use std::sync::Arc;

pub use settings::{DEFAULT_TIMEOUT, ExternalAsEntry, ExternalAsSettings};

use self::cache::Cache;
use self::reading::Answer;
use self::transport::{HttpIntrospect, Introspect};
use super::oauth::{self, Scheme};
use super::{KeyCache, Opened, Refusal};
use crate::http_client::UpstreamClient;
use crate::proto::address::AddressKey;
use crate::proto::httpsig::HttpRequest;
use crate::store::rate::{Buckets, RateLimit};
use crate::store::{Store, TokenHash};
use crate::upstream::server::Upstream;

/// Most introspections under way at once; a call past them waits for a
/// turn (within its timeout), so a flood of unknown tokens costs the AS
/// no more than this many requests at a time.
pub(crate) const IN_FLIGHT: usize = 32;

/// The external AS, as the gateway asks it.
#[derive(Debug)]
pub(crate) struct ExternalAs {
    issuer: String,
    timeout: std::time::Duration,
    transport: Box<dyn Introspect>,
    cache: Cache,
    turns: tokio::sync::Semaphore,
    /// Introspections that found no active token, by client address.
    addresses: std::sync::Mutex<Buckets>,
}

impl ExternalAs {
    /// The AS of `settings`, asked through `client`.
    pub(crate) fn new(settings: ExternalAsSettings, client: UpstreamClient) -> Self {
        let (issuer, timeout, seconds, per_address) = (
            settings.issuer.clone(),
            settings.timeout,
            settings.cache_seconds,
            settings.per_address,
        );
        Self::with_transport(
            issuer,
            timeout,
            seconds,
            per_address,
            Box::new(HttpIntrospect::new(client, settings)),
        )
    }

    fn with_transport(
        issuer: String,
        timeout: std::time::Duration,
        cache_seconds: u64,
        per_address: RateLimit,
        transport: Box<dyn Introspect>,
    ) -> Self {
        Self {
            issuer,
            timeout,
            transport,
            cache: Cache::new(cache_seconds, cache::CAPACITY),
            turns: tokio::sync::Semaphore::new(IN_FLIGHT),
            addresses: std::sync::Mutex::new(Buckets::new(per_address)),
        }
    }

    /// Its issuer identifier (listed in the protected resource metadata).
    pub(crate) fn issuer(&self) -> &str {
        &self.issuer
    }

    /// [`super::open`] for a Bearer or DPoP token the store does not have:
    /// its record as the AS describes it, checked for this call's scheme,
    /// resource and DPoP proof. At `upstream` it uses the operator-held
    /// credential set (the configured `credential`), as no person mapped it
    /// to another.
    pub(crate) async fn open(
        &self,
        store: &dyn Store,
        keys: &KeyCache,
        request: &HttpRequest,
        upstream: &Upstream,
        from: AddressKey,
        now: i64,
    ) -> Result<Opened, Refusal> {
        let (scheme, value) = oauth::presented(request).ok_or(Refusal::Token)?;
        if scheme == Scheme::Gnap {
            return Err(Refusal::Token);
        }
        let hash = TokenHash::of(value);
        // One of gnapd's own tokens was already refused on its merits.
        if store.token_shared(&hash)?.is_some() {
            return Err(oauth::invalid(scheme));
        }
        let answer = self.answer(value, hash, from, now).await?;
        let resource = request.target_uri.split('?').next().unwrap_or_default();
        let mut record =
            reading::view(&answer, &self.issuer, resource, value, now).map_err(|why| {
                tracing::debug!(reason = %why, "an external access token is refused");
                oauth::invalid(scheme)
            })?;
        if let Some(set) = &upstream.credential_set {
            record.credential_sets = vec![(upstream.name.clone(), set.clone())];
        }
        oauth::open(store, keys, request, Arc::new(record), scheme, value, now)
    }

    /// What the AS says of `token`: kept, or asked now.
    async fn answer(
        &self,
        token: &str,
        hash: TokenHash,
        from: AddressKey,
        now: i64,
    ) -> Result<Answer, Refusal> {
        if let Some(kept) = self.cache.get(&hash, now) {
            return Ok(kept);
        }
        // An address whose questions keep finding no token is refused
        // before the AS is asked. Only such questions are charged (below):
        // with `cache_seconds = 0` an agent's own active token is asked
        // about on every call, and must not use up its address's share.
        let address = format!("{from:?}");
        if let Ok(addresses) = self.addresses.lock()
            && let Err(retry_after) = addresses.would_take(&address, now)
        {
            return Err(Refusal::UnknownTokensLimited { retry_after });
        }
        let answer = self.ask(token, hash, now).await;
        if !matches!(answer, Ok(Answer::Active(_)))
            && let Ok(mut addresses) = self.addresses.lock()
        {
            let _ = addresses.take(&address, now);
        }
        answer
    }

    /// Asks the AS about `token` (within a turn and the timeout), keeping
    /// an active answer.
    async fn ask(&self, token: &str, hash: TokenHash, now: i64) -> Result<Answer, Refusal> {
        let asked = async {
            let _turn = self
                .turns
                .acquire()
                .await
                .map_err(|_| Refusal::Introspection)?;
            self.transport.introspect(token).await.map_err(|e| {
                tracing::warn!(error = %e, "the external AS did not answer an introspection");
                Refusal::Introspection
            })
        };
        let body = tokio::time::timeout(self.timeout, asked)
            .await
            .map_err(|_| {
                tracing::warn!("the external AS did not answer an introspection in time");
                Refusal::Introspection
            })??;
        let answer = reading::read(&body).map_err(|e| {
            tracing::warn!(error = %e, "the external AS's introspection answer is unusable");
            Refusal::Introspection
        })?;
        self.cache.put(hash, &answer, now);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;

    use super::transport::{Pending, Unreachable};
    use super::*;

    /// An AS that answers `body` (or nothing, ever), counting the calls.
    #[derive(Debug)]
    struct Fake {
        body: Option<&'static str>,
        calls: Arc<AtomicUsize>,
    }

    impl Introspect for Fake {
        fn introspect<'a>(&'a self, _token: &'a str) -> Pending<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let body = self.body;
            Box::pin(async move {
                match body {
                    Some(b) => Ok(Bytes::from_static(b.as_bytes())),
                    None => {
                        std::future::pending::<()>().await;
                        Err(Unreachable::Status(0))
                    }
                }
            })
        }
    }

    fn external(body: Option<&'static str>, cache_seconds: u64) -> (ExternalAs, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let fake = Fake {
            body,
            calls: calls.clone(),
        };
        let external = ExternalAs::with_transport(
            "https://as.example".into(),
            Duration::from_millis(50),
            cache_seconds,
            WIDE,
            Box::new(fake),
        );
        (external, calls)
    }

    const ACTIVE: &str = r#"{"active": true, "exp": 1000}"#;

    /// A per-address limit no test here reaches but the one about it.
    const WIDE: RateLimit = RateLimit {
        burst: 100_000,
        per_minute: 100_000,
    };

    /// An AS that knows the tokens starting with `real` and no other.
    #[derive(Debug)]
    struct Knows {
        calls: Arc<AtomicUsize>,
    }

    impl Introspect for Knows {
        fn introspect<'a>(&'a self, token: &'a str) -> Pending<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let body: &'static str = if token.starts_with("real") {
                ACTIVE
            } else {
                r#"{"active": false}"#
            };
            Box::pin(async move { Ok(Bytes::from_static(body.as_bytes())) })
        }
    }

    #[tokio::test]
    async fn one_address_inventing_tokens_is_held_to_its_rate_and_others_are_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let limit = RateLimit {
            burst: 3,
            per_minute: 60,
        };
        let external = ExternalAs::with_transport(
            "https://as.example".into(),
            Duration::from_millis(50),
            0,
            limit,
            Box::new(Knows {
                calls: calls.clone(),
            }),
        );
        let stranger = AddressKey::of("203.0.113.7".parse().unwrap());
        for i in 0..3 {
            let token = format!("invented-{i}");
            let answer = external.answer(&token, TokenHash::of(&token), stranger, 0);
            assert!(
                matches!(answer.await, Ok(Answer::Inactive)),
                "within the burst"
            );
        }
        let fourth = external.answer("invented-3", TokenHash::of("invented-3"), stranger, 0);
        assert!(matches!(
            fourth.await,
            Err(Refusal::UnknownTokensLimited { retry_after: 1 })
        ));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "the AS was not asked a fourth time"
        );
        // An agent's own token, asked about on every call (no cache), is
        // never charged, however often it calls.
        let agent = AddressKey::of("198.51.100.1".parse().unwrap());
        for _ in 0..10 {
            let answer = external.answer("real-token", TokenHash::of("real-token"), agent, 0);
            assert!(matches!(answer.await, Ok(Answer::Active(_))));
        }
        // A second later the stranger has one more question.
        let later = external.answer("invented-4", TokenHash::of("invented-4"), stranger, 1);
        assert!(matches!(later.await, Ok(Answer::Inactive)));
        assert_eq!(calls.load(Ordering::SeqCst), 14);
    }

    #[tokio::test]
    async fn with_cache_seconds_zero_every_call_asks_the_as() {
        let (external, calls) = external(Some(ACTIVE), 0);
        for _ in 0..3 {
            let hash = TokenHash::of("t");
            assert!(matches!(
                external.answer("t", hash, AddressKey::Unknown, 0).await,
                Ok(Answer::Active(_))
            ));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_cached_answer_spares_the_as() {
        let (external, calls) = external(Some(ACTIVE), 60);
        for _ in 0..3 {
            external
                .answer("t", TokenHash::of("t"), AddressKey::Unknown, 0)
                .await
                .unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// An AS that answers after a pause, recording the most requests it
    /// ever had under way at once.
    #[derive(Debug, Default)]
    struct Slow {
        under_way: AtomicUsize,
        most: AtomicUsize,
        calls: AtomicUsize,
    }

    impl Introspect for Arc<Slow> {
        fn introspect<'a>(&'a self, _token: &'a str) -> Pending<'a> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let now = self.under_way.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.under_way.fetch_sub(1, Ordering::SeqCst);
                Ok(Bytes::from_static(br#"{"active": false}"#))
            })
        }
    }

    #[tokio::test]
    async fn a_flood_of_unknown_tokens_never_has_more_than_in_flight_introspections_under_way() {
        let slow = Arc::new(Slow::default());
        let external = Arc::new(ExternalAs::with_transport(
            "https://as.example".into(),
            Duration::from_secs(30),
            0,
            WIDE,
            Box::new(slow.clone()),
        ));
        let flood = 4 * IN_FLIGHT;
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..flood {
            let external = external.clone();
            calls.spawn(async move {
                let token = format!("made-up-{i}");
                let hash = TokenHash::of(&token);
                external.answer(&token, hash, AddressKey::Unknown, 0).await
            });
        }
        while let Some(done) = calls.join_next().await {
            assert!(matches!(done.unwrap(), Ok(Answer::Inactive)));
        }
        // Every token was asked about (none dropped), never more than the
        // cap at once, and the cap was reached (so the flood did press on it).
        assert_eq!(slow.calls.load(Ordering::SeqCst), flood);
        assert_eq!(slow.most.load(Ordering::SeqCst), IN_FLIGHT);
    }

    #[tokio::test]
    async fn a_silent_or_nonsense_as_is_unavailable_not_a_verdict() {
        let (silent, _) = external(None, 0);
        assert!(matches!(
            silent
                .answer("t", TokenHash::of("t"), AddressKey::Unknown, 0)
                .await,
            Err(Refusal::Introspection)
        ));
        let (nonsense, _) = external(Some("<html>"), 0);
        assert!(matches!(
            nonsense
                .answer("t", TokenHash::of("t"), AddressKey::Unknown, 0)
                .await,
            Err(Refusal::Introspection)
        ));
    }
}
