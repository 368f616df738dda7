//! What the interaction pages need from the AS, sans I/O (RFC 9635 §4.1):
//! finding the pending grant a person's browser names, describing it, the
//! form token that binds a decision to it, and narrowing the access before
//! approval. The HTML lives in `crate::http::pages`.
//!
//! A person reaches a grant's page two ways:
//!
//! - by its link, `{public}/gnap/interact/{grant}/{secret}` (the `redirect`
//!   start mode): §4.1.1 "the AS MUST determine the grant request being
//!   referenced from the URI value itself"; the secret is 256 random bits
//!   whose hash the interaction record keeps, compared in constant time;
//! - by its user code at `{public}/gnap/device` (`user_code_uri`, and the
//!   same page serves `user_code`): §4.1.2/§4.1.3, the code names the grant;
//!   entries are counted per source and per grant as for the admin
//!   (`super::usercode::Attempts`), and a grant id is never accepted there.
//!
//! Either way the page's form carries a token: HMAC-SHA-256 under a key
//! this server drew at first use, over the grant id. It is the CSRF token:
//! compared in constant time before anything is looked up, a missing or
//! wrong one decides nothing. It is not who decides: the link and the code
//! travel through the agent, so a decision also needs a [`Decider`] — a
//! signed-in person outside `--dev` (`super::decider`).

use std::collections::HashSet;

use subtle::ConstantTimeEq as _;

use super::decider::{Authority, Decider, Presented};
use super::interaction::{Lookup, describe_access, requested_per_token};
use super::started_by::FinishDelivery;
use super::{AuthServer, DecideError, Decided, is_grant_id};
use crate::proto::gnap::{AccessRight, Client};
use crate::proto::hmac::hmac_sha256;
use crate::store::{
    FinishKind, GrantId, GrantRecord, InteractionRecord, InteractionStatus, TokenHash,
};

/// Why a page cannot show or decide a grant. The HTTP edge turns each into
/// a status and a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No pending interaction at this address (§4.1.1: "the AS MUST display
    /// an error to the RO and MUST NOT attempt to redirect").
    #[error("No request is waiting at this address.")]
    NotFound,
    /// The code typed names no pending grant.
    #[error("That code is not valid, or it expired. Check it and try again.")]
    BadCode,
    /// The interaction expired before a decision.
    #[error("This request expired before anyone decided on it.")]
    Expired,
    /// Someone decided first.
    #[error("This request was already decided.")]
    AlreadyDecided,
    /// Too many failed attempts from this source, or entries of this code.
    #[error("Too many attempts. Wait a few minutes and try again.")]
    TooManyAttempts,
    /// The form token is missing or wrong: nothing was decided.
    #[error(
        "This form is not valid here (it may be from before the server restarted). Open the link or enter the code again."
    )]
    Forbidden,
    /// Nobody allowed to decide is signed in on this browser: nothing was
    /// decided.
    #[error("Sign in first: only a person signed in and allowed to decide can approve or deny.")]
    SignInRequired,
    /// Nobody can sign in to decide on this server's pages: only its
    /// admin decides, on the server.
    #[error(
        "Only an administrator can approve or deny requests on this server, on the server itself."
    )]
    AdminOnly,
    /// Approval with every right unticked.
    #[error("Nothing was left ticked. Tick what the agent may have, or deny.")]
    NothingSelected,
    /// The store or the random source failed.
    #[error("The server could not complete this. Try again.")]
    Internal,
}

