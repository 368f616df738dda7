//! Discovery as the MCP authorization specification orders it: the
//! unauthenticated MCP request, its 401 and `Bearer` challenge, the
//! protected resource metadata it names (RFC 9728), then the
//! authorization server's metadata (RFC 8414) at the first well-known URL
//! the specification has a client try. Each fetch is one exchange through
//! the agent's meter; a URL that does not answer 200 is tried and counted
//! like any other.

use serde_json::Value;

use super::challenge::{self, BearerChallenge};
use crate::compare::driver::{self, DriverError, unexpected};
use crate::compare::meter::{Meter, Request, Response};
use crate::proto::oauth::resource_metadata::WELL_KNOWN;

/// What discovery found.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The MCP URL called (the resource, RFC 8707).
    pub resource: String,
    /// The scope the 401 challenge asked for (MCP: used as it stands).
    pub scope: Option<String>,
    /// The authorization server's metadata.
    pub metadata: AsMetadata,
}

/// The RFC 8414 members the client uses.
#[derive(Debug, Clone, Default)]
pub struct AsMetadata {
    /// `issuer`, equal to the URL the document was found from.
    pub issuer: String,
    /// `authorization_endpoint`.
    pub authorization_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `revocation_endpoint` (RFC 7009), if any.
    pub revocation_endpoint: Option<String>,
    /// `registration_endpoint` (RFC 7591), if any.
    pub registration_endpoint: Option<String>,
    /// `client_id_metadata_document_supported`.
    pub cimd_supported: bool,
}

/// Which of the resource's authorization servers the client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The first listed (the gateway's own AS comes first).
    First,
    /// The first on another origin than the resource: a client set up to
    /// use the external AS the gateway also trusts.
    External,
}

/// The three fetches in order: probe, resource metadata, AS metadata.
pub(crate) async fn discover(
    meter: &mut Meter,
    gateway: &str,
    choice: Choice,
) -> Result<Discovered, DriverError> {
    let challenge = probe(meter, gateway).await?;
    let prm_url = challenge
        .resource_metadata
        .clone()
        .unwrap_or_else(|| path_suffixed(gateway, WELL_KNOWN));
    let prm = resource_metadata(meter, &prm_url).await?;
    let resource = prm["resource"].as_str().unwrap_or_default().to_owned();
    // RFC 9728 §3.3: the document is for the URL the client called.
    if resource != gateway {
        return Err(DriverError::Protocol(format!(
            "resource metadata names {resource:?}, not {gateway:?}"
        )));
    }
    let issuer = choose(&prm["authorization_servers"], gateway, choice)
        .ok_or_else(|| DriverError::Protocol(format!("no {choice:?} authorization server")))?;
    let metadata = as_metadata(meter, &issuer).await?;
    Ok(Discovered {
        resource,
        scope: challenge.scope,
        metadata,
    })
}

/// The issuer `choice` picks among `servers` for the resource `gateway`.
fn choose(servers: &Value, gateway: &str, choice: Choice) -> Option<String> {
    let own = split_origin(gateway).0;
    servers
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find(|issuer| choice == Choice::First || split_origin(issuer).0 != own)
        .map(str::to_owned)
}

/// The unauthenticated `initialize`: a 401 with a `Bearer` challenge.
pub(crate) async fn probe(
    meter: &mut Meter,
    gateway: &str,
) -> Result<BearerChallenge, DriverError> {
    let answer = meter.send(driver::initialize(gateway, None)).await?;
    if answer.status != 401 {
        return Err(unexpected("the unauthenticated MCP request", &answer));
    }
    challenge::bearer(answer.headers_named("www-authenticate"))
        .ok_or_else(|| unexpected("a 401 without a Bearer challenge", &answer))
}

/// The RFC 9728 document at `url`.
pub(crate) async fn resource_metadata(meter: &mut Meter, url: &str) -> Result<Value, DriverError> {
    let answer = meter.send(Request::new("GET", url)).await?;
    json_200("protected resource metadata", &answer)
}

