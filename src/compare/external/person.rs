//! The person at node-oidc-provider (devInteractions: the provider's own
//! pages, any login name): a sign-in form, then a consent form, each read,
//! filled in and submitted as a browser would, each one person action
//! (`tap.person()`) like the one decision on gnapd's consent page. After
//! each submission the browser follows the redirects up to the next
//! interaction page (not fetched) or the client's callback (not fetched).

use crate::compare::consent::{ConsentForm, absolute, read_form};
use crate::compare::driver::{DriverError, unexpected};
use crate::compare::meter::{Browsed, Meter, Request, Response};

/// The name the person signs in with.
pub const LOGIN: &str = "compare-person";

/// How many forms a walk may meet before it is called stuck.
const MAX_FORMS: usize = 4;

/// Which form a page shows (its hidden `prompt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The sign-in form.
    Login,
    /// The consent form.
    Consent,
}

/// Where the browser stopped after a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached {
    /// The next interaction page (its URL, not fetched).
    Interaction(String),
    /// The client's callback (not fetched).
    Callback(String),
}

/// One form: the browser opens the interaction page at `url`, the person
/// fills it in and submits it; which form it was and where the browser
/// stopped (before `callback` or the AS's next interaction page).
pub async fn one_form(
    browser: &mut Meter,
    url: &str,
    callback: &str,
) -> Result<(Prompt, Reached), DriverError> {
    let interactions = interaction_prefix(url)?;
    let page = match browser
        .browse_until(url, &[callback, &interactions])
        .await?
    {
        Browsed::Page(page) => page,
        Browsed::Callback(at) => return Ok((Prompt::Consent, reached(at, callback))),
    };
    let (form, prompt) = read(&page)?;
    let mut fields = form.fields.clone();
    if prompt == Prompt::Login {
        fields.push(("login".to_owned(), LOGIN.to_owned()));
        fields.push(("password".to_owned(), "any password".to_owned()));
    }
    browser.tap().person();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let submit = Request::new("POST", &absolute(url, &form.action)).form(&fields);
    match browser
        .follow_until(submit, &[callback, &interactions])
        .await?
    {
        Browsed::Callback(at) => Ok((prompt, reached(at, callback))),
        Browsed::Page(answer) => Err(unexpected(
            "the AS's answer to the form did not send the browser on",
            &answer,
        )),
    }
}

/// Every form from the interaction page at `url` to the callback (a
/// browser with a session signs in no more: consent only); the callback.
pub async fn walk(browser: &mut Meter, url: &str, callback: &str) -> Result<String, DriverError> {
    let mut next = url.to_owned();
    for _ in 0..MAX_FORMS {
        match one_form(browser, &next, callback).await?.1 {
            Reached::Callback(at) => return Ok(at),
            Reached::Interaction(at) => next = at,
        }
    }
    Err(DriverError::Protocol(format!(
        "more than {MAX_FORMS} forms at the AS without a way back"
    )))
}

fn reached(at: String, callback: &str) -> Reached {
    if at.starts_with(callback) {
        Reached::Callback(at)
    } else {
        Reached::Interaction(at)
    }
}

/// `http://HOST:PORT/interaction/` for an interaction page's URL.
fn interaction_prefix(url: &str) -> Result<String, DriverError> {
    let at = url
        .find("/interaction/")
        .ok_or_else(|| DriverError::Protocol(format!("{url} is not an interaction page")))?;
    Ok(format!("{}/interaction/", &url[..at]))
}

/// The page's form and which prompt it answers.
fn read(page: &Response) -> Result<(ConsentForm, Prompt), DriverError> {
    if page.status != 200 {
        return Err(unexpected("the AS's interaction page", page));
    }
    let form = read_form(&page.text())
        .ok_or_else(|| unexpected("an interaction page without a form", page))?;
    let prompt = form
        .fields
        .iter()
        .find(|(name, _)| name == "prompt")
        .map(|(_, value)| value.as_str());
    let prompt = match prompt {
        Some("login") => Prompt::Login,
        Some("consent") => Prompt::Consent,
        _ => return Err(unexpected("an interaction page with no known prompt", page)),
    };
    Ok((form, prompt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_forms_read_with_their_prompt() {
        let page = |html: &str| Response {
            status: 200,
            headers: vec![],
            body: html.as_bytes().to_vec(),
        };
        let login = page(
            // The shape of the provider's sign-in form: a hidden prompt,
            // the visible login and password fields, a submit button.
            r#"<form action="/interaction/u1/login" method="post">
  <input type="hidden" name="prompt" value="login"/>
  <input type="text" name="login">
  <input type="password" name="password">
  <button type="submit">go</button></form>"#,
        );
        let (form, prompt) = read(&login).unwrap();
        assert_eq!(prompt, Prompt::Login);
        assert_eq!(form.action, "/interaction/u1/login");
        assert_eq!(form.fields, [("prompt".to_owned(), "login".to_owned())]);
        let consent = page(
            r#"<form action="/interaction/u2/confirm" method="post">
  <input type="hidden" name="prompt" value="consent"/>
  <button type="submit">go</button></form>"#,
        );
        assert_eq!(read(&consent).unwrap().1, Prompt::Consent);
        assert_eq!(
            interaction_prefix("http://127.0.0.1:5/interaction/u2").unwrap(),
            "http://127.0.0.1:5/interaction/"
        );
        assert!(interaction_prefix("http://127.0.0.1:5/auth").is_err());
    }
}
