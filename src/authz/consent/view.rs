//! A pending grant as its page shows it: found by the page's link, by a
//! typed user code or by its id (back from a sign-in), and described.

use subtle::ConstantTimeEq as _;

use super::narrow::tool_choices;
use super::{PageError, csp_source};
use crate::authz::decider::{Authority, Decider, Presented};
use crate::authz::interaction::{Lookup, describe_access, requested_per_token};
use crate::authz::{AuthServer, DecideError, is_grant_id};
use crate::proto::gnap::{AccessRight, Client};
use crate::store::{FinishKind, GrantId, InteractionRecord, InteractionStatus, TokenHash};

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
    pub(crate) requested: Vec<AccessRight>,
    /// The upstreams the person can connect here (filled by the HTTP
    /// edge, which knows the upstreams' config).
    pub(crate) connect: Vec<ConnectView>,
    /// Why the last submission decided nothing, shown above the form.
    pub(crate) notice: Option<String>,
    /// Who this browser is for deciding (no credentials until the HTTP
    /// edge fills in what the browser presented).
    pub authority: Authority,
    /// Whoever holds the link decides (`--dev`): the page says so in red.
    pub dev_banner: bool,
    /// A same-site link to this page (its `redirect` start link's path),
    /// for a browser whose cookies a cross-site arrival withheld.
    pub(crate) reload: Option<String>,
    /// The grant finishes by redirect: the browser showing this page is
    /// bound to it if it is the first (`crate::authz::started_by`).
    pub(crate) finishes_by_redirect: bool,
    /// For an OAuth client's request, who the client is (issue 16).
    pub(crate) oauth: Option<OAuthClientView>,
}

/// An OAuth client as its consent page shows it: its id, where the browser
/// goes next, how this server knows it, and a warning for a metadata
/// document listing only localhost redirects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClientView {
    /// The `client_id` (for a metadata document, its URL).
    pub(crate) client_id: String,
    /// The host of the redirect URI the code goes to.
    pub(crate) redirect_host: String,
    /// How this server knows the client, in plain words.
    pub(crate) source: &'static str,
    /// Its metadata document lists only localhost redirect URIs.
    pub(crate) localhost_only: bool,
}

impl ConsentView {
    /// The page offers Approve and Deny.
    pub fn can_decide(&self) -> bool {
        matches!(self.authority, Authority::Decides(_))
    }

    /// Who is signed in to decide, in plain words.
    pub(crate) fn signed_in_as(&self) -> Option<String> {
        match &self.authority {
            Authority::Decides(Decider::Subject(subject)) => Some(subject.clone()),
            Authority::Decides(Decider::Operator) => Some("this server's operator".to_owned()),
            _ => None,
        }
    }

    /// The operator is signed in here (the page offers signing out).
    pub(crate) fn operator_signed_in(&self) -> bool {
        self.authority == Authority::Decides(Decider::Operator)
    }

    /// The page offers the configured login's "Sign in" button.
    pub(crate) fn offers_login(&self) -> bool {
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
    pub(crate) fn needs_admin(&self) -> bool {
        !self.can_decide()
    }
}

/// An upstream the person can connect on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectView {
    /// The upstream's name.
    pub(crate) upstream: String,
    /// The form field of the pasted key (`connect.NAME`).
    pub(crate) field: String,
    /// A key is needed to approve (the upstream has no enterprise-held
    /// credential), rather than optional.
    pub(crate) required: bool,
    /// Connected through the upstream's OAuth sign-in (a button), not a
    /// pasted key.
    pub(crate) oauth: bool,
    /// The sign-in already connected it for this grant.
    pub(crate) connected: bool,
    /// The form field of the choice among earlier sets (`use.NAME`).
    pub(crate) choice_field: String,
    /// Sets this person connected to it before, offered again
    /// (`crate::upstream::earlier`), newest first.
    pub(crate) earlier: Vec<EarlierChoice>,
    /// Whether the page preselects "none of the earlier ones" (a sign-in
    /// was just made on this page, or there are none).
    pub(crate) none_chosen: bool,
}

