//! Credential sets a person connected while approving a grant: sealing,
//! claiming, forgetting and offering them again.

use super::Gateway;
use super::errors::SetWriteError;
use crate::store::{CredentialSetRecord, RECORD_VERSION};
use crate::upstream::connect::PERSON_SET_PREFIX;
use crate::upstream::credential::Credential;

impl Gateway {
    /// Seals `credential` under the master key as a new person-connected
    /// credential set for `upstream` (id `person:<random>`), owned by
    /// `owner` when a signed-in person connected it
    /// (`crate::upstream::earlier`), and returns its id.
    pub(crate) async fn store_person_set(
        &self,
        upstream: &str,
        credential: &Credential,
        owner: Option<String>,
    ) -> Result<String, SetWriteError> {
        let key = self.master_key.clone().ok_or(SetWriteError::NoMasterKey)?;
        let (kind, header_name, secret) = credential
            .to_sealable()
            .ok_or(SetWriteError::NothingToSeal)?;
        let id = format!("{PERSON_SET_PREFIX}{}", crate::random::text()?);
        let set = CredentialSetRecord {
            v: RECORD_VERSION,
            id: id.clone(),
            upstream: upstream.to_owned(),
            kind,
            header_name,
            sealed: key.seal(&id, &secret)?,
            created_at: self.clock.now(),
            owner,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.put_credential_set(&set)).await??;
        tracing::info!(upstream, set = %id, "a person connected an upstream");
        Ok(id)
    }

    /// Removes a person-connected set that no decision took (the grant was
    /// decided by someone else meanwhile).
    pub(crate) async fn drop_person_set(&self, id: &str) {
        let store = self.store.clone();
        let id = id.to_owned();
        let _ = tokio::task::spawn_blocking(move || store.remove_credential_set(&id)).await;
    }

    /// Removes person-connected set `id` at its person's request (a page's
    /// "Forget"): every token mapped to it stops working, as when the admin
    /// removes it. Whether it was there.
    pub(crate) async fn forget_person_set(&self, id: &str) -> Result<bool, SetWriteError> {
        let store = self.store.clone();
        let id = id.to_owned();
        Ok(tokio::task::spawn_blocking(move || store.remove_credential_set(&id)).await??)
    }

    /// Records `owner` on person-connected set `id` when it has none yet:
    /// a set connected through an upstream's sign-in before the person
    /// signed in belongs to whoever then approves with it. Before the
    /// decision that maps tokens to it, so no refresh writes it meanwhile.
    pub(crate) async fn claim_person_set(
        &self,
        id: &str,
        owner: &str,
    ) -> Result<(), SetWriteError> {
        let store = self.store.clone();
        let (id, owner) = (id.to_owned(), owner.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut set = store.credential_set(&id)?.ok_or(SetWriteError::Gone)?;
            if set.owner.is_none() {
                set.owner = Some(owner);
                store.put_credential_set(&set)?;
            }
            Ok::<_, SetWriteError>(())
        })
        .await?
    }

    /// The person-connected sets `person` connected for `upstream`, as a
    /// consent page offers them (`crate::upstream::earlier::offered`).
    pub(crate) async fn earlier_sets(
        &self,
        upstream: &str,
        person: &crate::upstream::earlier::Person<'_>,
    ) -> Vec<crate::upstream::earlier::Earlier> {
        use crate::upstream::earlier::Person;
        let store = self.store.clone();
        let sets = match person {
            // A browser names at most a few sets: read those.
            Person::Browser(ids) => {
                let ids = ids.to_vec();
                tokio::task::spawn_blocking(move || {
                    ids.iter()
                        .filter_map(|id| store.credential_set(id).ok().flatten())
                        .collect::<Vec<_>>()
                })
                .await
            }
            // A signed-in person's sets: a scan, bounded by the number of
            // sets the server holds, on a page load only.
            Person::Owner(_) => {
                tokio::task::spawn_blocking(move || store.credential_sets().unwrap_or_default())
                    .await
            }
        };
        let sets = sets.unwrap_or_default();
        crate::upstream::earlier::offered(&sets, upstream, *person, self.clock.now())
    }

    /// The cookie value listing `ids` (`crate::upstream::earlier`), sealed
    /// under the master key; `None` without one.
    pub(crate) fn seal_earlier_cookie(&self, ids: &[String]) -> Option<String> {
        crate::upstream::earlier::seal_cookie(self.master_key.as_deref()?, ids)
    }

    /// The set ids a cookie value lists, if the master key sealed it.
    pub(crate) fn open_earlier_cookie(&self, value: &str) -> Vec<String> {
        self.master_key
            .as_deref()
            .map(|key| crate::upstream::earlier::open_cookie(key, value))
            .unwrap_or_default()
    }
}
