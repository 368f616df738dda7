//! The admin interface: changes a running server's upstreams and
//! enterprise-held credential sets (`gnapd upstream …`, `gnapd credentials
//! …`), and lets a local admin decide pending grants (`gnapd grants …`):
//! the way to approve on a server with no browser at all.
//!
//! sled lets one process open a database, so the commands never open the
//! data dir themselves: they send one [`Command`] over the Unix socket the
//! server keeps in its data dir ([`socket`]), and this module carries it
//! out against the live gateway, AS assignments and store. File permissions
//! on the socket (0600, in a 0700 data dir) are the admin's authentication.
//!
//! Upstreams from the config file, and credentials given there or by flag,
//! are the file's: the commands refuse to change them (the next start would
//! undo the change). Upstreams added here are stored and come back at the
//! next start. Each upstream has at most one enterprise-held set, with id
//! `enterprise:<upstream>` ([`enterprise_set_id`]); replacing it keeps the
//! tokens mapped to it working with the new secret (rotating an upstream
//! key needs no new grants), removing it revokes them. Person-connected
//! sets (`person:…`, made on consent pages) are listed with their owner and
//! removed by id, which stops every token mapped to them.
//!
//! On a store several nodes share (PostgreSQL), a command sent to one node
//! reaches the others through the store: each node brings its registry in
//! step with it when told of a change, and every [`RECONCILE_EVERY`] in any
//! case ([`reconcile`]); a command first brings its own node in step, so it
//! acts on what any node did before it.
//!
//! `{"op":"store_stats"}` ([`Command::StoreStats`]) answers
//! `{"tables": {"<name>": {"records": N, "bytes": B}, …}}`: every store
//! table (sled tree) by name, and every in-memory table that grows with
//! requests as `memory:<what>` (replay budgets, caches, rate limits,
//! sessions, sign-ins under way). `gnapd compare` reads it to report the
//! state each protocol leaves on the server; no CLI command sends it.

mod error;
pub mod operator_link;
mod reconcile;
pub mod socket;
mod store_stats;

pub use error::AdminError;
pub use reconcile::{RECONCILE_EVERY, Reconciled, keep_in_step};

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::authz::{Assignments, AuthServer, FinishAction};
use crate::clock::Clock;
use crate::gateway::forward::Gateway;
use crate::http::push::Pusher;
use crate::store::{CredentialSetRecord, RECORD_VERSION, Store, UpstreamRecord};
use crate::upstream::Secret;
use crate::upstream::connect::PERSON_SET_PREFIX;
use crate::upstream::credential::Credential;
use crate::upstream::server::{Upstream, enterprise_set_id};
use crate::upstream::vault::MasterKey;

/// One admin request, as the socket carries it (a JSON object per line).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Adds an upstream: a Streamable HTTP URL, or `stdio:COMMAND ARG…`.
    UpstreamAdd {
        /// Its name.
        name: String,
        /// Its URL or stdio command line.
        url: String,
    },
    /// Lists every upstream.
    UpstreamList,
    /// Removes an upstream added here, its credential set and the tokens
    /// mapped to that set.
    UpstreamRemove {
        /// Its name.
        name: String,
    },
    /// Seals a credential (`bearer:…`, `header:Name:…`, `basic:USER:PASS`)
    /// as the upstream's enterprise-held set, replacing any.
    CredentialsAdd {
        /// The upstream.
        upstream: String,
        /// The credential spec; never echoed.
        credential: Secret,
    },
    /// Lists the credential sets (never their secrets).
    CredentialsList,
    /// Removes the upstream's enterprise-held set and revokes the tokens
    /// mapped to it.
    CredentialsRemove {
        /// The upstream.
        upstream: String,
    },
    /// Removes a person-connected set (`person:…`, from the list): the
    /// tokens of every grant that connected or picked it stop working, and
    /// no consent page offers it again.
    CredentialsRemoveSet {
        /// The set's id.
        id: String,
    },
    /// Lists the grants waiting for a person.
    GrantsPending,
    /// Approves a pending grant, by user code or grant id.
    GrantsApprove {
        /// The user code or grant id.
        code: String,
    },
    /// Denies a pending grant, by user code or grant id.
    GrantsDeny {
        /// The user code or grant id.
        code: String,
    },
    /// A fresh one-time operator sign-in link (the previous one stops
    /// working).
    OperatorLink,
    /// Signs every operator's browser out and voids the sign-in link.
    OperatorSignOut,
    /// Records and bytes of every store table and in-memory table.
    StoreStats,
}