/// A set a person connected before, as one choice on the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlierChoice {
    /// The form value: the set's id.
    pub(crate) id: String,
    /// What it is and when it was connected, in plain words.
    pub(crate) text: String,
    /// Preselected.
    pub(crate) checked: bool,
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
    pub(crate) label: Option<String>,
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
    pub(crate) name: String,
}

impl AuthServer {
    /// The page of the grant whose link is `{grant}/{secret}`.
    pub fn consent_by_link(&self, grant: &str, secret: &str) -> Result<ConsentView, PageError> {
        let interaction = self.interaction_by_link(grant, secret)?;
        self.consent_view(&interaction)
    }

    /// The interaction whose link is `{grant}/{secret}`, whatever its
    /// status.
    pub(super) fn interaction_by_link(
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
        let display_name = match (&grant.request.client, &grant.oauth) {
            (_, Some(oauth)) => oauth.client_name.clone(),
            (Client::Key(c), None) => c.display.as_ref().and_then(|d| d.name.clone()),
            (Client::Instance(_), None) => None,
        };
        let oauth = grant.oauth.as_ref().map(oauth_client_view);
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
        // An OAuth code goes back by redirect too, bound to the browser
        // that started it as a GNAP redirect finish is.
        let by_redirect = |f: &&crate::store::InteractionFinish| {
            matches!(f.method, FinishKind::Redirect | FinishKind::OAuthCode)
        };
        let finish_origin = interaction
            .finish
            .as_ref()
            .filter(by_redirect)
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
            finishes_by_redirect: interaction.finish.as_ref().filter(by_redirect).is_some(),
            oauth,
        })
    }

    /// The page of `grant`, for a browser back from an upstream's OAuth
    /// sign-in: the caller holds the sign-in's single-use `state`, which was
    /// handed out only from this grant's page and stands for it.
    pub(crate) fn consent_by_grant(&self, grant: &str) -> Result<ConsentView, PageError> {
        if !is_grant_id(grant) {
            return Err(PageError::NotFound);
        }
        let interaction = self
            .store
            .interaction(&GrantId(grant.to_owned()))?
            .ok_or(PageError::NotFound)?;
        self.consent_view(&interaction)
    }

    /// The page of `grant` again, for a submission that carried its form
    /// token but decided nothing (to show why).
    pub(crate) fn consent_by_form(
        &self,
        grant: &str,
        form_token: Option<&str>,
        source: &str,
    ) -> Result<ConsentView, PageError> {
        let id = self.check_form_token(grant, form_token, source)?;
        let interaction = self.store.interaction(&id)?.ok_or(PageError::NotFound)?;
        self.consent_view(&interaction)
    }
}

/// What the consent page says of an OAuth client.
fn oauth_client_view(oauth: &crate::store::OAuthAuthorization) -> OAuthClientView {
    use crate::proto::oauth::client::ClientSource;
    let (source, localhost_only) = match &oauth.client_source {
        Some(ClientSource::Configured) => ("pre-registered by this server's operator", false),
        Some(ClientSource::Registered) => {
            ("registered itself (dynamic client registration)", false)
        }
        Some(ClientSource::MetadataDocument { localhost_only }) => (
            "by its client ID metadata document, published at its client ID",
            *localhost_only,
        ),
        None => ("unknown", false),
    };
    OAuthClientView {
        client_id: oauth.client_id.clone(),
        redirect_host: crate::proto::oauth::redirect::host(&oauth.redirect_uri)
            .unwrap_or_else(|| "(unreadable address)".to_owned()),
        source,
        localhost_only,
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
    fn cli_backquotes_become_quotation_marks() {
        assert_eq!(
            quoted("MCP upstream `slack`: tools a"),
            "MCP upstream “slack”: tools a"
        );
    }
}
