//! The decision a person posts from a grant's page, as a service: who
//! decides, the form token, the access left ticked, and for an approval
//! the credential set each connectable upstream will use (a key pasted
//! on the page, a set connected before, or the sign-in made on the page);
//! then the decision recorded and the sets no decision took dropped.
//!
//! The pages read the form into a [`Submission`], call
//! [`PageDecisions::decide`] and render its [`Outcome`]. What this needs
//! from outside the AS — the gateway's person-connected sets, the probe,
//! and running store calls off the async workers — comes in through
//! [`DecisionIo`], so the HTTP layer decides nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::AuthServer;
use super::consent::{PageDecision, PageError, Selection};
use super::decider::Presented;
use super::interaction::Decided;
use super::login::Login;
use super::person::Who;
use crate::proto::gnap::AccessRight;
use crate::proto::mcp::access::UpstreamGrant;
use crate::upstream::connect::{Connections, Probed};
use crate::upstream::credential::Credential;
use crate::upstream::earlier;
use crate::upstream::server::Upstream;

/// The form field prefix of a key pasted for an upstream (`connect.NAME`).
pub(crate) const KEY_FIELD: &str = "connect.";
/// The form field prefix of the choice among earlier sets (`use.NAME`).
pub(crate) const USE_FIELD: &str = "use.";

/// What the decision needs done outside the AS. The HTTP edge implements
/// it over the gateway (which keeps the person-connected sets) and the
/// async runtime.
pub(crate) trait DecisionIo: Sync {
    /// Every configured upstream.
    fn upstreams(&self) -> Vec<Arc<Upstream>>;

    /// The connect probe: whether `upstream` accepts `credential`
    /// (`None`: it could not be reached in time).
    async fn probe(&self, upstream: &Upstream, credential: &Credential) -> Option<Probed>;

    /// Seals `credential` as a new person-connected set for `upstream`,
    /// owned by `owner`: its id.
    async fn store_set(
        &self,
        upstream: &str,
        credential: &Credential,
        owner: Option<String>,
    ) -> Result<String, SetsFailed>;

    /// Removes a set no decision took.
    async fn drop_set(&self, id: &str);

    /// Removes set `id` at its person's request: whether it was there.
    async fn forget_set(&self, id: &str) -> Result<bool, SetsFailed>;

    /// Records `owner` on set `id` when it has none yet.
    async fn claim_set(&self, id: &str, owner: &str) -> Result<(), SetsFailed>;

    /// The sets `person` connected for `upstream`, as a page offers them.
    async fn earlier_sets(
        &self,
        upstream: &str,
        person: &earlier::Person<'_>,
    ) -> Vec<earlier::Earlier>;

    /// Runs a store-touching call off the async workers.
    async fn off_thread<T: Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<T, PageError> + Send + 'static,
    ) -> Result<T, PageError>;
}

/// The gateway could not store, claim or remove a person-connected set:
/// its own account of why, for the log (never shown on a page).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SetsFailed(pub(crate) String);

/// What a browser presented for deciding, owned (it crosses to the
/// blocking pool): its login and operator session cookies.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presentation {
    /// The login cookie of the grant.
    pub(crate) login: Option<String>,
    /// The operator session cookie.
    pub(crate) operator: Option<String>,
}

impl Presentation {
    /// Borrowed, as [`AuthServer::decider`] takes it.
    pub(crate) fn presented(&self) -> Presented<'_> {
        Presented {
            login: self.login.as_deref(),
            operator: self.operator.as_deref(),
        }
    }
}

/// An Approve or Deny posted from a grant's page, as typed values.
#[derive(Debug, Default)]
pub(crate) struct Submission {
    /// The grant decided.
    pub(crate) grant: String,
    /// The form token (`csrf`).
    pub(crate) form_token: Option<String>,
    /// Approve (else deny).
    pub(crate) approve: bool,
    /// The rights and tools left ticked.
    pub(crate) selection: Selection,
    /// The key pasted for each upstream (`connect.NAME`; the first given).
    pub(crate) keys: HashMap<String, String>,
    /// The earlier set picked for each upstream (`use.NAME`; the first).
    pub(crate) chosen: HashMap<String, String>,
}