/// What the admin interface needs to decide pending grants.
pub struct Interaction {
    /// The AS whose grants are decided.
    pub auth: Arc<AuthServer>,
    /// Makes `push` finishes.
    pub pusher: Arc<Pusher>,
    /// The runtime pushes run on (commands run on a blocking thread).
    pub runtime: tokio::runtime::Handle,
    /// The configured login (`[login]`): who has signed in on a pending
    /// grant's page, shown beside it.
    pub login: Option<Arc<crate::authz::login::Login>>,
    /// The operator's sign-in, and the file in the data dir that holds its
    /// newest link.
    pub operator: Option<(Arc<crate::authz::operator::Operator>, std::path::PathBuf)>,
}

/// What the admin interface changes, and what it must leave alone.
pub struct Admin {
    gateway: Arc<Gateway>,
    store: Arc<dyn Store>,
    assignments: Assignments,
    master_key: Option<Arc<MasterKey>>,
    clock: Arc<dyn Clock>,
    /// Upstreams defined in the config file or by flag.
    configured: BTreeSet<String>,
    /// Upstreams whose credential the config file or a flag gives.
    configured_credentials: BTreeSet<String>,
    /// Deciding pending grants, when set up.
    interaction: Option<Interaction>,
    /// The running server, once assembled (after the admin socket opens):
    /// `store_stats` reads its in-memory tables.
    app: Option<Arc<std::sync::OnceLock<Arc<crate::http::App>>>>,
    /// Whether other nodes write the store too (so the registry may be
    /// behind it).
    shared: bool,
    /// Taken by whatever changes the registry ([`Admin::reconcile`] and the
    /// commands), so a reconciliation never sees a command half done.
    changing: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("configured", &self.configured)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// The admin interface over a running server's parts. `configured`
    /// names the upstreams of the config file and flags, and
    /// `configured_credentials` those whose credential comes from there.
    pub fn new(
        gateway: Arc<Gateway>,
        store: Arc<dyn Store>,
        assignments: Assignments,
        master_key: Option<Arc<MasterKey>>,
        clock: Arc<dyn Clock>,
        configured: BTreeSet<String>,
        configured_credentials: BTreeSet<String>,
    ) -> Self {
        let shared = store.upstream_changes().is_some();
        Self {
            gateway,
            store,
            assignments,
            master_key,
            clock,
            configured,
            configured_credentials,
            interaction: None,
            app: None,
            shared,
            changing: std::sync::Mutex::new(()),
        }
    }

    /// Lets `store_stats` read the in-memory tables of the server that
    /// will be put in `app`.
    pub fn with_app(mut self, app: Arc<std::sync::OnceLock<Arc<crate::http::App>>>) -> Self {
        self.app = Some(app);
        self
    }

    /// Enables `gnapd grants …`.
    pub fn with_interaction(mut self, interaction: Interaction) -> Self {
        self.interaction = Some(interaction);
        self
    }

