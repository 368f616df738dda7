//! The user code page (`user_code`, `user_code_uri`): a typed code leads
//! to its grant's consent page, or back to the form saying why.

use std::sync::Arc;

use warp::http::HeaderMap;

use super::consent::started;
use super::form::field;
use super::io::blocking;
use super::refusal::refused;
use crate::authz::Reply;
use crate::http::App;

/// `POST {DEVICE_PATH}`: the code typed, from `source` (attempts are
/// counted).
pub(super) async fn entered(
    app: &Arc<App>,
    form: &[(String, String)],
    source: String,
    headers: &HeaderMap,
) -> Reply {
    let code = field(form, "code").unwrap_or_default().to_owned();
    let auth = app.auth.clone();
    match blocking(move || auth.consent_by_code(&code, &source)).await {
        Ok(view) => started(app, view, headers).await,
        Err(e) => refused(&e),
    }
}
