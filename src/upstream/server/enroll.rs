//! Sealing the configured credentials into the store at serve start, as
//! each upstream's enterprise-held credential set.

use super::*;

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
pub fn enroll(
    upstreams: &mut [Upstream],
    store: &dyn Store,
    key: &MasterKey,
    now: i64,
) -> Result<(), EnrollError> {
    for upstream in upstreams {
        let id = enterprise_set_id(&upstream.name);
        if let Credential::OAuth2(grant) = &mut upstream.credential {
            let seed = grant.seed_digest();
            if kept_oauth2_state(store, key, &id, &seed)? {
                upstream.credential = Credential::None;
                upstream.credential_set = Some(id);
                continue;
            }
            grant.seed = Some(seed);
        }
        let Some((kind, header_name, secret)) = upstream.credential.to_sealable() else {
            continue;
        };
        let sealed = key.seal(&id, &secret).map_err(|source| EnrollError::Seal {
            name: upstream.name.clone(),
            source,
        })?;
        store
            .put_credential_set(&CredentialSetRecord {
                v: RECORD_VERSION,
                id: id.clone(),
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
            })?;
        upstream.credential = Credential::None;
        upstream.credential_set = Some(id);
    }
    Ok(())
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
        .credential_set(id)
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
