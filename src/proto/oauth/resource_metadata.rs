//! RFC 9728 protected resource metadata for the gateway's MCP endpoint of
//! one upstream, and the URLs that name it. The resource identifier is
//! exactly the URL an agent configures (`{public}/mcp/{upstream}`, §3.3:
//! a client refuses a document whose `resource` differs from it). The
//! authorization servers are gnapd itself (its issuer is the public URL),
//! then the external OAuth AS whose tokens the gateway also accepts
//! (`[external_oauth_as]`), if one is configured.

use serde_json::{Value, json};

use super::{dpop, scope};

/// Where the documents are served: RFC 9728 §3.1 puts the well-known
/// suffix between the host and the resource's path.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The resource identifier of `upstream`: the gateway URL a client calls
/// and the audience (RFC 8707) of the tokens that may reach it.
pub fn resource(public_url: &str, upstream: &str) -> String {
    format!("{public_url}/mcp/{upstream}")
}

/// The URL of `upstream`'s document, as the `resource_metadata` challenge
/// parameter names it (RFC 9728 §5.1).
pub fn metadata_url(public_url: &str, upstream: &str) -> String {
    format!("{public_url}{WELL_KNOWN}/mcp/{upstream}")
}

/// The document for `upstream` (RFC 9728 §2). `grant_endpoint` fills two
/// extension members for GNAP clients (§2 allows members it does not
/// register; OAuth clients ignore them): `gnap_as_uri` and `access`, what
/// the GNAP challenge says (RFC 9635 §9.1). `external` is the external
/// AS's issuer: both issue tokens the gateway accepts, so both are listed,
/// gnapd first (its own tokens keep working, and GNAP clients read the
/// extension members that point at it).
pub fn document(
    public_url: &str,
    grant_endpoint: &str,
    upstream: &str,
    external: Option<&str>,
) -> Value {
    let mut servers = vec![public_url];
    servers.extend(external);
    json!({
        "resource": resource(public_url, upstream),
        "authorization_servers": servers,
        // The whole upstream; narrower scopes (`mcp:NAME:tool:T`) are
        // accepted too but not listed: the tools are the upstream's to say.
        "scopes_supported": [scope::whole_upstream(upstream)],
        // RFC 6750 §2.1 only: a token in a form body or query would cross
        // the gateway's "no query" and "body is one JSON-RPC message" rules.
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": dpop::ALGS,
        "dpop_bound_access_tokens_required": false,
        "resource_name": format!("gnapd MCP gateway: {upstream}"),
        "gnap_as_uri": grant_endpoint,
        "access": scope::whole_upstream(upstream),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_is_the_mcp_url_and_gnapd_its_authorization_server() {
        let doc = document(
            "https://gw.example",
            "https://gw.example/gnap",
            "github",
            None,
        );
        assert_eq!(doc["resource"], "https://gw.example/mcp/github");
        assert_eq!(doc["authorization_servers"], json!(["https://gw.example"]));
        assert_eq!(doc["scopes_supported"], json!(["mcp:github"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            doc["dpop_signing_alg_values_supported"],
            json!(["ES256", "ES384", "EdDSA", "PS512", "RS256"])
        );
        assert_eq!(doc["gnap_as_uri"], "https://gw.example/gnap");
        assert_eq!(doc["access"], "mcp:github");
        // RFC 9728 §5.1 / MCP: the metadata URL is the path-suffixed one.
        assert_eq!(
            metadata_url("https://gw.example", "github"),
            "https://gw.example/.well-known/oauth-protected-resource/mcp/github"
        );
        // MCP: `offline_access` is never advertised.
        assert!(!doc.to_string().contains("offline_access"));
    }

    #[test]
    fn resource_metadata_lists_the_external_issuer_after_gnapds() {
        let doc = document(
            "https://gw.example",
            "https://gw.example/gnap",
            "github",
            Some("https://idp.example"),
        );
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://gw.example", "https://idp.example"])
        );
    }
}