impl From<DecideError> for PageError {
    fn from(error: DecideError) -> Self {
        match error {
            DecideError::NotFound => Self::NotFound,
            DecideError::TooManyAttempts => Self::TooManyAttempts,
            DecideError::Expired => Self::Expired,
            DecideError::AlreadyDecided => Self::AlreadyDecided,
            DecideError::Store(e) => {
                tracing::error!(error = %e, "storage failure on an interaction page");
                Self::Internal
            }
            DecideError::NoRandomness => Self::Internal,
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(error: crate::store::StoreError) -> Self {
        DecideError::Store(error).into()
    }
}

/// A pending grant as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentView {
    /// The grant id (the form posts to its decision address).
    pub grant: String,
    /// The client's self-declared name: unverified (§2.3.2).
    pub display_name: Option<String>,
    /// RFC 7638 thumbprint of the client's key.
    pub thumbprint: String,
    /// The rights requested, each with its choices.
    pub rights: Vec<RightView>,
    /// Whole minutes (rounded up) until the interaction expires.
    pub expires_in_minutes: i64,
    /// The form token.
    pub csrf: String,
    /// With a `redirect` finish, where the browser goes after the decision
    /// (as a CSP source: the form's POST is answered with a redirect there,
    /// which `form-action` must allow).
    pub finish_origin: Option<String>,
    /// Every right requested, all tokens together (which upstreams the
    /// page offers to connect).
    pub requested: Vec<AccessRight>,
    /// The upstreams the person can connect here (filled by the HTTP
    /// edge, which knows the upstreams' config).
    pub connect: Vec<ConnectView>,
    /// Why the last submission decided nothing, shown above the form.
    pub notice: Option<String>,
    /// Who this browser is for deciding (no credentials until the HTTP
    /// edge fills in what the browser presented).
    pub authority: Authority,
    /// Whoever holds the link decides (`--dev`): the page says so in red.
    pub dev_banner: bool,
    /// A same-site link to this page (its `redirect` start link's path),
    /// for a browser whose cookies a cross-site arrival withheld.
    pub reload: Option<String>,
    /// The grant finishes by redirect: the browser showing this page is
    /// bound to it if it is the first (`super::started_by`).
    pub finishes_by_redirect: bool,
}

impl ConsentView {
    /// The page offers Approve and Deny.
    pub fn can_decide(&self) -> bool {
        matches!(self.authority, Authority::Decides(_))
    }

    /// Who is signed in to decide, in plain words.
    pub fn signed_in_as(&self) -> Option<String> {
        match &self.authority {
            Authority::Decides(Decider::Subject(subject)) => Some(subject.clone()),
            Authority::Decides(Decider::Operator) => Some("this server's operator".to_owned()),
            _ => None,
        }
    }

    /// The operator is signed in here (the page offers signing out).
    pub fn operator_signed_in(&self) -> bool {
        self.authority == Authority::Decides(Decider::Operator)
    }

    /// The page offers the configured login's "Sign in" button.
    pub fn offers_login(&self) -> bool {
        matches!(self.authority, Authority::SignInNeeded { login: true, .. })
    }

    /// The operator's sign-in works here.
    pub fn offers_operator(&self) -> bool {
        matches!(
            self.authority,
            Authority::SignInNeeded { operator: true, .. }
        )
    }

    /// Nobody decides here: the page points at `gnapd grants approve`.
    pub fn needs_admin(&self) -> bool {
        !self.can_decide()
    }
}

/// An upstream the person can connect on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectView {
    /// The upstream's name.
    pub upstream: String,
    /// The form field of the pasted key (`connect.NAME`).
    pub field: String,
    /// A key is needed to approve (the upstream has no enterprise-held
    /// credential), rather than optional.
    pub required: bool,
    /// Connected through the upstream's OAuth sign-in (a button), not a
    /// pasted key.
    pub oauth: bool,
    /// The sign-in already connected it for this grant.
    pub connected: bool,
    /// The form field of the choice among earlier sets (`use.NAME`).
    pub choice_field: String,
    /// Sets this person connected to it before, offered again
    /// (`crate::upstream::earlier`), newest first.
    pub earlier: Vec<EarlierChoice>,
    /// Whether the page preselects "none of the earlier ones" (a sign-in
    /// was just made on this page, or there are none).
    pub none_chosen: bool,
}

/// A set a person connected before, as one choice on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierChoice {
    /// The form value: the set's id.
    pub id: String,
    /// What it is and when it was connected, in plain words.
    pub text: String,
    /// Preselected.
    pub checked: bool,
}