/// Why an approval decided nothing: the page is shown again with the
/// text, at [`NotConnected::status`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotConnected {
    /// A picked set this page does not offer this person.
    #[error("The connection chosen for {0} cannot be used here. Choose again.")]
    ChoiceNotOffered(String),
    /// An OAuth upstream without an enterprise-held set, not signed in.
    #[error("Connect {0} to approve: use its Connect button first.")]
    SignInNeeded(String),
    /// A key upstream without an enterprise-held set, no key pasted.
    #[error("Connect {0} to approve: paste its key below.")]
    KeyNeeded(String),
    /// The key pasted is not a credential the upstream's config takes.
    #[error("The key given for {0} is not usable: check it and paste it again.")]
    KeyUnusable(String),
    /// The probe says the upstream refuses the key.
    #[error("{0} refused the key given: check it and paste it again.")]
    KeyRefused(String),
    /// The probe got no usable answer.
    #[error("{0} could not check the key given just now. Try again.")]
    NotChecked(String),
    /// Sealing or storing the key failed.
    #[error("The server could not keep the key. Try again.")]
    NotKept,
}

impl NotConnected {
    /// The status of the page that says why.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::NotChecked(_) => 502,
            Self::NotKept => 500,
            _ => 400,
        }
    }
}

/// What a posted decision came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Recorded. `remembered`: the sets a browser (no login) remembers
    /// from now on, when this approval changed them.
    Decided {
        /// The decision, with the finish to carry out.
        decided: Decided,
        /// The browser's new list of sets, if it changed.
        remembered: Option<Vec<String>>,
    },
    /// Nothing decided: the page again, saying why.
    NotConnected(NotConnected),
    /// Nothing decided: a refusal page.
    Refused(PageError),
}

/// Why "Forget" removed nothing.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotForgotten {
    /// The set is not one this page offers this person.
    #[error("That connection cannot be forgotten here.")]
    NotOffered,
    /// The store failed.
    #[error("The server could not forget it. Try again.")]
    Failed,
}

impl NotForgotten {
    /// The status of the page that says why.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::NotOffered => 400,
            Self::Failed => 500,
        }
    }
}

/// The credential sets an approval maps its tokens to.
#[derive(Debug, Default)]
struct Connected {
    /// `(upstream, set id)` for each upstream the person connected.
    sets: Vec<(String, String)>,
    /// The sets this submission made (pasted keys): removed again if the
    /// decision is not recorded.
    fresh: Vec<String>,
}

impl Connected {
    /// Whether the approval uses set `id`.
    fn uses(&self, id: &str) -> bool {
        self.sets.iter().any(|(_, used)| used == id)
    }

    /// What a browser that remembered `before` remembers after this
    /// approval, if it used any person-connected set.
    fn remembered(&self, before: &[String]) -> Option<Vec<String>> {
        let used: Vec<String> = self.sets.iter().map(|(_, id)| id.clone()).collect();
        let ids = earlier::remember(before, &used);
        (!ids.is_empty() && ids != before).then_some(ids)
    }
}

/// The upstreams `access` reaches that a person can connect, of
/// `upstreams`.
pub(crate) fn connectable(
    upstreams: Vec<Arc<Upstream>>,
    access: &[AccessRight],
) -> Vec<Arc<Upstream>> {
    upstreams
        .into_iter()
        .filter(|u| u.connect.is_some() && UpstreamGrant::for_upstream(access, &u.name).is_some())
        .collect()
}

/// The decisions posted from grants' pages, and what they do to the
/// person-connected sets.
pub(crate) struct PageDecisions<'a, E> {
    /// The AS that checks and records.
    pub(crate) auth: &'a Arc<AuthServer>,
    /// The configured login, if any (its sign-ins end with the decision).
    pub(crate) login: Option<&'a Login>,
    /// Upstream sign-ins made from pages, and the sets they connected.
    pub(crate) connections: &'a Connections,
    /// The sets, the probe and the blocking pool.
    pub(crate) io: E,
}