    /// Carries out `command`. Errors are for the admin's eyes and never
    /// contain a secret.
    pub fn run(&self, command: Command) -> Result<Value, AdminError> {
        let _turn = command.reads_upstreams_or_sets().then(|| {
            let turn = self.turn();
            self.catch_up();
            turn
        });
        match command {
            Command::UpstreamAdd { name, url } => self.upstream_add(&name, &url),
            Command::UpstreamList => Ok(self.upstream_list()),
            Command::UpstreamRemove { name } => self.upstream_remove(&name),
            Command::CredentialsAdd {
                upstream,
                credential,
            } => self.credentials_add(&upstream, &credential),
            Command::CredentialsList => self.credentials_list(),
            Command::CredentialsRemove { upstream } => self.credentials_remove(&upstream),
            Command::CredentialsRemoveSet { id } => self.credentials_remove_set(&id),
            Command::GrantsPending => self.grants_pending(),
            Command::GrantsApprove { code } => self.grants_decide(&code, true),
            Command::GrantsDeny { code } => self.grants_decide(&code, false),
            Command::OperatorLink => self.operator_link(),
            Command::OperatorSignOut => self.operator_sign_out(),
            Command::StoreStats => self.store_stats(),
        }
    }

    /// On a shared store, brings this node in step with what other nodes
    /// wrote before a command acts on it (so, say, an upstream added on
    /// another node a moment ago can be removed here at once).
    fn catch_up(&self) {
        if self.shared
            && let Err(e) = self.reconcile_held()
        {
            tracing::warn!(error = %e, "cannot bring the upstreams in step with the store");
        }
    }

    fn interaction(&self) -> Result<&Interaction, AdminError> {
        self.interaction.as_ref().ok_or(AdminError::NoDecisions)
    }

    fn operator(
        &self,
    ) -> Result<
        (
            &Interaction,
            &Arc<crate::authz::operator::Operator>,
            &std::path::Path,
        ),
        AdminError,
    > {
        let interaction = self.interaction()?;
        match &interaction.operator {
            Some((operator, file)) => Ok((interaction, operator, file)),
            None => Err(AdminError::NoOperator),
        }
    }

    fn operator_link(&self) -> Result<Value, AdminError> {
        let (interaction, operator, file) = self.operator()?;
        let url = operator_link::issue(
            operator,
            &interaction.auth.config().public_url,
            file,
            self.clock.now(),
        )?;
        tracing::info!("admin: a new operator sign-in link was made");
        Ok(json!({"link": url, "file": file.display().to_string()}))
    }

    fn operator_sign_out(&self) -> Result<Value, AdminError> {
        let (_, operator, _) = self.operator()?;
        let ended = operator.revoke_all();
        tracing::info!(sessions = ended, "admin: every operator signed out");
        Ok(json!({"signed_out": ended}))
    }

    fn grants_pending(&self) -> Result<Value, AdminError> {
        let interaction = self.interaction()?;
        let pending = interaction
            .auth
            .pending_grants()
            .map_err(AdminError::store("reading pending grants"))?;
        let now = self.clock.now();
        let pending: Vec<Value> = pending
            .into_iter()
            .map(|grant| {
                // Who signed in on its page (a login is configured), so the
                // admin sees a person is on it before deciding instead.
                let signed_in = interaction
                    .login
                    .as_ref()
                    .and_then(|login| login.signed_in_subject(&grant.grant, now));
                let mut value = json!(grant);
                value["signed_in"] = json!(signed_in);
                value
            })
            .collect();
        Ok(json!({ "pending": pending }))
    }

