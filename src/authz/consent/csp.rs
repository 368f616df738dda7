//! The CSP source a page allows its forms to be sent to, for the 303s
//! that follow them (the client's finish URI, an IdP's or an upstream's
//! sign-in).

/// The CSP source for the browser's way back to the client: the origin of
/// an `http`/`https` URI, or the scheme of an application's URI. `None`
/// for anything with characters a CSP source cannot hold.
pub(crate) fn csp_source(uri: &str) -> Option<String> {
    let (scheme, _) = uri.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let is_scheme = scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !is_scheme {
        return None;
    }
    let source = match scheme.as_str() {
        "http" | "https" => {
            let parsed: ::http::Uri = uri.parse().ok()?;
            format!("{scheme}://{}", parsed.authority()?.as_str())
        }
        _ => format!("{scheme}:"),
    };
    let safe = source
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-+:/[]".contains(&b));
    safe.then_some(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_sources_are_origins_or_schemes_and_nothing_else() {
        assert_eq!(
            csp_source("https://client.example:8443/cb?x=1").as_deref(),
            Some("https://client.example:8443")
        );
        assert_eq!(
            csp_source("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        assert_eq!(csp_source("https://a@b.example/cb"), None);
        assert_eq!(csp_source("not a uri"), None);
    }
}
