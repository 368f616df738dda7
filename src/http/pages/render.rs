//! What every page is made of: the stylesheet, the security headers, the
//! message and user code templates, and a 303.
//!
//! Every page carries [`security_headers`]: no framing, a CSP that allows
//! only the inline stylesheet (by its hash) and forms posting to this
//! server (and, on a page whose grant finishes by redirect, the client's
//! registered origin, where the decision's 303 goes), no referrer, no
//! caching.

use std::sync::LazyLock;

use askama::Template;

use crate::authz::{DEVICE_PATH, Reply};

/// The pages' stylesheet, inlined in every page.
pub(super) const CSS: &str = include_str!("../../../templates/style.css");

/// `'sha256-…'` of [`CSS`], for `style-src`.
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "'sha256-{}'",
        crate::proto::b64::encode_std(&crate::proto::hash::sha256(CSS.as_bytes()))
    )
});

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    css: &'a str,
    error: Option<String>,
    action: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    css: &'a str,
    heading: &'a str,
    message: &'a str,
    next: Option<&'a str>,
    class: &'a str,
}

/// The headers every page carries. `form_target` is an extra CSP source
/// forms may be sent to (the client's origin, for a redirect finish).
pub(crate) fn security_headers(form_target: Option<&str>) -> Vec<(&'static str, String)> {
    let form_action = match form_target {
        Some(source) => format!("'self' {source}"),
        None => "'self'".to_owned(),
    };
    vec![
        ("content-type", "text/html; charset=utf-8".into()),
        ("cache-control", "no-store".into()),
        ("x-frame-options", "DENY".into()),
        (
            "content-security-policy",
            format!(
                "default-src 'none'; style-src {}; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'",
                *STYLE_HASH
            ),
        ),
        ("referrer-policy", "no-referrer".into()),
        ("x-content-type-options", "nosniff".into()),
    ]
}

pub(super) fn html(
    status: u16,
    body: Result<String, askama::Error>,
    form_target: Option<&str>,
) -> Reply {
    match body {
        Ok(body) => Reply {
            status,
            headers: security_headers(form_target),
            body: body.into_bytes(),
        },
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            Reply {
                status: 500,
                headers: security_headers(None),
                body: b"<!doctype html><title>Error</title><p>The page could not be shown.</p>"
                    .to_vec(),
            }
        }
    }
}

pub(super) fn message(
    status: u16,
    heading: &str,
    text: &str,
    next: Option<&str>,
    class: &str,
) -> Reply {
    let page = MessagePage {
        css: CSS,
        heading,
        message: text,
        next,
        class,
    };
    html(status, page.render(), None)
}

pub(super) fn device_form(status: u16, error: Option<String>) -> Reply {
    let page = DevicePage {
        css: CSS,
        error,
        action: DEVICE_PATH,
    };
    html(status, page.render(), None)
}

/// A 303 to `url` (an IdP, an upstream's sign-in, the client's registered
/// finish URI), with the pages' security headers.
pub(super) fn see_other(url: String) -> Reply {
    let mut headers = security_headers(None);
    headers.push(("location", url));
    Reply {
        status: 303,
        headers,
        body: Vec::new(),
    }
}

/// The page for a callback whose `state` is unknown, used or expired; the
/// person goes back to the request's page to `retry` ("connect", "sign in").
pub(super) fn invalid_sign_in(retry: &str) -> Reply {
    message(
        400,
        "This sign-in is not valid here",
        &format!(
            "It may have been used already, or it expired. Go back to the request's page and {retry} again."
        ),
        None,
        "error",
    )
}
