//! The `oauth_params` hook: OAuth parameters as the OAuth face reads them
//! (query strings and form bodies), and the checks run on their values.

use crate::proto::oauth::form::Params;
use crate::proto::oauth::{pkce, redirect, resource};

/// Most values compared pairwise as redirect URIs (the pairs are squared).
const MAX_PAIRED: usize = 8;

/// OAuth parameters and their checks.
///
/// Input: a query string or form body. Properties:
///
/// - what parses re-encodes and parses back to the same parameters (so
///   no value is read differently the second time, and a repeated name is
///   never silently merged);
/// - a redirect URI matches itself exactly when it may be registered, a
///   loopback one may always be, and a match is only ever to a URI that
///   may be registered, whichever was registered;
/// - a value that is a PKCE verifier verifies against its own S256
///   challenge, which is well formed; anything else never verifies;
/// - a resource that is accepted is the one upstream's canonical URI.
pub fn oauth_params(data: &[u8]) {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let mut encoded = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter() {
        encoded.append_pair(name, value);
    }
    assert_eq!(
        Params::parse(encoded.finish().as_bytes()).as_ref(),
        Ok(&params),
        "parameters do not round trip"
    );
    let values: Vec<&str> = params.iter().map(|(_, v)| v).collect();
    for value in &values {
        let may = redirect::check(value).is_ok();
        assert_eq!(redirect::matches(value, value), may, "{value}");
        if redirect::is_loopback(value) {
            assert!(may, "a loopback redirect is refused: {value}");
        }
        let challenge = pkce::s256(value);
        assert!(pkce::is_s256_challenge(&challenge));
        assert_eq!(pkce::verify(value, &challenge), pkce::is_verifier(value));
        if let Ok(chosen) = resource::choose(
            Some(value),
            &[],
            "https://gw.example",
            &|name| name == "github",
            None,
        ) {
            assert_eq!(chosen.uri, "https://gw.example/mcp/github");
            assert_eq!(chosen.upstream, "github");
        }
    }
    for registered in values.iter().take(MAX_PAIRED) {
        for requested in values.iter().take(MAX_PAIRED) {
            if redirect::matches(registered, requested) {
                assert!(redirect::check(requested).is_ok(), "{requested}");
                assert!(redirect::check(registered).is_ok(), "{registered}");
            }
        }
    }
}