impl<E: DecisionIo> PageDecisions<'_, E> {
    /// The upstreams `access` reaches that a person can connect.
    pub(crate) fn connectable(&self, access: &[AccessRight]) -> Vec<Arc<Upstream>> {
        connectable(self.io.upstreams(), access)
    }

    /// The sets `who` connected to `upstream` before.
    pub(crate) async fn earlier_sets(&self, who: &Who, upstream: &str) -> Vec<earlier::Earlier> {
        match who.person() {
            Some(person) => self.io.earlier_sets(upstream, &person).await,
            None => Vec::new(),
        }
    }

    /// Checks and records `submission`, posted from `source` by the
    /// browser that presented `presentation`, `who` being the person on
    /// the page. Sets connected through an upstream's sign-in on this page
    /// that the approval took become the signed-in person's; the others
    /// are dropped once the decision is recorded.
    pub(crate) async fn decide(
        &self,
        submission: Submission,
        presentation: Presentation,
        who: &Who,
        source: &str,
    ) -> Outcome {
        let grant = submission.grant.clone();
        let auth = self.auth.clone();
        let checked = {
            let (grant, source) = (grant.clone(), source.to_owned());
            let token = submission.form_token.clone();
            let (approve, selection) = (submission.approve, submission.selection.clone());
            self.io
                .off_thread(move || {
                    auth.check_page_decision(
                        &grant,
                        token.as_deref(),
                        presentation.presented(),
                        approve,
                        &selection,
                        &source,
                    )
                })
                .await
        };
        let decision = match checked {
            Ok(decision) => decision,
            Err(e) => return Outcome::Refused(e),
        };
        let connected = match self.connect_upstreams(&decision, &submission, who).await {
            Ok(connected) => connected,
            Err(e) => return Outcome::NotConnected(e),
        };
        let page_sets: Vec<String> = self
            .connections
            .sets(&grant)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        if let Some(owner) = who.owner() {
            for id in page_sets.iter().filter(|id| connected.uses(id)) {
                if let Err(e) = self.io.claim_set(id, owner).await {
                    tracing::warn!(grant, set = %id, error = %e, "claiming a connected set failed");
                }
            }
        }
        let auth = self.auth.clone();
        let sets = connected.sets.clone();
        let source = source.to_owned();
        let decided = self
            .io
            .off_thread(move || auth.record_page_decision(decision, sets, &source))
            .await;
        match decided {
            Ok(decided) => {
                self.connections.forget(&decided.grant.0);
                if let Some(login) = self.login {
                    login.forget(&decided.grant.0);
                }
                for id in page_sets.iter().filter(|id| !connected.uses(id)) {
                    self.io.drop_set(id).await;
                }
                let remembered = match who {
                    Who::Browser(before) if decided.approved => connected.remembered(before),
                    _ => None,
                };
                Outcome::Decided {
                    decided,
                    remembered,
                }
            }
            Err(e) => {
                for id in &connected.fresh {
                    self.io.drop_set(id).await;
                }
                Outcome::Refused(e)
            }
        }
    }

    /// For an approval: for each upstream the approved access reaches that
    /// a person can connect, the set its tokens will use — a key pasted on
    /// the page (probed when the upstream's config says so, sealed as a new
    /// person-connected set), else a set this person connected before and
    /// picked, else the sign-in made on the page — or why nothing was
    /// decided. An upstream with an enterprise-held set needs none of
    /// these. Keys are never logged or shown.
    async fn connect_upstreams(
        &self,
        decision: &PageDecision,
        submission: &Submission,
        who: &Who,
    ) -> Result<Connected, NotConnected> {
        let Some(approved) = decision.approved() else {
            return Ok(Connected::default());
        };
        let approved = approved.concat();
        let mut credentials: Vec<(String, Credential)> = Vec::new();
        let mut chosen_sets: Vec<(String, String)> = Vec::new();
        for upstream in self.connectable(&approved) {
            let Some(connect) = &upstream.connect else {
                continue;
            };
            let name = &upstream.name;
            let key = submission
                .keys
                .get(name)
                .map(|k| crate::upstream::Secret::new(k.trim()))
                .filter(|k| !k.expose().is_empty() && !connect.is_oauth());
            let chosen = submission
                .chosen
                .get(name)
                .map(String::as_str)
                .filter(|id| !id.is_empty());
            if key.is_none()
                && let Some(id) = chosen
            {
                // Only a set this page offers this person: an id alone (the
                // agent could send any) picks nothing.
                if !earlier::is_offered(&self.earlier_sets(who, name).await, id) {
                    return Err(NotConnected::ChoiceNotOffered(name.clone()));
                }
                chosen_sets.push((name.clone(), id.to_owned()));
                continue;
            }
            if connect.is_oauth() {
                match self
                    .connections
                    .sets(decision.grant())
                    .into_iter()
                    .find(|(up, _)| up == name)
                {
                    Some(pair) => chosen_sets.push(pair),
                    None if upstream.credential_set.is_none() => {
                        return Err(NotConnected::SignInNeeded(name.clone()));
                    }
                    None => {}
                }
                continue;
            }
            let Some(key) = key else {
                if upstream.credential_set.is_none() {
                    return Err(NotConnected::KeyNeeded(name.clone()));
                }
                continue;
            };
            let credential = connect
                .credential(key.expose())
                .map_err(|_| NotConnected::KeyUnusable(name.clone()))?;
            if connect.probes() {
                match self.io.probe(&upstream, &credential).await {
                    Some(Probed::Accepted) => {}
                    Some(Probed::Refused) => return Err(NotConnected::KeyRefused(name.clone())),
                    Some(Probed::Unknown) | None => {
                        return Err(NotConnected::NotChecked(name.clone()));
                    }
                }
            }
            credentials.push((name.clone(), credential));
        }
        let mut connected = Connected::default();
        for (upstream, credential) in credentials {
            let owner = who.owner().map(str::to_owned);
            match self.io.store_set(&upstream, &credential, owner).await {
                Ok(id) => {
                    connected.fresh.push(id.clone());
                    connected.sets.push((upstream, id));
                }
                Err(e) => {
                    tracing::error!(upstream, error = %e, "storing a connected credential failed");
                    for id in &connected.fresh {
                        self.io.drop_set(id).await;
                    }
                    return Err(NotConnected::NotKept);
                }
            }
        }
        connected.sets.extend(chosen_sets);
        Ok(connected)
    }

    /// A "Forget" button on `grant`'s page, whose form token the caller
    /// checked: only a set this page offers `who` (the same check as
    /// picking it) is removed, and every token mapped to it stops working.
    /// The upstream it was for.
    pub(crate) async fn forget(
        &self,
        grant: &str,
        requested: &[AccessRight],
        id: &str,
        who: &Who,
    ) -> Result<String, NotForgotten> {
        let mut upstream = None;
        for u in self.connectable(requested) {
            if earlier::is_offered(&self.earlier_sets(who, &u.name).await, id) {
                upstream = Some(u.name.clone());
                break;
            }
        }
        let upstream = upstream.ok_or(NotForgotten::NotOffered)?;
        match self.io.forget_set(id).await {
            Ok(_) => {
                tracing::info!(grant, upstream, set = %id, "a person forgot a connected set");
                Ok(upstream)
            }
            Err(e) => {
                tracing::error!(grant, upstream, error = %e, "forgetting a connected set failed");
                Err(NotForgotten::Failed)
            }
        }
    }

    /// Keeps the credential an upstream's sign-in on `grant`'s page handed
    /// over, as a person-connected set for `upstream` (its owner, with a
    /// login, is whoever approves with it); a set the same page connected
    /// there before is dropped.
    pub(crate) async fn keep_signed_in(
        &self,
        grant: &str,
        upstream: &str,
        credential: &Credential,
    ) -> Result<(), SetsFailed> {
        let id = self.io.store_set(upstream, credential, None).await?;
        if let Some(old) = self.connections.connected(grant, upstream, &id) {
            self.io.drop_set(&old).await;
        }
        Ok(())
    }
}
