//! "Pick a credential set this person connected before": which of the
//! person-connected sets (`crate::upstream::connect`) a consent page may
//! offer again, and how a browser remembers the ones it connected. Sans
//! I/O: the HTTP edge reads the cookie and the store, and records the
//! choice.
//!
//! Who "this person" is follows the configured way of knowing the person
//! deciding:
//!
//! - **With a login** (`[login]`, `crate::authz::login`): the signed-in
//!   subject. A set connected on an approval records its owner
//!   ([`owner_of`]: issuer and subject), and a later page of the same
//!   subject offers it, from any browser.
//! - **Without one** ("connecting the upstream is the login"): the browser.
//!   An approval that used person-connected sets answers with a cookie
//!   ([`COOKIE`]) listing their ids, sealed under the master key (so it can
//!   be neither read nor forged), and a later page offers the sets that
//!   cookie names. Another browser — the agent's own HTTP client holding
//!   the interaction link, for one — is offered nothing and cannot pick a
//!   set by naming its id.
//!
//! Either way the choice is checked again when the decision is recorded:
//! only a set this page would have offered can be picked.

use crate::proto::b64;
use crate::store::{CredentialKind, CredentialSetRecord};
use crate::upstream::connect::PERSON_SET_PREFIX;
use crate::upstream::vault::MasterKey;

/// The cookie that lists the sets a browser connected (no login).
pub const COOKIE: &str = "gnapd_connected";

/// How long a browser remembers its sets (seconds): renewed by every
/// approval that uses one.
pub const COOKIE_LIFETIME: i64 = 90 * 24 * 3600;

/// Most set ids a browser remembers (the newest kept): about 1.4 KiB of
/// cookie, well under the 4 KiB browsers keep.
pub const MAX_REMEMBERED: usize = 16;

/// Most earlier sets a page offers per upstream (the newest).
pub const MAX_OFFERED: usize = 5;

/// The associated data the cookie is sealed with, so that no other sealed
/// value (a credential set's, whose associated data is its id) can be
/// passed off as the cookie, or the other way round.
const COOKIE_AD: &str = "cookie:gnapd_connected";

/// Who the person on a page is, for picking earlier sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Person<'a> {
    /// Signed in: the owner string of the subject ([`owner_of`]).
    Owner(&'a str),
    /// No login: the set ids this browser's cookie names.
    Browser(&'a [String]),
}

/// The owner recorded on a set connected by `subject` of the login's
/// `issuer`: both, since a subject is only unique at its issuer.
pub fn owner_of(issuer: &str, subject: &str) -> String {
    // An issuer identifier has no fragment (OIDC Discovery §2), so `#`
    // cannot occur in it: the pair reads back one way only.
    format!("{issuer}#{subject}")
}

/// A set this person connected before, as a page offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    /// The set's id (the form value that picks it).
    pub id: String,
    /// What it is and when it was connected, in plain words; no part of
    /// the secret.
    pub text: String,
}

/// The sets among `sets` that `person` connected for `upstream`, newest
/// first, at most [`MAX_OFFERED`], described as of `now` (Unix seconds).
pub fn offered(
    sets: &[CredentialSetRecord],
    upstream: &str,
    person: Person<'_>,
    now: i64,
) -> Vec<Earlier> {
    let mut mine: Vec<&CredentialSetRecord> = sets
        .iter()
        .filter(|s| s.id.starts_with(PERSON_SET_PREFIX) && s.upstream == upstream)
        .filter(|s| match person {
            Person::Owner(owner) => s.owner.as_deref() == Some(owner),
            Person::Browser(ids) => ids.contains(&s.id),
        })
        .collect();
    mine.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    mine.into_iter()
        .take(MAX_OFFERED)
        .map(|s| Earlier {
            id: s.id.clone(),
            text: format!(
                "{} connected {}",
                what(s.kind, upstream),
                ago(now - s.created_at)
            ),
        })
        .collect()
}

/// Whether `chosen` is one of the sets `offered` lists: the only ones a
/// decision may pick.
pub fn is_offered(offered: &[Earlier], chosen: &str) -> bool {
    offered.iter().any(|e| e.id == chosen)
}

