//! A read-only consistency check of a sled store: what "no grant is
//! half-written" means, tested after a crash (the kill -9 campaign) and
//! usable on any copy of a data dir.
//!
//! Every record must decode, and the indexes must agree with the records
//! in both directions: a grant's continuation token leads back to it, a
//! token's grant lists it and its management token leads to it, an
//! interaction's grant exists and its user code leads to it. A token a
//! grant lists may be gone (revoked, rotated away, its credential set
//! removed); nothing else may be missing. The writes that keep these true
//! are each one sled transaction, so a crash must never break them, except
//! for a brand-new grant (`create`): its tokens and indexes go in before its
//! record, and a crash between them leaves them without a grant. Those are
//! counted as [`Checked::unfinished`], not as damage: never acknowledged,
//! they lead nowhere a client can go.

use std::collections::HashSet;

use ::sled::Tree;

use super::{SledStore, backend, grant_id, token_hash};
use crate::store::codec::decode;
use crate::store::{
    CredentialSetRecord, GrantRecord, InstanceRecord, InteractionRecord, ResourceSetRecord,
    StoreError, TokenHash, TokenRecord, UpstreamRecord,
};

/// What [`SledStore::check`] read, and what it found wrong.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Grants read.
    pub grants: usize,
    /// Access tokens read.
    pub tokens: usize,
    /// Interactions read.
    pub interactions: usize,
    /// Tokens and index entries of a grant whose record was never written
    /// (a creation a crash cut short).
    pub unfinished: usize,
    /// Every inconsistency, in words (empty: the store is whole).
    pub problems: Vec<String>,
}

fn entries(tree: &Tree) -> impl Iterator<Item = Result<(::sled::IVec, ::sled::IVec), StoreError>> {
    tree.iter().map(|e| e.map_err(|e| backend("sled scan", e)))
}

impl SledStore {
    /// Reads every record and index and reports what does not agree. An
    /// `Err` only for a failing disk; damage is reported in
    /// [`Checked::problems`]. A scan, for tests and offline checks: it
    /// takes no lock, so concurrent writers may make it see a moment that
    /// never existed as a whole.
    pub fn check(&self) -> Result<Checked, StoreError> {
        let mut out = Checked::default();
        let mut grant_ids = HashSet::new();
        let mut listed: HashSet<TokenHash> = HashSet::new();
        for entry in entries(&self.grants) {
            let (id, bytes) = entry?;
            out.grants += 1;
            let grant: GrantRecord = match decode(&bytes) {
                Ok(g) => g,
                Err(e) => {
                    out.problems.push(format!("grant {id:?}: {e}"));
                    continue;
                }
            };
            if grant.id.0.as_bytes() != id.as_ref() {
                out.problems
                    .push(format!("grant {:?} stored under another id", grant.id));
            }
            if let Some(c) = &grant.continuation
                && self
                    .continuations
                    .get(&c.token.0[..])
                    .map_err(|e| backend("sled read", e))?
                    .as_deref()
                    != Some(id.as_ref())
            {
                out.problems.push(format!(
                    "grant {:?}: its continuation token does not lead to it",
                    grant.id
                ));
            }
            listed.extend(grant.tokens.iter().copied());
            grant_ids.insert(grant.id.0);
        }
        for entry in entries(&self.continuations) {
            let (token, id) = entry?;
            let id = grant_id(&id)?;
            if !grant_ids.contains(&id.0) {
                out.unfinished += 1;
                continue;
            }
            let leads_back = self
                .grants
                .get(id.0.as_bytes())
                .map_err(|e| backend("sled read", e))?
                .and_then(|b| decode::<GrantRecord>(&b).ok())
                .and_then(|g| g.continuation)
                .is_some_and(|c| c.token.0[..] == token[..]);
            if !leads_back {
                out.problems.push(format!(
                    "continuation index entry for {id:?} leads to no grant continued by it"
                ));
            }
        }
        for entry in entries(&self.tokens) {
            let (hash, bytes) = entry?;
            out.tokens += 1;
            let hash = token_hash(&hash)?;
            let token: TokenRecord = match decode(&bytes) {
                Ok(t) => t,
                Err(e) => {
                    out.problems.push(format!("token {hash:?}: {e}"));
                    continue;
                }
            };
            if !grant_ids.contains(&token.grant.0) {
                out.unfinished += 1;
                continue;
            }
            if !listed.contains(&hash) {
                out.problems.push(format!(
                    "token {hash:?} is not listed by a grant {:?}",
                    token.grant
                ));
            }
            if self
                .manage
                .get(&token.manage.0[..])
                .map_err(|e| backend("sled read", e))?
                .as_deref()
                != Some(&hash.0[..])
            {
                out.problems.push(format!(
                    "token {hash:?}: its management token does not lead to it"
                ));
            }
        }
        for entry in entries(&self.manage) {
            let (manage, hash) = entry?;
            let token = self
                .tokens
                .get(&hash[..])
                .map_err(|e| backend("sled read", e))?
                .and_then(|b| decode::<TokenRecord>(&b).ok());
            if token
                .as_ref()
                .is_some_and(|t| !grant_ids.contains(&t.grant.0))
            {
                out.unfinished += 1;
                continue;
            }
            let leads_back = token.is_some_and(|t| t.manage.0[..] == manage[..]);
            if !leads_back {
                out.problems
                    .push("a management index entry leads to no token managed by it".into());
            }
        }
        for entry in entries(&self.interactions) {
            let (id, bytes) = entry?;
            out.interactions += 1;
            let interaction: InteractionRecord = match decode(&bytes) {
                Ok(i) => i,
                Err(e) => {
                    out.problems.push(format!("interaction {id:?}: {e}"));
                    continue;
                }
            };
            if !grant_ids.contains(&interaction.grant.0) {
                out.problems.push(format!(
                    "interaction of {:?} without its grant",
                    interaction.grant
                ));
            }
        }
        for entry in entries(&self.user_codes) {
            let (code, id) = entry?;
            let leads_back = self
                .interactions
                .get(&id[..])
                .map_err(|e| backend("sled read", e))?
                .and_then(|b| decode::<InteractionRecord>(&b).ok())
                .and_then(|i| i.user_code)
                .is_some_and(|c| c.0[..] == code[..]);
            if !leads_back {
                out.problems
                    .push("a user code index entry leads to no interaction with that code".into());
            }
        }
        self.decodes::<InstanceRecord>(&self.instances, &mut out.problems)?;
        self.decodes::<CredentialSetRecord>(&self.credential_sets, &mut out.problems)?;
        self.decodes::<UpstreamRecord>(&self.upstreams, &mut out.problems)?;
        self.decodes::<ResourceSetRecord>(&self.resource_sets, &mut out.problems)?;
        self.decodes::<crate::store::OAuthClientRecord>(&self.oauth_clients, &mut out.problems)?;
        self.decodes::<crate::store::SpentRefresh>(&self.spent_refresh, &mut out.problems)?;
        Ok(out)
    }