/// The RFC 8414 document of `issuer`: each URL of [`metadata_urls`] in
/// turn until one answers 200; its `issuer` must be `issuer` (§3.3).
pub(crate) async fn as_metadata(
    meter: &mut Meter,
    issuer: &str,
) -> Result<AsMetadata, DriverError> {
    let mut last = None;
    for url in metadata_urls(issuer) {
        let answer = meter.send(Request::new("GET", &url)).await?;
        if answer.status == 200 {
            let doc = json_200("authorization server metadata", &answer)?;
            return read_metadata(issuer, &doc);
        }
        last = Some(answer);
    }
    Err(match last {
        Some(answer) => unexpected("authorization server metadata", &answer),
        None => DriverError::Protocol(format!("no metadata URL for {issuer}")),
    })
}

/// Reads the members the client needs, checking `issuer`.
pub fn read_metadata(issuer: &str, doc: &Value) -> Result<AsMetadata, DriverError> {
    let text = |name: &str| doc[name].as_str().map(str::to_owned);
    if text("issuer").as_deref() != Some(issuer) {
        return Err(DriverError::Protocol(format!(
            "metadata issuer {:?} is not {issuer:?}",
            doc["issuer"]
        )));
    }
    // MCP: a client refuses an AS that does not say it supports S256.
    let s256 = doc["code_challenge_methods_supported"]
        .as_array()
        .is_some_and(|m| m.iter().any(|m| m == "S256"));
    if !s256 {
        return Err(DriverError::Protocol(
            "the AS does not list PKCE S256".into(),
        ));
    }
    let required = |name: &str| {
        text(name).ok_or_else(|| DriverError::Protocol(format!("metadata without {name}")))
    };
    Ok(AsMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        revocation_endpoint: text("revocation_endpoint"),
        registration_endpoint: text("registration_endpoint"),
        cimd_supported: doc["client_id_metadata_document_supported"] == true,
    })
}

/// The URLs MCP has a client try for `issuer`'s metadata, in order: with
/// a path, the RFC 8414 path-inserted URL, the OpenID one inserted, then
/// the OpenID one appended; without, the two well-known URLs at the root.
pub fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let (origin, path) = split_origin(issuer);
    if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    }
}

/// RFC 9728 §3.1: the well-known suffix between the host and the path.
fn path_suffixed(url: &str, well_known: &str) -> String {
    let (origin, path) = split_origin(url);
    format!("{origin}{well_known}{path}")
}

/// `scheme://authority` and the rest (empty or starting with `/`).
fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

fn json_200(what: &str, answer: &Response) -> Result<Value, DriverError> {
    if answer.status != 200 {
        return Err(unexpected(what, answer));
    }
    match answer.json() {
        Value::Object(map) => Ok(Value::Object(map)),
        _ => Err(unexpected(what, answer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_urls_follow_the_mcp_order() {
        assert_eq!(
            metadata_urls("http://127.0.0.1:9"),
            [
                "http://127.0.0.1:9/.well-known/oauth-authorization-server",
                "http://127.0.0.1:9/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://as.example/tenant1/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant1",
                "https://as.example/.well-known/openid-configuration/tenant1",
                "https://as.example/tenant1/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            path_suffixed("http://127.0.0.1:9/mcp/alpha", WELL_KNOWN),
            "http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp/alpha"
        );
    }

    #[test]
    fn the_external_choice_skips_the_gateways_own_as() {
        let servers = json!(["http://127.0.0.1:9", "http://127.0.0.1:7"]);
        let gateway = "http://127.0.0.1:9/mcp/alpha";
        assert_eq!(
            choose(&servers, gateway, Choice::First).as_deref(),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(
            choose(&servers, gateway, Choice::External).as_deref(),
            Some("http://127.0.0.1:7")
        );
        assert!(choose(&json!(["http://127.0.0.1:9"]), gateway, Choice::External).is_none());
    }

    #[test]
    fn metadata_must_name_its_issuer_and_s256() {
        let doc = json!({
            "issuer": "http://a:1", "authorization_endpoint": "http://a:1/oauth/authorize",
            "token_endpoint": "http://a:1/oauth/token", "code_challenge_methods_supported": ["S256"],
            "registration_endpoint": "http://a:1/oauth/register",
            "client_id_metadata_document_supported": true,
        });
        let read = read_metadata("http://a:1", &doc).unwrap();
        assert_eq!(read.token_endpoint, "http://a:1/oauth/token");
        assert!(read.cimd_supported && read.revocation_endpoint.is_none());
        assert!(read_metadata("http://b:1", &doc).is_err());
        let mut plain = doc.clone();
        plain["code_challenge_methods_supported"] = json!(["plain"]);
        assert!(read_metadata("http://a:1", &plain).is_err());
    }
}