/// The ids a browser remembers after an approval that used `used`: those,
/// then the ones it remembered before, without repeats, at most
/// [`MAX_REMEMBERED`].
pub fn remember(before: &[String], used: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(MAX_REMEMBERED);
    for id in used.iter().chain(before) {
        if ids.len() == MAX_REMEMBERED {
            break;
        }
        if id.starts_with(PERSON_SET_PREFIX) && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// The cookie value naming `ids`: sealed under `key`, base64url.
pub fn seal_cookie(key: &MasterKey, ids: &[String]) -> Option<String> {
    let text = ids.join(" ");
    key.seal(COOKIE_AD, text.as_bytes())
        .ok()
        .map(|sealed| b64::encode_url(&sealed))
}

/// The ids a cookie value names; none if it was not sealed by `key` (a
/// forged, altered or foreign cookie, or one from before a key change).
pub fn open_cookie(key: &MasterKey, value: &str) -> Vec<String> {
    let Some(sealed) = b64::decode_url(value.trim()) else {
        return Vec::new();
    };
    let Ok(text) = key.open(COOKIE_AD, &sealed) else {
        return Vec::new();
    };
    std::str::from_utf8(&text)
        .map(|text| {
            text.split(' ')
                .filter(|id| id.starts_with(PERSON_SET_PREFIX))
                .take(MAX_REMEMBERED)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// What a set is, in plain words.
fn what(kind: CredentialKind, upstream: &str) -> String {
    match kind {
        CredentialKind::OAuth2 => format!("Your sign-in at {upstream},"),
        CredentialKind::Bearer | CredentialKind::Header | CredentialKind::Basic => {
            "A key you".to_owned()
        }
        CredentialKind::Env => "Settings you".to_owned(),
    }
}

/// `seconds` ago, in the largest whole unit.
fn ago(seconds: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match seconds.max(0) {
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s => plural(s / 86_400, "day"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, upstream: &str, owner: Option<&str>, created_at: i64) -> CredentialSetRecord {
        CredentialSetRecord {
            v: crate::store::RECORD_VERSION,
            id: id.to_owned(),
            upstream: upstream.to_owned(),
            kind: CredentialKind::Bearer,
            header_name: None,
            sealed: vec![0; 40],
            created_at,
            owner: owner.map(str::to_owned),
        }
    }

    fn ids(offered: &[Earlier]) -> Vec<&str> {
        offered.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn a_signed_in_person_is_offered_only_their_own_person_sets_for_that_upstream_newest_first() {
        let alice = owner_of("https://idp.example", "alice");
        let bob = owner_of("https://idp.example", "bob");
        let sets = [
            set("person:a1", "tracker", Some(&alice), 100),
            set("person:a2", "tracker", Some(&alice), 300),
            set("person:a3", "wiki", Some(&alice), 400),
            set("person:b1", "tracker", Some(&bob), 500),
            set("person:n1", "tracker", None, 600),
            // Not a person set, whatever its owner field says.
            set("enterprise:tracker", "tracker", Some(&alice), 700),
        ];
        let offered = offered(&sets, "tracker", Person::Owner(&alice), 1000);
        assert_eq!(ids(&offered), ["person:a2", "person:a1"]);
        // The same subject at another issuer is someone else.
        let other = owner_of("https://other.example", "alice");
        assert!(super::offered(&sets, "tracker", Person::Owner(&other), 1000).is_empty());
    }

    #[test]
    fn a_browser_is_offered_the_sets_its_cookie_names_and_nothing_else() {
        let sets = [
            set("person:x", "tracker", None, 10),
            set("person:y", "tracker", Some("https://idp#s"), 20),
            set("person:z", "tracker", None, 30),
            set("person:w", "wiki", None, 40),
        ];
        let cookie = ["person:y".to_owned(), "person:w".to_owned()];
        let offered = offered(&sets, "tracker", Person::Browser(&cookie), 100);
        assert_eq!(ids(&offered), ["person:y"]);
        assert!(is_offered(&offered, "person:y"));
        assert!(!is_offered(&offered, "person:x"));
        assert!(super::offered(&sets, "tracker", Person::Browser(&[]), 100).is_empty());
    }

    #[test]
    fn at_most_five_are_offered_and_none_shows_the_secret() {
        let sets: Vec<_> = (0..8)
            .map(|i| set(&format!("person:{i}"), "tracker", Some("o"), i))
            .collect();
        let offered = offered(&sets, "tracker", Person::Owner("o"), 7 + 2 * 3600);
        assert_eq!(
            ids(&offered),
            ["person:7", "person:6", "person:5", "person:4", "person:3"]
        );
        assert_eq!(offered[0].text, "A key you connected 2 hours ago");
    }

    #[test]
    fn times_read_in_the_largest_whole_unit() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(3599), "59 minutes ago");
        assert_eq!(ago(86_399), "23 hours ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(40 * 86_400), "40 days ago");
    }

    #[test]
    fn a_browser_remembers_the_newest_sets_once_each_up_to_the_limit() {
        let before: Vec<String> = (0..20).map(|i| format!("person:{i}")).collect();
        let used = [
            "person:new".to_owned(),
            "person:3".to_owned(),
            "enterprise:x".to_owned(),
        ];
        let kept = remember(&before, &used);
        assert_eq!(kept.len(), MAX_REMEMBERED);
        assert_eq!(
            &kept[..4],
            ["person:new", "person:3", "person:0", "person:1"]
        );
        assert_eq!(kept.iter().filter(|i| *i == "person:3").count(), 1);
        assert!(!kept.iter().any(|i| i.starts_with("enterprise:")));
    }

    #[test]
    fn the_cookie_opens_only_under_its_key_and_unaltered() {
        let key = MasterKey::from_text(&b64::encode_url(&[7u8; 32])).unwrap();
        let other = MasterKey::from_text(&b64::encode_url(&[8u8; 32])).unwrap();
        let ids = vec!["person:a".to_owned(), "person:b".to_owned()];
        let value = seal_cookie(&key, &ids).unwrap();
        assert!(!value.contains("person"), "the ids are not readable");
        assert_eq!(open_cookie(&key, &value), ids);
        assert!(open_cookie(&other, &value).is_empty());
        // One changed character anywhere: nothing.
        for i in 0..value.len() {
            let mut altered = value.clone().into_bytes();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(open_cookie(&key, &altered).is_empty(), "position {i}");
        }
        assert!(open_cookie(&key, "person:a person:b").is_empty());
        assert!(open_cookie(&key, "").is_empty());
        // A credential set's sealed secret is not a cookie.
        let sealed = key.seal("person:a", b"person:a").unwrap();
        assert!(open_cookie(&key, &b64::encode_url(&sealed)).is_empty());
    }
}