/// A page's decision, checked (form token, interaction still pending,
/// narrowing) and not yet recorded: the HTTP edge connects upstreams in
/// between, then records it with [`AuthServer::record_page_decision`].
#[derive(Debug, Clone)]
pub struct PageDecision {
    interaction: InteractionRecord,
    record: GrantRecord,
    access: Option<Vec<Vec<AccessRight>>>,
    decider: Decider,
}

impl PageDecision {
    /// The grant id.
    pub fn grant(&self) -> &str {
        &self.record.id.0
    }

    /// The access approved, per token (`None`: a denial).
    pub fn approved(&self) -> Option<&[Vec<AccessRight>]> {
        self.access.as_deref()
    }

    /// Who decided.
    pub fn decider(&self) -> &Decider {
        &self.decider
    }
}

/// One requested right on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightView {
    /// The form value of its checkbox (`TOKEN.RIGHT`), when it is chosen as
    /// a whole.
    pub field: String,
    /// What it grants, in plain words.
    pub text: String,
    /// The token's label, when the request asked for several tokens.
    pub label: Option<String>,
    /// The tools an `mcp` right lists, each chosen on its own (empty: the
    /// right is chosen as a whole).
    pub tools: Vec<ToolView>,
}

/// One tool of an `mcp` right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolView {
    /// The form value of its checkbox (`TOKEN.RIGHT.TOOL`).
    pub field: String,
    /// The tool's name.
    pub name: String,
}

/// What a person left ticked: form values of rights and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// `TOKEN.RIGHT` values.
    pub rights: HashSet<String>,
    /// `TOKEN.RIGHT.TOOL` values.
    pub tools: HashSet<String>,
}

/// The tools a person chooses one by one: those an `mcp` right lists.
fn tool_choices(right: &AccessRight) -> Option<&[String]> {
    match right {
        AccessRight::Object(o) if o.is_mcp() => o.tools.as_deref().filter(|t| !t.is_empty()),
        _ => None,
    }
}

/// The approved rights, per requested token: each right ticked, and of an
/// `mcp` right with tools, the tools ticked (the right goes when none is).
/// Only requested rights can come out: the selection picks, never adds.
pub fn narrow(requested: &[Vec<AccessRight>], selection: &Selection) -> Vec<Vec<AccessRight>> {
    requested
        .iter()
        .enumerate()
        .map(|(t, rights)| {
            rights
                .iter()
                .enumerate()
                .filter_map(|(r, right)| match (tool_choices(right), right) {
                    (Some(tools), AccessRight::Object(o)) => {
                        let kept: Vec<String> = tools
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| selection.tools.contains(&format!("{t}.{r}.{k}")))
                            .map(|(_, name)| name.clone())
                            .collect();
                        if kept.is_empty() {
                            return None;
                        }
                        let mut narrowed = o.clone();
                        narrowed.tools = Some(kept);
                        Some(AccessRight::Object(narrowed))
                    }
                    _ => selection
                        .rights
                        .contains(&format!("{t}.{r}"))
                        .then(|| right.clone()),
                })
                .collect()
        })
        .collect()
}

/// The CSP source for the browser's way back to the client: the origin of
/// an `http`/`https` URI, or the scheme of an application's URI. `None`
/// for anything with characters a CSP source cannot hold.
pub fn csp_source(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let is_scheme = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !is_scheme {
        return None;
    }
    let source = match scheme.as_str() {
        "http" | "https" => {
            let parsed: hyper::Uri = uri.parse().ok()?;
            format!("{scheme}://{}", parsed.authority()?.as_str())
        }
        _ => format!("{scheme}:"),
    };
    let safe = source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-+:/[]".contains(&b));
    safe.then_some(source)
}

impl AuthServer {
    fn page_key(&self) -> Result<&[u8; 32], PageError> {
        if let Some(key) = self.page_key.get() {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| PageError::Internal)?;
        // Of two first callers, one key wins and both use it.
        let _ = self.page_key.set(key);
        self.page_key.get().ok_or(PageError::Internal)
    }

