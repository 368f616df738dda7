//! The pages a person sees (RFC 9635 §4.1): the interaction page of a
//! pending grant, the user code page that leads to it, and the done,
//! denied, expired and error pages. Server-rendered from the askama
//! templates in `templates/` (checked when the crate compiles, HTML-escaped
//! by default); no JavaScript.
//!
//! | route | what |
//! |---|---|
//! | `GET {INTERACT_PATH}{grant}/{secret}` | the interaction page (`redirect` start) |
//! | `POST {INTERACT_PATH}{grant}` | a decision: form token, `decision`, ticked `right`s and `tool`s |
//! | `GET {DEVICE_PATH}` | the user code form (`user_code`, `user_code_uri`) |
//! | `POST {DEVICE_PATH}` | a typed code: the interaction page, or the form again |
//! | `GET|POST {OPERATOR_PATH}` | the operator's one-time sign-in (`operator`) |
//! | `POST {OPERATOR_SIGN_OUT_PATH}` | the operator signs out |
//! | `GET {CONNECT_CALLBACK_PATH}`, `GET {LOGIN_CALLBACK_PATH}` | back from an upstream's or the login's sign-in |
//!
//! Every page carries `render::security_headers` (no framing, a CSP, no
//! referrer, no caching). The decisions are the consent service's
//! (`crate::authz::decision`, who decides: `crate::authz::decider`); the
//! files here read what the browser sent, call it and render, one flow
//! each:
//!
//! | file | what |
//! |---|---|
//! | `consent` | a grant's page: by its link, after a code, again with a notice |
//! | `decide` | what its form posts: Approve/Deny, Sign in, Connect, Forget |
//! | `device` | the user code page |
//! | `connect` | an upstream's OAuth sign-in and its callback |
//! | `login` | the configured login's sign-in and its callback |
//! | `finish` | the finish method after a decision, and the answer |
//! | `operator` | the operator's one-time sign-in and sign-out |
//! | `render`, `refusal`, `form`, `cookies`, `io` | templates and headers, refusal pages, form reading, cookies, the service's I/O |

use std::sync::Arc;

use bytes::Bytes;
use warp::http::{Method, Response};

use super::{App, to_response};
use crate::authz::login::LOGIN_CALLBACK_PATH;
use crate::authz::operator::{OPERATOR_PATH, OPERATOR_SIGN_OUT_PATH};
use crate::authz::{DEVICE_PATH, INTERACT_PATH};
use form::{is_form, parse_form};
use render::{device_form, message};

pub use form::MAX_FORM;

mod connect;
mod consent;
mod cookies;
mod decide;
mod device;
mod finish;
mod form;
mod io;
mod login;
mod operator;
mod refusal;
mod render;

/// A page route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageRoute {
    /// An interaction page by its link.
    Interaction {
        /// Grant id.
        grant: String,
        /// The link's secret.
        secret: String,
    },
    /// The decision address of a grant.
    Decide(String),
    /// The user code page.
    Device,
    /// Where an upstream's AS sends the browser back after an OAuth
    /// connect ([`CONNECT_CALLBACK_PATH`]).
    ConnectCallback,
    /// Where the login's IdP sends the browser back ([`LOGIN_CALLBACK_PATH`]).
    LoginCallback,
    /// The operator's sign-in page ([`OPERATOR_PATH`]).
    Operator,
    /// Where the operator signs out ([`OPERATOR_SIGN_OUT_PATH`]).
    OperatorSignOut,
}

/// The redirect URI gnapd registers at upstreams' authorization servers.
pub(crate) const CONNECT_CALLBACK_PATH: &str = "/gnap/connect/callback";

impl PageRoute {
    /// The page route `path` names, if any.
    pub(crate) fn of(path: &str) -> Option<Self> {
        if path == DEVICE_PATH {
            return Some(Self::Device);
        }
        if path == CONNECT_CALLBACK_PATH {
            return Some(Self::ConnectCallback);
        }
        if path == LOGIN_CALLBACK_PATH {
            return Some(Self::LoginCallback);
        }
        if path == OPERATOR_PATH {
            return Some(Self::Operator);
        }
        if path == OPERATOR_SIGN_OUT_PATH {
            return Some(Self::OperatorSignOut);
        }
        let rest = path.strip_prefix(INTERACT_PATH)?;
        match rest.split_once('/') {
            Some((grant, secret)) if !secret.is_empty() && !secret.contains('/') => {
                Some(Self::Interaction {
                    grant: grant.to_owned(),
                    secret: secret.to_owned(),
                })
            }
            Some(_) => None,
            None if !rest.is_empty() => Some(Self::Decide(rest.to_owned())),
            None => None,
        }
    }
}

