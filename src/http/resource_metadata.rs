//! RFC 9728 protected resource metadata over HTTP: the document of each
//! upstream's MCP endpoint, at the path-suffixed well-known URL (§3.1,
//! what the 401 challenge names and MCP clients try first) and at the
//! root well-known URL (MCP clients' last try).
//!
//! The root names one resource only: with exactly one upstream, its
//! document; with none or several, 404, since no single `resource` would be
//! the URL a client calls (a client reaches an upstream's own document
//! from its 401 or the path-suffixed URL first).

use super::App;
use crate::authz::Reply;
use crate::proto::oauth::resource_metadata::{WELL_KNOWN, document};

/// The documents change only when an upstream is added or removed.
const CACHE_CONTROL: &str = "public, max-age=300";

/// The upstream a GET to `path` asks the document of: `Some(Some(name))`
/// below `/mcp/`, `Some(None)` at the root, `None` for another path.
pub(super) fn route(path: &str) -> Option<Option<String>> {
    let rest = path.strip_prefix(WELL_KNOWN)?;
    if rest.is_empty() {
        return Some(None);
    }
    rest.strip_prefix("/mcp/").map(|name| Some(name.to_owned()))
}

/// The document for `upstream` (the root's when `None`), or `None` for 404.
pub(super) fn reply(app: &App, upstream: Option<&str>) -> Option<Reply> {
    let name = match upstream {
        Some(name) => app.gateway.upstream(name)?.name.clone(),
        None => match app.gateway.upstreams().as_slice() {
            [only] => only.name.clone(),
            _ => return None,
        },
    };
    let config = app.auth.config();
    let mut reply = Reply::json(
        200,
        &document(
            &config.public_url,
            &config.grant_endpoint(),
            &name,
            app.gateway.external_issuer(),
        ),
    );
    reply.headers.push(("cache-control", CACHE_CONTROL.into()));
    Some(reply)
}
