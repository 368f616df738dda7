//! The cookies the pages read and set. Every one is HttpOnly, scoped to
//! `/gnap/` and `Secure` when the server is reached over https; none holds
//! anything but a random value whose digest the server keeps.
//!
//! | cookie | SameSite | what |
//! |---|---|---|
//! | `gnapd_login_{grant}` | Lax | a sign-in at the configured login, for one grant (`crate::authz::login`); Lax because the IdP's redirect back is a cross-site navigation |
//! | `gnapd_operator` | Strict | the operator's session (`crate::authz::operator`) |
//! | `gnapd_connected` | Lax | the sets this browser connected before (`crate::upstream::earlier`) |
//! | `gnapd_browser` | Lax | this browser, for binding what it started (a sign-in at the login or at an upstream, `crate::upstream::oauth_client::States`) to it |

use warp::http::HeaderMap;

use crate::http::App;

/// The login cookie's name, before the grant id.
const LOGIN: &str = "gnapd_login_";
/// The operator's session cookie.
pub(super) const OPERATOR: &str = "gnapd_operator";
/// The browser's own random name.
const BROWSER: &str = "gnapd_browser";
/// How long a browser keeps its name (a day: sign-ins last minutes).
const BROWSER_LIFETIME: i64 = 24 * 3600;

/// How a cookie travels with cross-site requests.
#[derive(Debug, Clone, Copy)]
pub(super) enum SameSite {
    /// Also on top-level navigations from other sites (the way back from
    /// an IdP or an upstream's sign-in).
    Lax,
    /// Only on requests this site starts.
    Strict,
}

/// The value of cookie `name` in `headers`, if the browser sent it.
pub(super) fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(warp::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// The browser's login cookie for `grant`, if it sent one.
pub(super) fn login(headers: &HeaderMap, grant: &str) -> Option<String> {
    get(headers, &login_name(grant))
}

/// The name of `grant`'s login cookie.
pub(super) fn login_name(grant: &str) -> String {
    format!("{LOGIN}{grant}")
}

/// The browser's operator session cookie, if it sent one.
pub(super) fn operator(headers: &HeaderMap) -> Option<String> {
    get(headers, OPERATOR)
}

/// A `Set-Cookie` header: `name=value` for `max_age` seconds (0 removes
/// it).
pub(super) fn set(
    app: &App,
    name: &str,
    value: &str,
    max_age: i64,
    same_site: SameSite,
) -> (&'static str, String) {
    // Over https a cookie never travels in the clear.
    let secure = if app.auth.config().public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let same_site = match same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
    };
    (
        "set-cookie",
        format!(
            "{name}={value}; Path=/gnap/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
        ),
    )
}

/// The browser's name, if it sent a well-formed one (256 bits,
/// base64url: what [`browser_or_new`] hands out).
pub(super) fn browser(headers: &HeaderMap) -> Option<String> {
    get(headers, BROWSER).filter(|v| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The browser's name, or a fresh one with the `Set-Cookie` that gives
/// it to the browser.
#[allow(clippy::type_complexity)]
pub(super) fn browser_or_new(
    app: &App,
    headers: &HeaderMap,
) -> Result<(String, Option<(&'static str, String)>), crate::random::NoRandomness> {
    if let Some(name) = browser(headers) {
        return Ok((name, None));
    }
    let name = crate::random::text()?;
    let header = set(app, BROWSER, &name, BROWSER_LIFETIME, SameSite::Lax);
    Ok((name, Some(header)))
}
