//! Token endpoint requests (RFC 6749 §4.1.3 code, §6 refresh, §4.4 client
//! credentials with an RFC 7523 assertion), each a form POST with a DPoP
//! proof when the client binds its tokens (RFC 9449 §5), and the reading
//! of the answer (§5.1).

use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Meter, Request, Response};
use crate::proto::oauth::client_assertion::JWT_BEARER_ASSERTION;

/// What a token response gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// `access_token`.
    pub access: String,
    /// `token_type`: `Bearer` or `DPoP`.
    pub token_type: String,
    /// `refresh_token`, if any (none for client credentials).
    pub refresh: Option<String>,
    /// `scope`, as granted.
    pub scope: Option<String>,
}

/// A token request: `fields` as a form, with `dpop_proof` if given.
pub fn request(endpoint: &str, fields: &[(&str, &str)], dpop_proof: Option<&str>) -> Request {
    let request = Request::new("POST", endpoint)
        .form(fields)
        .header("Accept", "application/json");
    match dpop_proof {
        Some(proof) => request.header("DPoP", proof),
        None => request,
    }
}

/// The fields redeeming `code` (public client, PKCE, `resource`).
pub fn code_fields<'a>(
    client_id: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
    verifier: &'a str,
    resource: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("resource", resource),
    ]
}

/// The fields of a refresh (public client).
pub fn refresh_fields<'a>(client_id: &'a str, refresh_token: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", refresh_token),
    ]
}

/// The fields of a client credentials request with `assertion`.
pub fn client_credentials_fields<'a>(
    assertion: &'a str,
    scope: Option<&'a str>,
    resource: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER_ASSERTION),
        ("client_assertion", assertion),
        ("resource", resource),
    ];
    if let Some(scope) = scope {
        fields.push(("scope", scope));
    }
    fields
}

/// Sends a token request and reads the tokens of its 200.
pub(crate) async fn exchange(meter: &mut Meter, request: Request) -> Result<Tokens, DriverError> {
    let answer = meter.send(request).await?;
    read(&answer)
}

/// The tokens of a §5.1 answer, or the §5.2 error as a protocol error.
pub fn read(answer: &Response) -> Result<Tokens, DriverError> {
    if answer.status != 200 {
        return Err(unexpected("token request", answer));
    }
    let body = answer.json();
    let text = |name: &str| body[name].as_str().map(str::to_owned);
    Ok(Tokens {
        access: text("access_token").ok_or_else(|| unexpected("no access_token", answer))?,
        token_type: text("token_type").ok_or_else(|| unexpected("no token_type", answer))?,
        refresh: text("refresh_token"),
        scope: text("scope"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::oauth::form::Params;

    #[test]
    fn each_grant_is_a_form_gnapd_reads_back() {
        let fields = code_fields(
            "c1",
            "k&1",
            "http://127.0.0.1:1/cb",
            "v",
            "http://a:1/mcp/x",
        );
        let req = request("http://a:1/oauth/token", &fields, Some("proof"));
        let params = Params::parse(&req.body).unwrap();
        assert_eq!(params.get("grant_type"), Some("authorization_code"));
        assert_eq!(params.get("code"), Some("k&1"));
        assert_eq!(params.get("resource"), Some("http://a:1/mcp/x"));
        assert!(req.headers.iter().any(|(n, v)| n == "DPoP" && v == "proof"));
        let refresh = request("x", &refresh_fields("c1", "r1"), None);
        assert!(!refresh.headers.iter().any(|(n, _)| n == "DPoP"));
        assert_eq!(
            Params::parse(&refresh.body).unwrap().get("refresh_token"),
            Some("r1")
        );
        let cc = client_credentials_fields("jwt", Some("mcp:a"), "http://a:1/mcp/a");
        let params = Params::parse(&request("x", &cc, None).body).unwrap();
        assert_eq!(
            params.get("client_assertion_type"),
            Some(JWT_BEARER_ASSERTION)
        );
        assert_eq!(params.get("scope"), Some("mcp:a"));
    }

    #[test]
    fn a_token_answer_reads_and_an_error_is_refused() {
        let ok = Response {
            status: 200,
            headers: vec![],
            body:
                br#"{"access_token":"a","token_type":"DPoP","refresh_token":"r","scope":"mcp:x"}"#
                    .to_vec(),
        };
        let tokens = read(&ok).unwrap();
        assert_eq!(tokens.token_type, "DPoP");
        assert_eq!(tokens.refresh.as_deref(), Some("r"));
        let err = Response {
            status: 400,
            headers: vec![],
            body: br#"{"error":"invalid_grant"}"#.to_vec(),
        };
        assert!(read(&err).is_err());
    }
}
