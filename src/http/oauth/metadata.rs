//! `GET /.well-known/oauth-authorization-server` and
//! `GET /.well-known/openid-configuration`: the RFC 8414 document, the same
//! at both (MCP clients try either; the issuer has no path).

use super::{App, method_not_allowed};
use crate::authz::Reply;
use crate::proto::oauth::metadata::{Settings, document};
use crate::proto::oauth::scope;
use warp::http::Method;

pub(super) fn serve(app: &App, method: &Method) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return method_not_allowed("GET");
    }
    let scopes = app
        .gateway
        .upstreams()
        .iter()
        .map(|u| scope::whole_upstream(&u.name))
        .collect();
    let settings = Settings {
        issuer: &app.auth.config().public_url,
        registration: app.oauth_clients.registry.settings().registration,
        grant_types: vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            crate::authz::oauth::JWT_BEARER,
        ],
        auth_methods: vec![
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        scopes,
    };
    // Public and the same for everyone: caches may keep it a little.
    let mut reply = Reply::json(200, &document(&settings));
    reply.headers.retain(|(name, _)| *name != "cache-control");
    reply.with_header("cache-control", "public, max-age=300")
}