    /// The form token of `grant`'s page.
    fn form_token(&self, grant: &GrantId) -> Result<String, PageError> {
        let mac = hmac_sha256(
            self.page_key()?,
            format!("gnapd interaction form\n{}", grant.0).as_bytes(),
        );
        Ok(crate::proto::b64::encode_url(&mac))
    }

    /// The page of the grant whose link is `{grant}/{secret}`.
    pub fn consent_by_link(&self, grant: &str, secret: &str) -> Result<ConsentView, PageError> {
        let interaction = self.interaction_by_link(grant, secret)?;
        self.consent_view(&interaction)
    }

    /// The interaction whose link is `{grant}/{secret}`, whatever its
    /// status.
    fn interaction_by_link(
        &self,
        grant: &str,
        secret: &str,
    ) -> Result<InteractionRecord, PageError> {
        if !is_grant_id(grant) || secret.len() > 128 {
            return Err(PageError::NotFound);
        }
        let interaction = self
            .store
            .interaction(&GrantId(grant.to_owned()))?
            .ok_or(PageError::NotFound)?;
        let opens: bool = match &interaction.page {
            Some(expected) => TokenHash::of(secret).0.ct_eq(&expected.0).into(),
            None => false,
        };
        if !opens {
            return Err(PageError::NotFound);
        }
        Ok(interaction)
    }

    /// Records that the browser named `browser` opened `grant`'s page, for
    /// its redirect finish: the first to do so started the interaction.
    pub fn bind_start(&self, grant: &str, browser: &str) {
        let now = self.now();
        let until = now
            .saturating_add(self.config.interaction_lifetime)
            .saturating_add(super::interaction::PENDING_GRACE);
        if let Ok(mut live) = self.live.lock() {
            live.started_by
                .bind(&GrantId(grant.to_owned()), browser, until, now);
        }
    }

    /// Where the finish redirect `url` of a decision on `grant` goes, the
    /// decision made by the browser named `browser` (none: on the server).
    pub fn deliver_finish(
        &self,
        grant: &GrantId,
        browser: Option<&str>,
        url: String,
    ) -> FinishDelivery {
        match self.live.lock() {
            Ok(mut live) => live.started_by.deliver(grant, browser, url),
            Err(_) => FinishDelivery::Here(url),
        }
    }

    /// The finish redirect waiting for the browser named `browser`, which
    /// opens the link `{grant}/{secret}` of an interaction decided
    /// elsewhere: only the browser that started it gets it, once.
    pub fn collect_finish(
        &self,
        grant: &str,
        secret: &str,
        browser: Option<&str>,
    ) -> Option<String> {
        let interaction = self.interaction_by_link(grant, secret).ok()?;
        if interaction.status == InteractionStatus::Pending {
            return None;
        }
        let now = self.now();
        self.live
            .lock()
            .ok()?
            .started_by
            .collect(&interaction.grant, browser, now)
    }

    /// The page of the grant whose user code a person typed at the user
    /// code page, from `source` (attempts are counted).
    pub fn consent_by_code(&self, code: &str, source: &str) -> Result<ConsentView, PageError> {
        let now = self.now();
        let interaction = self
            .find_pending(code, source, now, Lookup::CodeOnly)
            .map_err(|e| match e {
                DecideError::NotFound | DecideError::AlreadyDecided => PageError::BadCode,
                other => other.into(),
            })?;
        self.consent_view(&interaction)
    }