    /// Records the decision, then carries out the finish method: a push is
    /// made now (bounded by its timeouts); a redirect is handed to the admin
    /// to open in the browser that started the interaction. A failed push
    /// is reported and logged; the decision stands.
    fn grants_decide(&self, code: &str, approve: bool) -> Result<Value, AdminError> {
        let interaction = self.interaction()?;
        let decided =
            interaction
                .auth
                .decide_grant(code, approve, crate::authz::usercode::ADMIN_SOURCE)?;
        let mut result = json!({
            "grant": decided.grant.0,
            "decision": if approve { "approved" } else { "denied" },
        });
        match decided.finish {
            FinishAction::None => {
                result["finish"] = json!("none");
            }
            FinishAction::Redirect { url } => {
                result["finish"] = json!("redirect");
                result["redirect_to"] = json!(url);
            }
            FinishAction::Push { uri, body } => {
                let outcome = interaction
                    .runtime
                    .block_on(interaction.pusher.push(&uri, body));
                match &outcome {
                    crate::http::push::PushOutcome::Delivered(_) => {
                        tracing::info!(grant = %decided.grant.0, "interaction finish pushed");
                    }
                    other => {
                        tracing::warn!(grant = %decided.grant.0, outcome = %other, "interaction finish push not delivered");
                    }
                }
                result["finish"] = json!("push");
                result["push"] = json!(outcome.to_string());
            }
        }
        Ok(result)
    }

    fn upstream_add(&self, name: &str, url: &str) -> Result<Value, AdminError> {
        if self.gateway.upstream(name).is_some() {
            return Err(AdminError::Exists(name.to_owned()));
        }
        let upstream = Upstream::from_spec(name, url, Credential::None)?;
        let transport = upstream.stored_transport();
        self.store
            .put_upstream(&UpstreamRecord {
                v: RECORD_VERSION,
                name: name.to_owned(),
                transport,
                created_at: self.clock.now(),
            })
            .map_err(AdminError::store(format!("storing upstream `{name}`")))?;
        self.gateway.put_upstream(upstream);
        tracing::info!(upstream = name, "admin: upstream added");
        Ok(json!({"added": name}))
    }

    fn upstream_list(&self) -> Value {
        let upstreams: Vec<Value> = self
            .gateway
            .upstreams()
            .iter()
            .map(|u| {
                json!({
                    "name": u.name,
                    "url": u.location(),
                    "source": if self.configured.contains(&u.name) { "config" } else { "admin" },
                    "credential_set": u.credential_set,
                })
            })
            .collect();
        json!({ "upstreams": upstreams })
    }

    fn upstream_remove(&self, name: &str) -> Result<Value, AdminError> {
        if self.configured.contains(name) {
            return Err(AdminError::Configured(name.to_owned()));
        }
        if self.gateway.upstream(name).is_none() {
            return Err(AdminError::NoUpstream(name.to_owned()));
        }
        // No new token is mapped to its set, no call reaches it; then the
        // set goes (revoking its tokens) and the record.
        self.assignments.clear(name);
        self.gateway.remove_upstream(name);
        let revoked_set = self
            .store
            .remove_credential_set(&enterprise_set_id(name))
            .map_err(AdminError::store(format!(
                "removing the credential set of `{name}`"
            )))?;
        self.store
            .remove_upstream(name)
            .map_err(AdminError::store(format!("removing upstream `{name}`")))?;
        tracing::info!(upstream = name, "admin: upstream removed");
        Ok(json!({"removed": name, "credential_set_removed": revoked_set}))
    }

    fn credentials_add(&self, upstream: &str, spec: &Secret) -> Result<Value, AdminError> {
        let target = self.changeable(upstream)?;
        // One spec, or (for `env`) one per line, merged into one set.
        let mut credential = Credential::None;
        for line in spec.expose().lines().filter(|l| !l.trim().is_empty()) {
            let next = Credential::parse(line)?;
            credential = match credential {
                Credential::None => next,
                earlier => earlier.merge(next)?,
            };
        }
        let mut check = (*target).clone();
        check.credential = credential.clone();
        check.check_credential()?;
        let Some((kind, header_name, secret)) = credential.to_sealable() else {
            return Err(AdminError::NoneCredential);
        };
        let key = self.master_key.as_ref().ok_or(AdminError::NoMasterKey)?;
        let id = enterprise_set_id(upstream);
        let sealed = key.seal(&id, &secret)?;
        drop(secret);
        self.store
            .put_credential_set(&CredentialSetRecord {
                v: RECORD_VERSION,
                id: id.clone(),
                upstream: upstream.to_owned(),
                kind,
                header_name,
                sealed,
                created_at: self.clock.now(),
                owner: None,
            })
            .map_err(AdminError::store("storing the credential set"))?;
        let mut changed = (*target).clone();
        changed.credential_set = Some(id.clone());
        self.gateway.put_upstream(changed);
        self.assignments.assign(upstream, &id);
        tracing::info!(upstream, set = %id, "admin: credential set stored");
        Ok(json!({"credential_set": id, "upstream": upstream}))
    }

