//! Sealing the configured credentials into the store at serve start, as
//! each upstream's enterprise-held credential set.

use std::time::Duration;

use super::*;
use crate::clock::Clock;
use crate::upstream::refresh_lease::{
    POLL_FIRST, holder, lease_seconds, next_pause, refresh_lease,
};

/// Why [`enroll`] could not seal an upstream's credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollError {
    /// Sealing failed.
    #[error("upstream `{name}`: {source}")]
    Seal {
        /// The upstream.
        name: String,
        /// Why.
        source: VaultError,
    },
    /// Storing the sealed set failed.
    #[error("upstream `{name}`: storing its credential set: {source}")]
    Store {
        /// The upstream.
        name: String,
        /// Why.
        source: StoreError,
    },
    /// Another process held the set's refresh lease for longer than a
    /// lease lasts: a node whose clock runs far behind this one's, or one
    /// configured with a much longer upstream timeout. Starting anyway
    /// could write the configured seed over the tokens it refreshes.
    #[error(
        "upstream `{name}`: another node held the lease of credential set `{id}` for {seconds} s, \
         longer than a refresh may take here; check the nodes' clocks and upstream_timeout, then start again"
    )]
    LeaseBusy {
        /// The upstream.
        name: String,
        /// The set.
        id: String,
        /// How long this start waited.
        seconds: i64,
    },
    /// Taking the set's refresh lease failed in the store.
    #[error("taking the lease of credential set `{id}`: {source}")]
    Lease {
        /// The set.
        id: String,
        /// Why.
        source: StoreError,
    },
    /// No randomness to draw this process's lease holder from.
    #[error("upstream `{name}`: no randomness for a lease holder")]
    NoLeaseHolder {
        /// The upstream.
        name: String,
    },
    /// Reading the set stored at an earlier start failed.
    #[error("reading credential set `{id}`: {source}")]
    Read {
        /// The set.
        id: String,
        /// Why.
        source: StoreError,
    },
}

/// The id of the enterprise-held credential set for `upstream`.
pub fn enterprise_set_id(upstream: &str) -> String {
    format!("enterprise:{upstream}")
}

/// Seals each upstream's configured credential under `key` into `store` as
/// its enterprise-held credential set (replacing the one from an earlier
/// start), and drops the plaintext: afterwards `credential` is `None` and
/// `credential_set` names the set. Upstreams with kind `none` need no set.
///
/// Each set is read and written under its refresh lease (the gateway's,
/// whose length follows from `upstream_timeout`): another node refreshing
/// the set meanwhile finishes first, and its refreshed tokens are what this
/// start finds, and keeps, rather than what it writes over.
pub fn enroll(
    upstreams: &mut [Upstream],
    store: &dyn Store,
    key: &MasterKey,
    clock: &dyn Clock,
    upstream_timeout: Duration,
) -> Result<(), EnrollError> {
    let lease_length = lease_seconds(upstream_timeout);
    for upstream in upstreams {
        if upstream.credential == Credential::None {
            continue;
        }
        let id = enterprise_set_id(&upstream.name);
        let lease = SetLease::take(store, clock, &upstream.name, &id, lease_length)?;
        let sealed = seal_into_set(upstream, store, key, &id, clock.now());
        lease.release(store);
        sealed?;
        upstream.credential = Credential::None;
        upstream.credential_set = Some(id);
    }
    Ok(())
}

/// Writes `upstream`'s configured credential into set `id`, unless the set
/// holds the refreshed state of this same `oauth2` configuration. The
/// caller holds the set's lease.
fn seal_into_set(
    upstream: &mut Upstream,
    store: &dyn Store,
    key: &MasterKey,
    id: &str,
    now: i64,
) -> Result<(), EnrollError> {
    if let Credential::OAuth2(grant) = &mut upstream.credential {
        let seed = grant.seed_digest();
        if kept_oauth2_state(store, key, id, &seed)? {
            return Ok(());
        }
        grant.seed = Some(seed);
    }
    let Some((kind, header_name, secret)) = upstream.credential.to_sealable() else {
        return Ok(());
    };
    let sealed = key.seal(id, &secret).map_err(|source| EnrollError::Seal {
        name: upstream.name.clone(),
        source,
    })?;
    store
        .put_credential_set(&CredentialSetRecord {
            v: RECORD_VERSION,
            id: id.to_owned(),
            upstream: upstream.name.clone(),
            kind,
            header_name,
            sealed,
            created_at: now,
            owner: None,
        })
        .map_err(|source| EnrollError::Store {
            name: upstream.name.clone(),
            source,
        })
}

/// A set's refresh lease, held by this process while enrolling the set.
struct SetLease {
    name: String,
    holder: &'static str,
}

impl SetLease {
    /// Takes the lease of set `id` (of `upstream`), waiting while another
    /// holder has it: polling as the gateway's waiters do, for at most
    /// `length` seconds and one more (a lease is live through its last
    /// whole second), by which time a holder that died has lost it.
    fn take(
        store: &dyn Store,
        clock: &dyn Clock,
        upstream: &str,
        id: &str,
        length: i64,
    ) -> Result<Self, EnrollError> {
        let holder = holder().ok_or_else(|| EnrollError::NoLeaseHolder {
            name: upstream.to_owned(),
        })?;
        let name = refresh_lease(id);
        let started = clock.now();
        let mut pause = POLL_FIRST;
        let mut said_so = false;
        loop {
            let now = clock.now();
            let taken = store
                .take_lease(&name, holder, now, now.saturating_add(length))
                .map_err(|source| EnrollError::Lease {
                    id: id.to_owned(),
                    source,
                })?;
            if taken {
                return Ok(Self { name, holder });
            }
            let waited = now.saturating_sub(started);
            if waited > length {
                return Err(EnrollError::LeaseBusy {
                    name: upstream.to_owned(),
                    id: id.to_owned(),
                    seconds: waited,
                });
            }
            if !said_so {
                said_so = true;
                tracing::info!(
                    upstream,
                    set = id,
                    lease = %name,
                    at_most_seconds = length + 1,
                    "another node is refreshing the upstream's credential set; start waits for it"
                );
            }
            std::thread::sleep(pause);
            pause = next_pause(pause);
        }
    }

    /// Lets the lease go: a failed release only delays another node's
    /// refresh until the lease lapses.
    fn release(self, store: &dyn Store) {
        if let Err(e) = store.release_lease(&self.name, self.holder) {
            tracing::warn!(lease = %self.name, error = %e, "releasing a credential set's lease failed");
        }
    }
}

/// Whether set `id` already holds the refreshed state of the `oauth2`
/// credential configured as `seed`: then it is kept, not reset to the
/// configured (possibly rotated-away) tokens.
pub(super) fn kept_oauth2_state(
    store: &dyn Store,
    key: &MasterKey,
    id: &str,
    seed: &str,
) -> Result<bool, EnrollError> {
    let Some(set) = store
        .credential_set_uncached(id)
        .map_err(|source| EnrollError::Read {
            id: id.to_owned(),
            source,
        })?
    else {
        return Ok(false);
    };
    if set.kind != CredentialKind::OAuth2 {
        return Ok(false);
    }
    let Ok(opened) = key.open(id, &set.sealed) else {
        return Ok(false);
    };
    Ok(matches!(
        Credential::from_opened(set.kind, None, &opened),
        Ok(Credential::OAuth2(stored)) if stored.seed.as_deref() == Some(seed)
    ))
}