    fn consent_view(&self, interaction: &InteractionRecord) -> Result<ConsentView, PageError> {
        let now = self.now();
        if interaction.status != InteractionStatus::Pending {
            return Err(PageError::AlreadyDecided);
        }
        if now > interaction.expires_at {
            return Err(PageError::Expired);
        }
        let grant = self
            .store
            .grant(&interaction.grant)?
            .ok_or(PageError::NotFound)?;
        let display_name = match &grant.request.client {
            Client::Key(c) => c.display.as_ref().and_then(|d| d.name.clone()),
            Client::Instance(_) => None,
        };
        let requested = grant.request.access_token.as_ref();
        let several = requested.is_some_and(|r| r.as_slice().len() > 1);
        let mut rights = Vec::new();
        for (t, token) in requested
            .map(|r| r.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let texts = describe_access(&token.access);
            for (r, (right, text)) in token.access.iter().zip(texts).enumerate() {
                rights.push(RightView {
                    field: format!("{t}.{r}"),
                    text: quoted(&text),
                    label: if several { token.label.clone() } else { None },
                    tools: tool_choices(right)
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                        .map(|(k, name)| ToolView {
                            field: format!("{t}.{r}.{k}"),
                            name: name.clone(),
                        })
                        .collect(),
                });
            }
        }
        let finish_origin = interaction
            .finish
            .as_ref()
            .filter(|f| f.method == FinishKind::Redirect)
            .and_then(|f| csp_source(&f.uri));
        Ok(ConsentView {
            grant: grant.id.0.clone(),
            display_name,
            thumbprint: grant.client.thumbprint.clone(),
            rights,
            expires_in_minutes: (interaction.expires_at.saturating_sub(now) + 59) / 60,
            csrf: self.form_token(&grant.id)?,
            finish_origin,
            requested: requested_per_token(&grant.request).concat(),
            connect: Vec::new(),
            notice: None,
            authority: self.authority(&grant.id.0, Presented::default(), now),
            dev_banner: self.link_holders_decide(),
            reload: None,
            finishes_by_redirect: interaction
                .finish
                .as_ref()
                .is_some_and(|f| f.method == FinishKind::Redirect),
        })
    }

    /// The page of `grant`, for a browser back from an upstream's OAuth
    /// sign-in: the caller holds the sign-in's single-use `state`, which was
    /// handed out only from this grant's page and stands for it.
    pub fn consent_by_grant(&self, grant: &str) -> Result<ConsentView, PageError> {
        if !is_grant_id(grant) {
            return Err(PageError::NotFound);
        }
        let interaction = self
            .store
            .interaction(&GrantId(grant.to_owned()))?
            .ok_or(PageError::NotFound)?;
        self.consent_view(&interaction)
    }

    /// Checks `form_token` against `grant`'s page; a missing or wrong one
    /// is [`PageError::Forbidden`], logged without the token.
    pub fn check_form_token(
        &self,
        grant: &str,
        form_token: Option<&str>,
        source: &str,
    ) -> Result<GrantId, PageError> {
        if !is_grant_id(grant) {
            return Err(PageError::NotFound);
        }
        let id = GrantId(grant.to_owned());
        let expected = self.form_token(&id)?;
        let valid: bool = match form_token {
            Some(presented) => presented.as_bytes().ct_eq(expected.as_bytes()).into(),
            None => false,
        };
        if !valid {
            tracing::warn!(
                grant,
                source,
                "interaction form refused: missing or wrong form token"
            );
            return Err(PageError::Forbidden);
        }
        Ok(id)
    }

    /// The page of `grant` again, for a submission that carried its form
    /// token but decided nothing (to show why).
    pub fn consent_by_form(
        &self,
        grant: &str,
        form_token: Option<&str>,
        source: &str,
    ) -> Result<ConsentView, PageError> {
        let id = self.check_form_token(grant, form_token, source)?;
        let interaction = self.store.interaction(&id)?.ok_or(PageError::NotFound)?;
        self.consent_view(&interaction)
    }

    /// A decision posted from a grant's page: checks the form token first
    /// (nothing is looked up or decided without it) and who is deciding
    /// (`presented`), then approves the access left ticked, or denies. The
    /// caller carries out the finish.
    pub fn decide_by_page(
        &self,
        grant: &str,
        form_token: Option<&str>,
        presented: Presented<'_>,
        approve: bool,
        selection: &Selection,
        source: &str,
    ) -> Result<Decided, PageError> {
        let decision =
            self.check_page_decision(grant, form_token, presented, approve, selection, source)?;
        self.record_page_decision(decision, Vec::new(), source)
    }

