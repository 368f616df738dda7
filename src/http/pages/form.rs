//! Reading what a browser sent: `application/x-www-form-urlencoded`
//! bodies and queries, and their fields.

use warp::http::HeaderMap;

/// Largest form body read: a decision lists at most a few hundred boxes.
pub const MAX_FORM: usize = 16 * 1024;

/// Reads `application/x-www-form-urlencoded` text.
pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &[u8]) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < text.len() => {
                    let hex = std::str::from_utf8(&text[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(byte) => {
                            out.push(byte);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                other => out.push(other),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode(parts.next().unwrap_or_default());
            let value = decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(warp::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

pub(super) fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The `error` an authorization server sent back instead of a code
/// (RFC 6749 §4.1.2.1), when it is a plain code word fit to show; else
/// "no code".
pub(super) fn provider_error(query: &[(String, String)]) -> &str {
    field(query, "error")
        .filter(|e| e.len() <= 64 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or("no code")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_decoded() {
        assert_eq!(
            parse_form(b"code=ab+cd-%45F&tool=0.1.2&tool=0.1.3&x&bad=%zz%4"),
            [
                ("code".to_owned(), "ab cd-EF".to_owned()),
                ("tool".into(), "0.1.2".into()),
                ("tool".into(), "0.1.3".into()),
                ("x".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }
}