/// Serves a page route. `source` names the browser's address (attempt
/// counting).
pub(crate) async fn serve(
    app: Arc<App>,
    method: Method,
    route: PageRoute,
    query: &str,
    headers: &warp::http::HeaderMap,
    body: Vec<u8>,
    source: String,
) -> Response<Bytes> {
    if let Err(retry_after) = app.auth.admit_page(&source) {
        let mut reply = message(
            429,
            "Too many requests",
            "Too many requests came from your address.",
            Some("Wait a minute and reload the page."),
            "error",
        );
        reply.headers.push(("retry-after", retry_after.to_string()));
        return to_response(reply);
    }
    let reply = match (route, &method) {
        (PageRoute::ConnectCallback, &Method::GET) => {
            connect::callback(&app, &parse_form(query.as_bytes()), headers).await
        }
        (PageRoute::LoginCallback, &Method::GET) => {
            login::callback(&app, &parse_form(query.as_bytes()), headers).await
        }
        (PageRoute::Device, &Method::GET | &Method::HEAD) => device_form(200, None),
        (PageRoute::Operator, &Method::GET | &Method::HEAD) => {
            operator::page(&parse_form(query.as_bytes()))
        }
        (PageRoute::Operator, &Method::POST) if is_form(headers) => {
            operator::sign_in(&app, &parse_form(&body), &source)
        }
        (PageRoute::OperatorSignOut, &Method::POST) if is_form(headers) => {
            operator::sign_out(&app, headers)
        }
        (PageRoute::Interaction { grant, secret }, &Method::GET | &Method::HEAD) => {
            consent::by_link(&app, grant, secret, headers).await
        }
        (PageRoute::Device, &Method::POST) if is_form(headers) => {
            device::entered(&app, &parse_form(&body), source, headers).await
        }
        (PageRoute::Decide(grant), &Method::POST) if is_form(headers) => {
            decide::decide(&app, grant, &parse_form(&body), source, headers).await
        }
        (_, &Method::POST) => message(
            415,
            "Not a form",
            "This address takes the page's own form only.",
            None,
            "error",
        ),
        _ => {
            let mut reply = message(
                405,
                "Not here",
                "This address does not take that kind of request.",
                None,
                "error",
            );
            reply.headers.push(("allow", "GET, POST".into()));
            reply
        }
    };
    to_response(reply)
}

#[cfg(test)]
mod tests {
    use super::render::security_headers;
    use super::*;

    #[test]
    fn page_routes_are_recognized() {
        assert_eq!(PageRoute::of("/gnap/device"), Some(PageRoute::Device));
        assert_eq!(
            PageRoute::of("/gnap/interact/g-1/s3cret"),
            Some(PageRoute::Interaction {
                grant: "g-1".into(),
                secret: "s3cret".into()
            })
        );
        assert_eq!(
            PageRoute::of("/gnap/interact/g-1"),
            Some(PageRoute::Decide("g-1".into()))
        );
        for other in [
            "/gnap/interact/",
            "/gnap/interact/g/",
            "/gnap/interact/g/s/x",
            "/gnap/devices",
        ] {
            assert_eq!(PageRoute::of(other), None, "{other}");
        }
    }

    #[test]
    fn every_page_denies_framing_scripts_and_referrers() {
        let headers = security_headers(Some("https://client.example"));
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("x-frame-options"), "DENY");
        assert_eq!(get("referrer-policy"), "no-referrer");
        assert_eq!(get("cache-control"), "no-store");
        let csp = get("content-security-policy");
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("form-action 'self' https://client.example;"));
        assert!(csp.contains("frame-ancestors 'none'; base-uri 'none'"));
    }
}