    /// The first half of [`Self::decide_by_page`]: the form token, who is
    /// deciding, the interaction still pending, the access left ticked.
    pub fn check_page_decision(
        &self,
        grant: &str,
        form_token: Option<&str>,
        presented: Presented<'_>,
        approve: bool,
        selection: &Selection,
        source: &str,
    ) -> Result<PageDecision, PageError> {
        let id = self.check_form_token(grant, form_token, source)?;
        let now = self.now();
        let decider = self.decider(grant, presented, now).inspect_err(|_| {
            tracing::warn!(
                grant,
                source,
                "interaction decision refused: nobody allowed to decide is signed in"
            );
        })?;
        let interaction = self.store.interaction(&id)?.ok_or(PageError::NotFound)?;
        if interaction.status != InteractionStatus::Pending {
            return Err(PageError::AlreadyDecided);
        }
        if now > interaction.expires_at {
            return Err(PageError::Expired);
        }
        let record: GrantRecord = self.store.grant(&id)?.ok_or(PageError::NotFound)?;
        let access = if approve {
            let narrowed = narrow(&requested_per_token(&record.request), selection);
            if narrowed.iter().all(Vec::is_empty) {
                return Err(PageError::NothingSelected);
            }
            Some(narrowed)
        } else {
            None
        };
        Ok(PageDecision {
            interaction,
            record,
            access,
            decider,
        })
    }

    /// The second half: records the decision, with the credential sets the
    /// person `connected` (`(upstream, set id)`) for an approval, and who
    /// decided.
    pub fn record_page_decision(
        &self,
        decision: PageDecision,
        connected: Vec<(String, String)>,
        source: &str,
    ) -> Result<Decided, PageError> {
        let now = self.now();
        if now > decision.interaction.expires_at {
            return Err(PageError::Expired);
        }
        Ok(self.record_decision(
            &decision.interaction,
            &decision.record,
            decision.access,
            connected,
            decision.decider.recorded(),
            source,
            now,
        )?)
    }
}

/// Plain words for a page: the CLI's backquotes become quotation marks.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push(if i % 2 == 1 { '“' } else { '”' });
        }
        out.push_str(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_only_ticked_rights_and_tools() {
        let requested: Vec<Vec<AccessRight>> = vec![
            serde_json::from_value(serde_json::json!([
                "mcp:github",
                {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post", "read", "delete"]},
                {"type": "mcp", "identifier": "jira", "tools": ["a"]}
            ]))
            .unwrap(),
        ];
        let selection = Selection {
            rights: ["0.0".to_owned(), "9.9".to_owned()].into(),
            tools: ["0.1.0".to_owned(), "0.1.1".to_owned(), "0.1.7".to_owned()].into(),
        };
        let narrowed = narrow(&requested, &selection);
        assert_eq!(
            serde_json::to_value(&narrowed).unwrap(),
            serde_json::json!([[
                "mcp:github",
                {"type": "mcp", "identifier": "slack", "actions": ["tools/call"], "tools": ["post", "read"]}
            ]])
        );
        assert!(narrow(&requested, &Selection::default())[0].is_empty());
    }

    #[test]
    fn csp_sources_are_origins_or_schemes_and_nothing_else() {
        assert_eq!(
            csp_source("https://client.example:8443/cb?x=1").as_deref(),
            Some("https://client.example:8443")
        );
        assert_eq!(
            csp_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("https://a@b.example/cb"), None);
        assert_eq!(csp_source("not a uri"), None);
    }

    #[test]
    fn cli_backquotes_become_quotation_marks() {
        assert_eq!(
            quoted("MCP upstream `slack`: tools a"),
            "MCP upstream “slack”: tools a"
        );
    }
}
