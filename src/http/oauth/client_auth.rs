//! Who calls the token and revocation endpoints (RFC 6749 §2.3): a public
//! client by its `client_id`, a confidential one by its secret, or a
//! `private_key_jwt` client by a signed assertion (RFC 7523 §2.2). RFC 7009
//! §2.1 has the revocation endpoint authenticate clients as the token
//! endpoint does, so both endpoints use this one path, and assertions go
//! to the client registry's one verifier
//! (`OAuthClients::authenticate_private_key_jwt`).

use std::sync::Arc;

use warp::http::HeaderMap;

use super::{App, authorization, error_reply, resolve_client};
use crate::authz::Reply;
use crate::authz::oauth::Presented;
use crate::authz::oauth_clients::client_credentials::Refusal as ClientRefusal;
use crate::proto::oauth::client::ClientInfo;
use crate::proto::oauth::client_assertion;
use crate::proto::oauth::error::{ErrorCode, OAuthError};
use crate::proto::oauth::form::Params;

/// Why a request was refused: an error of the OAuth services, or of the
/// client registry's own checks (assertions, headless grants).
pub(super) enum Refused {
    OAuth(OAuthError),
    Client(ClientRefusal),
}

impl From<OAuthError> for Refused {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl Refused {
    /// The §5.2 answer; `basic`: the client tried HTTP Basic.
    pub(super) fn into_reply(self, basic: bool) -> Reply {
        match self {
            Self::OAuth(e) => error_reply(&e, basic),
            Self::Client(r) => r.into_reply(),
        }
    }
}

/// True if the request authenticates by a client assertion. RFC 6749
/// §2.3: one method per request, so an assertion beside a secret (HTTP
/// Basic or `client_secret`) is `invalid_request`.
pub(super) fn presents_assertion(headers: &HeaderMap, params: &Params) -> Result<bool, OAuthError> {
    let asserting =
        params.get("client_assertion").is_some() || params.get("client_assertion_type").is_some();
    if asserting
        && (headers.contains_key(warp::http::header::AUTHORIZATION)
            || params.get("client_secret").is_some())
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "use one client authentication method, not a client assertion and a secret together",
        ));
    }
    Ok(asserting)
}

/// The authenticated client of a token or revocation request: by its
/// assertion when it presents one, else by `client_id` and secret.
/// `basic` is set when the client tried HTTP Basic (its `invalid_client`
/// then carries the Basic challenge, RFC 6749 §5.2).
pub(super) async fn authenticate(
    app: &Arc<App>,
    headers: &HeaderMap,
    params: &Params,
    basic: &mut bool,
) -> Result<ClientInfo, Refused> {
    if presents_assertion(headers, params)? {
        return by_assertion(app, params).await;
    }
    let presented = Presented::read(authorization(headers)?.as_deref(), params)?;
    *basic = presented.used_basic();
    let client = resolve_client(app, presented.client_id()?).await;
    Ok(presented.authenticate(client)?)
}

/// The client a `private_key_jwt` assertion authenticates (RFC 7523 §2.2):
/// its signature, audience, lifetime and single-use `jti` checked.
async fn by_assertion(app: &Arc<App>, params: &Params) -> Result<ClientInfo, Refused> {
    let client = asserted_client(app, params).await?;
    app.oauth_clients
        .registry
        .authenticate_private_key_jwt(
            &client,
            params.get("client_assertion_type"),
            params.get("client_assertion"),
        )
        .map_err(Refused::Client)?;
    Ok(client)
}

/// The client a request with a client assertion names: its `client_id`
/// parameter, or else the client the assertion claims (read unverified,
/// only to know whose keys check it).
pub(super) async fn asserted_client(
    app: &Arc<App>,
    params: &Params,
) -> Result<ClientInfo, Refused> {
    let unknown = || {
        Refused::OAuth(OAuthError::new(
            ErrorCode::InvalidClient,
            "unknown client or wrong credentials",
        ))
    };
    let claimed = params
        .get("client_assertion")
        .and_then(client_assertion::claimed_client_id);
    let id = params
        .get("client_id")
        .map(str::to_owned)
        .or(claimed)
        .ok_or_else(unknown)?;
    resolve_client(app, &id).await.ok_or_else(unknown)
}