    /// Reports every record of `tree` that does not decode as `T`.
    fn decodes<T: crate::store::codec::Versioned>(
        &self,
        tree: &Tree,
        problems: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        for entry in entries(tree) {
            let (key, bytes) = entry?;
            if let Err(e) = decode::<T>(&bytes) {
                problems.push(format!("{} {key:?}: {e}", T::KIND));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Continuation, GrantId, GrantState, KeyBinding, RECORD_VERSION, Store as _};

    fn hash(n: u8) -> TokenHash {
        TokenHash([n; 32])
    }

    fn grant(id: &str, tokens: &[TokenHash], cont: TokenHash) -> GrantRecord {
        let request = crate::proto::gnap::parse_grant_request(
            br#"{"access_token":{"access":["x"]},"client":"inst"}"#,
        )
        .unwrap();
        GrantRecord {
            v: RECORD_VERSION,
            id: GrantId(id.into()),
            state: GrantState::Approved,
            client: key(),
            instance_id: None,
            request,
            tokens: tokens.to_vec(),
            continuation: Some(Continuation {
                token: cont,
                wait: 5,
                issued_at: 1,
            }),
            created_at: 1,
            expires_at: 4_000_000_000,
            oauth: None,
        }
    }

    fn key() -> KeyBinding {
        KeyBinding {
            thumbprint: "tp".into(),
            jwk: serde_json::json!({"kty": "OKP"}),
            method: crate::proto::gnap::ProofKind::HttpSig,
        }
    }

    fn token(grant: &str, manage: TokenHash) -> TokenRecord {
        TokenRecord {
            v: RECORD_VERSION,
            grant: GrantId(grant.into()),
            label: None,
            access: Vec::new(),
            key: key(),
            manage,
            bearer: false,
            issued_at: 1,
            expires_at: 4_000_000_000,
            credential_sets: Vec::new(),
            oauth: None,
        }
    }

    #[test]
    fn a_store_written_through_its_methods_checks_whole_a_creation_cut_short_is_unfinished_and_a_half_written_grant_is_not_whole()
     {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        store
            .create_grant(
                &grant("g1", &[hash(1), hash(2)], hash(9)),
                &[
                    (hash(1), token("g1", hash(11))),
                    (hash(2), token("g1", hash(12))),
                ],
            )
            .unwrap();
        // A revoked token stays listed by its grant: that is whole.
        assert!(store.revoke_token(&hash(12)).unwrap());
        let whole = store.check().unwrap();
        assert_eq!((whole.grants, whole.tokens), (1, 1));
        assert_eq!(whole.problems, Vec::<String>::new());

        // What a creation cut short by a crash leaves (tokens and indexes
        // written, the grant's record not): unfinished, not damage.
        store
            .tokens
            .insert(
                &hash(3).0[..],
                crate::store::codec::encode(&token("g2", hash(13))).unwrap(),
            )
            .unwrap();
        store
            .manage
            .insert(&hash(13).0[..], &hash(3).0[..])
            .unwrap();
        store
            .continuations
            .insert(&hash(8).0[..], &b"g2"[..])
            .unwrap();
        let cut = store.check().unwrap();
        assert_eq!(cut.problems, Vec::<String>::new());
        assert_eq!(
            cut.unfinished, 3,
            "token, management and continuation entries"
        );

        // What damage looks like: a grant that exists without its
        // continuation index, a token its existing grant does not list,
        // undecodable records.
        store
            .tokens
            .insert(
                &hash(4).0[..],
                crate::store::codec::encode(&token("g1", hash(14))).unwrap(),
            )
            .unwrap();
        store
            .manage
            .insert(&hash(14).0[..], &hash(4).0[..])
            .unwrap();
        store.continuations.remove(&hash(9).0[..]).unwrap();
        store.upstreams.insert(b"u", &b"{not json"[..]).unwrap();
        store
            .spent_refresh
            .insert(&hash(21).0[..], &b"{not json"[..])
            .unwrap();
        let torn = store.check().unwrap();
        assert_eq!(torn.problems.len(), 4, "{:?}", torn.problems);
        assert!(
            torn.problems
                .iter()
                .any(|p| p.starts_with("spent refresh token")),
            "{:?}",
            torn.problems
        );
    }
}
