//! The person on gnapd's consent page, for both drivers: the browser opens
//! the page (GNAP's interaction URL, OAuth's authorization URL), the
//! person reads it and decides once (`tap.person()`), the browser submits
//! the form as it stands (every box left ticked) and follows the answer's
//! redirects up to the client's own callback, which it does not fetch.

use super::driver::{DriverError, unexpected};
use super::meter::{Browsed, Meter, Request, Response};

/// The consent form as a browser would submit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// The form's `action`, as written (a path, usually).
    pub action: String,
    /// The fields a browser sends as they stand: hidden inputs (the form
    /// token), ticked checkboxes and chosen radio buttons, in page order.
    pub fields: Vec<(String, String)>,
}

impl ConsentForm {
    /// The form body for `decision` (`approve`, `deny`).
    pub fn submission<'a>(&'a self, decision: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        fields.push(("decision", decision));
        fields
    }
}

/// Reads the first `method="post"` form of `html`: its action and what a
/// browser submits without the person changing anything. Text and password
/// inputs are left out (empty: a browser would send them empty, and the
/// page's own tests submit without them).
pub fn read_form(html: &str) -> Option<ConsentForm> {
    let start = html.find("<form")?;
    let rest = &html[start..];
    let end = rest.find("</form>").unwrap_or(rest.len());
    let form = &rest[..end];
    let open = &form[..form.find('>')?];
    if !attr(open, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
        return None;
    }
    let action = attr(open, "action")?;
    let mut fields = Vec::new();
    for tag in form.split('<').filter(|t| t.starts_with("input")) {
        let tag = tag.split('>').next().unwrap_or(tag);
        let (Some(name), kind) = (attr(tag, "name"), attr(tag, "type")) else {
            continue;
        };
        let value = attr(tag, "value").unwrap_or_default();
        let sent = match kind.as_deref().unwrap_or("text") {
            "hidden" => true,
            "checkbox" | "radio" => has_flag(tag, "checked"),
            _ => false,
        };
        if sent {
            fields.push((name, value));
        }
    }
    Some(ConsentForm { action, fields })
}

/// The person approves everything asked for on the page at `page_url`;
/// returns the callback URL the browser was sent to (it starts with
/// `callback_prefix`, and is not fetched).
pub async fn approve(
    browser: &mut Meter,
    page_url: &str,
    callback_prefix: &str,
) -> Result<String, DriverError> {
    decide(browser, page_url, callback_prefix, "approve").await
}

/// [`approve`] with any `decision` (`deny`).
pub async fn decide(
    browser: &mut Meter,
    page_url: &str,
    callback_prefix: &str,
    decision: &str,
) -> Result<String, DriverError> {
    let page = match browser.browse(page_url, callback_prefix).await? {
        // Decided before the page was shown (nothing for a person to do).
        Browsed::Callback(url) => return Ok(url),
        Browsed::Page(page) => page,
    };
    let form = consent_form(&page)?;
    browser.tap().person();
    let action = absolute(page_url, &form.action);
    let submit = Request::new("POST", &action).form(&form.submission(decision));
    match browser.follow(submit, callback_prefix).await? {
        Browsed::Callback(url) => Ok(url),
        Browsed::Page(answer) => Err(unexpected(
            "the consent page's answer did not send the browser back",
            &answer,
        )),
    }
}

fn consent_form(page: &Response) -> Result<ConsentForm, DriverError> {
    if page.status != 200 {
        return Err(unexpected("the consent page", page));
    }
    read_form(&page.text()).ok_or_else(|| unexpected("the consent page has no form", page))
}

/// `action` made absolute against `page_url`'s origin (the page and its
/// form are on one server; an absolute action stays as it is).
pub fn absolute(page_url: &str, action: &str) -> String {
    if action.starts_with("http://") || action.starts_with("https://") {
        return action.to_owned();
    }
    let origin_end = page_url
        .find("://")
        .map(|i| i + 3)
        .and_then(|i| page_url[i..].find('/').map(|j| i + j))
        .unwrap_or(page_url.len());
    format!("{}{action}", &page_url[..origin_end])
}

/// The value of attribute `name="…"` in a tag's text, entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let mut from = 0;
    while let Some(i) = tag[from..].find(name) {
        let at = from + i;
        let before = tag[..at].chars().next_back();
        let after = &tag[at + name.len()..];
        if before.is_some_and(char::is_whitespace)
            && let Some(quoted) = after.strip_prefix("=\"")
        {
            let end = quoted.find('"')?;
            return Some(decode_entities(&quoted[..end]));
        }
        from = at + name.len();
    }
    None
}

/// Whether a tag carries the boolean attribute `name`.
fn has_flag(tag: &str, name: &str) -> bool {
    tag.split(|c: char| c.is_whitespace() || c == '/')
        .any(|word| word == name)
}

/// `&amp;` `&lt;` `&gt;` `&quot;` `&apos;` and numeric references.
fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<html><body><h1>Approve?</h1>
<form method="post" action="&#x2f;gnap&#x2f;interact&#x2f;g1&amp;x">
<input type="hidden" name="csrf" value="A&#43;b&quot;c">
<label><input type="checkbox" name="right" value="0" checked> <span>all</span></label>
<label><input type="checkbox" name="tool" value="0:echo" checked> x</label>
<label><input type="checkbox" name="tool" value="0:add"> x</label>
<label><input type="radio" name="use:alpha" value="e1" checked> x</label>
<label><input type="radio" name="use:alpha" value=""> x</label>
<input type="password" id="key:alpha" name="key:alpha" autocomplete="off">
<button type="submit" name="decision" value="approve">Approve</button>
</form>
<form method="post" action="/signout"><button>Sign out</button></form>
</body></html>"#;

    #[test]
    fn the_form_reads_as_a_browser_would_submit_it() {
        let form = read_form(PAGE).unwrap();
        assert_eq!(form.action, "/gnap/interact/g1&x");
        assert_eq!(
            form.fields,
            [
                ("csrf", "A+b\"c"),
                ("right", "0"),
                ("tool", "0:echo"),
                ("use:alpha", "e1"),
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
        assert_eq!(
            form.submission("approve").last(),
            Some(&("decision", "approve"))
        );
        assert!(read_form("<p>no form</p>").is_none());
        assert!(read_form(r#"<form method="get" action="/x"></form>"#).is_none());
    }

    #[test]
    fn actions_resolve_against_the_pages_origin() {
        assert_eq!(
            absolute("http://127.0.0.1:9/gnap/interact/a/b?c", "/gnap/x"),
            "http://127.0.0.1:9/gnap/x"
        );
        assert_eq!(absolute("http://127.0.0.1:9", "/x"), "http://127.0.0.1:9/x");
        assert_eq!(absolute("http://a:1/p", "http://b:2/q"), "http://b:2/q");
    }

    #[test]
    fn entities_decode_and_stray_ampersands_stay() {
        assert_eq!(decode_entities("a&amp;b&#39;c&#x2F;d"), "a&b'c/d");
        assert_eq!(
            decode_entities("a & b &bogus; &#xZZ;"),
            "a & b &bogus; &#xZZ;"
        );
    }
}
