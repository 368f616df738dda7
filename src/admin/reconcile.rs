//! Keeping this node's upstream registry in step with the store, when the
//! store is shared with other nodes (PostgreSQL): an admin command sent to
//! any node writes the store, and every other node rebuilds from it what
//! it built at start (`cli::serve`): the gateway's upstreams, each one's
//! enterprise-held set, and the sets the AS maps new tokens to.
//!
//! The store says when to ([`crate::store::Store::upstream_changes`]: a
//! notification sent in the writing transaction, and every reconnection of
//! the node's listener); [`RECONCILE_EVERY`] is the fallback for news that
//! never came. Upstreams of the config file and flags are never removed
//! here, and a credential the file gives is never changed: the file wins,
//! as at start.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::{Admin, AdminError};
use crate::upstream::server::{Upstream, enterprise_set_id};

/// How often a node rebuilds its registry from a shared store with no news
/// of a change: with the credential-set cache's maximum age (500 ms), the
/// bound on how long a lost notification leaves a node behind (under 1 s).
pub const RECONCILE_EVERY: Duration = Duration::from_millis(400);

/// What one reconciliation changed, by upstream name.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Upstreams this node did not serve and now does.
    pub added: Vec<String>,
    /// Upstreams whose transport or enterprise-held set changed.
    pub changed: Vec<String>,
    /// Upstreams this node served and no longer does.
    pub removed: Vec<String>,
}

impl Reconciled {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Admin {
    /// Makes this node's upstreams, their enterprise-held sets and the AS's
    /// assignments what the store says. A store that cannot be read
    /// changes nothing (the next call tries again).
    pub fn reconcile(&self) -> Result<Reconciled, AdminError> {
        let _turn = self.turn();
        self.reconcile_held()
    }

    /// Holds off every other change to the registry (admin commands,
    /// reconciliations) until dropped.
    pub(super) fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Self::reconcile`], under a [`Self::turn`] the caller holds.
    pub(super) fn reconcile_held(&self) -> Result<Reconciled, AdminError> {
        let wanted = self.wanted()?;
        let current: HashMap<String, Arc<Upstream>> = self
            .gateway
            .upstreams()
            .into_iter()
            .map(|u| (u.name.clone(), u))
            .collect();
        let mut done = Reconciled::default();
        for name in current.keys() {
            if !wanted.contains_key(name) {
                // As `upstream remove` does: no new token mapped to its
                // set, no call reaches it, its children stopped.
                self.assignments.clear(name);
                self.gateway.remove_upstream(name);
                done.removed.push(name.clone());
            }
        }
        for (name, upstream) in wanted {
            match current.get(&name) {
                Some(serving) if **serving == upstream => continue,
                Some(serving) => {
                    if serving.transport != upstream.transport {
                        // Children of the old command are not the new one's.
                        self.gateway.remove_upstream(&name);
                    }
                    done.changed.push(name.clone());
                }
                None => done.added.push(name.clone()),
            }
            // A set going away stops being handed out before the gateway
            // drops it; a new one is handed out once the gateway has it.
            let set = upstream.credential_set.clone();
            if set.is_none() {
                self.assignments.clear(&name);
            }
            self.gateway.put_upstream(upstream);
            if let Some(id) = set {
                self.assignments.assign(&name, &id);
            }
        }
        done.removed.sort();
        if !done.is_empty() {
            tracing::info!(added = ?done.added, changed = ?done.changed, removed = ?done.removed,
                "upstreams brought in step with the store");
        }
        Ok(done)
    }

    /// The upstreams this node should serve: the configured ones, then the
    /// stored ones (a stored one named as a configured one is ignored),
    /// each with its enterprise-held set if the store has one (the file's
    /// own credential stays as enrolled at start).
    fn wanted(&self) -> Result<BTreeMap<String, Upstream>, AdminError> {
        let mut wanted: BTreeMap<String, Upstream> = self
            .gateway
            .upstreams()
            .into_iter()
            .filter(|u| self.configured.contains(&u.name))
            .map(|u| (u.name.clone(), (*u).clone()))
            .collect();
        let records = self
            .store
            .upstreams()
            .map_err(AdminError::store("reading upstreams"))?;
        for record in records {
            if self.configured.contains(&record.name) {
                continue;
            }
            match Upstream::from_record(&record) {
                Ok(upstream) => {
                    wanted.insert(record.name.clone(), upstream);
                }
                Err(e) => tracing::warn!(error = %e, "a stored upstream is not usable; skipped"),
            }
        }
        for (name, upstream) in &mut wanted {
            if self.configured_credentials.contains(name) {
                continue;
            }
            let id = enterprise_set_id(name);
            let stored = self
                .store
                .credential_set_shared(&id)
                .map_err(AdminError::store(format!("reading credential set `{id}`")))?;
            upstream.credential_set = stored.map(|_| id);
        }
        Ok(wanted)
    }
}

/// Brings `admin`'s node in step with the store each time `changes` moves,
/// and every [`RECONCILE_EVERY`]; ends when the store stops sending (it
/// closed). Runs the store calls on blocking threads.
pub async fn keep_in_step(admin: Arc<Admin>, mut changes: tokio::sync::watch::Receiver<u64>) {
    let mut tick = tokio::time::interval(RECONCILE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Said once when reconciling starts failing, and once when it works
    // again: a database down for a minute is not 150 warnings.
    let mut failing = false;
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {}
        }
        let admin = admin.clone();
        let outcome = tokio::task::spawn_blocking(move || admin.reconcile()).await;
        match outcome {
            Ok(Ok(_)) if failing => {
                failing = false;
                tracing::info!("upstreams in step with the store again");
            }
            Ok(Err(e)) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot bring the upstreams in step with the store; retrying");
            }
            _ => {}
        }
    }
}