    fn credentials_list(&self) -> Result<Value, AdminError> {
        let sets = self
            .store
            .credential_sets()
            .map_err(AdminError::store("reading credential sets"))?;
        let sets: Vec<Value> = sets
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "upstream": s.upstream,
                    "kind": s.kind,
                    "header_name": s.header_name,
                    "created_at": s.created_at,
                    "owner": s.owner,
                    "assigned": self.assignments.get(&s.upstream).as_deref() == Some(s.id.as_str()),
                })
            })
            .collect();
        Ok(json!({ "credential_sets": sets }))
    }

    fn credentials_remove(&self, upstream: &str) -> Result<Value, AdminError> {
        let target = self.changeable(upstream)?;
        let id = enterprise_set_id(upstream);
        // Stop handing the set out before removing it, so no token minted
        // during the removal keeps it.
        self.assignments.clear(upstream);
        let removed = self
            .store
            .remove_credential_set(&id)
            .map_err(AdminError::store("removing the credential set"))?;
        let mut changed = (*target).clone();
        changed.credential_set = None;
        self.gateway.put_upstream(changed);
        tracing::info!(upstream, set = %id, removed, "admin: credential set removed");
        Ok(json!({"credential_set": id, "removed": removed}))
    }

    fn credentials_remove_set(&self, id: &str) -> Result<Value, AdminError> {
        // Enterprise-held sets go by their upstream (`credentials_remove`),
        // which also stops assigning them.
        if !id.starts_with(PERSON_SET_PREFIX) {
            return Err(AdminError::NotPersonSet(id.to_owned()));
        }
        let removed = self
            .store
            .remove_credential_set(id)
            .map_err(AdminError::store("removing the credential set"))?;
        if !removed {
            return Err(AdminError::NoSet(id.to_owned()));
        }
        tracing::info!(set = %id, "admin: person-connected credential set removed");
        Ok(json!({"credential_set": id, "removed": removed}))
    }

    /// The upstream whose credential the admin may change.
    fn changeable(&self, upstream: &str) -> Result<Arc<Upstream>, AdminError> {
        if self.configured_credentials.contains(upstream) {
            return Err(AdminError::ConfiguredCredential(upstream.to_owned()));
        }
        self.gateway
            .upstream(upstream)
            .ok_or_else(|| AdminError::NoUpstream(upstream.to_owned()))
    }
}

impl Command {
    /// Whether the command reads or changes upstreams or credential sets
    /// (and so runs in turn with [`Admin::reconcile`]).
    fn reads_upstreams_or_sets(&self) -> bool {
        matches!(
            self,
            Self::UpstreamAdd { .. }
                | Self::UpstreamList
                | Self::UpstreamRemove { .. }
                | Self::CredentialsAdd { .. }
                | Self::CredentialsList
                | Self::CredentialsRemove { .. }
                | Self::CredentialsRemoveSet { .. }
        )
    }
}

/// Reads one admin command from its JSON text. The text may hold a secret:
/// it is wiped after parsing, and a parse error never quotes it.
pub fn parse_command(line: Zeroizing<Vec<u8>>) -> Result<Command, AdminError> {
    serde_json::from_slice(&line).map_err(|e| {
        // serde_json's messages quote unknown variants and fields, never
        // string values; keep the category and position only to be sure.
        AdminError::NotCommand {
            category: format!("{:?}", e.classify()),
            column: e.column(),
        }
    })
}
