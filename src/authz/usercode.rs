//! User codes (RFC 9635 §3.3.3, §4.1.2): short codes a person types to
//! name a pending grant, and the bounded counters that limit guessing.
//!
//! A code is 8 characters from an alphabet without look-alikes (no `0`/`O`,
//! `1`/`I`/`L`): 31⁸ ≈ 2³⁹·⁶ codes, accepted for minutes, with failed
//! attempts limited per source. §3.3.3 RECOMMENDS "no more than eight
//! characters", so the wire value is the 8 characters; people see it as
//! `XXXX-XXXX` ([`UserCode::display`]), and input is normalized the way
//! §4.1.2 asks ("remove invalid characters", "case insensitive"). The store
//! keeps only the SHA-256 of the normalized code.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::store::{GrantId, StoreError, TokenHash};

use super::mint::NoRandomness;
use crate::random::Randomness;

/// The characters a code is made of: ASCII digits and capital letters
/// without `0`, `O`, `1`, `I` and `L`.
pub(crate) const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code.
pub(crate) const LENGTH: usize = 8;

/// A user code: exactly [`LENGTH`] characters of [`ALPHABET`]. `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserCode(String);

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(…)")
    }
}

impl UserCode {
    /// A fresh random code (rejection sampling keeps every character
    /// equally likely).
    pub(crate) fn generate(source: &dyn Randomness) -> Result<Self, NoRandomness> {
        let mut code = String::with_capacity(LENGTH);
        // 248 = 8 × 31: bytes at or above it would bias the first characters.
        let limit = 256 - 256 % ALPHABET.len();
        while code.len() < LENGTH {
            let mut bytes = [0u8; 16];
            source.fill(&mut bytes)?;
            for b in bytes {
                if usize::from(b) < limit && code.len() < LENGTH {
                    code.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
                }
            }
        }
        Ok(Self(code))
    }

    /// Reads what a person typed: separators and spaces are dropped, case
    /// is ignored. `None` unless exactly [`LENGTH`] characters of the
    /// alphabet remain (a typed `0`, `O`, `1`, `I` or `L` cannot be part
    /// of a code, so it is an error rather than guessed at).
    pub(crate) fn parse(input: &str) -> Option<Self> {
        if input.len() > 64 {
            return None;
        }
        let mut code = String::with_capacity(LENGTH);
        for c in input.chars() {
            if c == '-' || c == ' ' || c == '\t' || c == '.' {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii() || !ALPHABET.contains(&(upper as u8)) {
                return None;
            }
            code.push(upper);
        }
        (code.len() == LENGTH).then_some(Self(code))
    }

    /// The code as sent on the wire: 8 characters.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as people read it: `XXXX-XXXX`.
    pub(crate) fn display(&self) -> String {
        let (a, b) = self.0.split_at(LENGTH / 2);
        format!("{a}-{b}")
    }

    /// What the store keeps.
    pub(crate) fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// How many failed code entries one source may make per window.
pub(crate) const MAX_FAILURES_PER_SOURCE: u32 = 10;
/// How many failed code entries all network sources together may make per
/// window unless configured (`user_code_failure_budget`). Guessing from
/// many addresses is bounded by this: with 100 codes pending, a year of
/// spending it at every window boundary (2,000 guesses per window) finds
/// one with a chance of about 1 in 80 (31⁸ ≈ 8.5·10¹¹ codes).
pub(crate) const DEFAULT_FAILURE_BUDGET: u32 = 1000;
/// How many times one grant's code may be entered (each successful entry
/// counts; a decision normally takes one).
pub(crate) const MAX_ENTRIES_PER_GRANT: u32 = 5;
/// The counting window, seconds.
pub(crate) const WINDOW: i64 = 600;
/// Most sources and grants tracked; past it the oldest window is dropped
/// first (a flood of sources cannot grow memory without bound).
const MAX_TRACKED: usize = 10_000;
/// The source of the admin socket's decisions. It is local and trusted, and
/// it is not held to the global budget: whoever spends that from the
/// network must not lock the administrator out as well.
pub(crate) const ADMIN_SOURCE: &str = "admin";

/// What an attempt counter counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counted<'a> {
    /// Failed entries from one source, by its [`source_key`].
    Source(&'a str),
    /// Failed entries from every network source together.
    Network,
    /// Entries of one grant's code.
    Grant(&'a GrantId),
}

/// Where attempt counts are kept: this node's memory ([`Attempts`]), or a
/// store every node shares (`super::shared_attempts`). The limits below
/// are the same over either.
pub(crate) trait Tally {
    /// The count of `what` in the window holding `now`, after adding `by`
    /// (0 only reads).
    fn add(&mut self, what: Counted<'_>, by: u32, now: i64) -> Result<u32, StoreError>;
}

/// True if `source` may try a code now, with `budget` failures allowed
/// per window to all network sources together.
pub(crate) fn source_allowed(
    tally: &mut dyn Tally,
    source: &str,
    budget: u32,
    now: i64,
) -> Result<bool, StoreError> {
    if source != ADMIN_SOURCE && tally.add(Counted::Network, 0, now)? >= budget {
        return Ok(false);
    }
    let key = source_key(source);
    Ok(tally.add(Counted::Source(&key), 0, now)? < MAX_FAILURES_PER_SOURCE)
}

/// Counts a failed entry from `source`. True when this failure spent the
/// last of `budget` (for the caller to log once).
pub(crate) fn source_failed(
    tally: &mut dyn Tally,
    source: &str,
    budget: u32,
    now: i64,
) -> Result<bool, StoreError> {
    let key = source_key(source);
    tally.add(Counted::Source(&key), 1, now)?;
    if source == ADMIN_SOURCE {
        return Ok(false);
    }
    Ok(tally.add(Counted::Network, 1, now)? == budget)
}

/// Counts an entry of `grant`'s code; false once it was entered
/// [`MAX_ENTRIES_PER_GRANT`] times in the window.
pub(crate) fn grant_entered(
    tally: &mut dyn Tally,
    grant: &GrantId,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(tally.add(Counted::Grant(grant), 1, now)? <= MAX_ENTRIES_PER_GRANT)
}

/// Bounded in-memory attempt counters: failed entries per source (an IP
/// address, an IPv6 /64, [`ADMIN_SOURCE`]), failed entries from all
/// network sources together, and entries per grant, each over a
/// [`WINDOW`] from its first count. Lost on restart, which only resets the
/// counts. One node's: a store several nodes share keeps them instead.
#[derive(Debug, Default)]
pub(crate) struct Attempts {
    sources: HashMap<String, (i64, u32)>,
    grants: HashMap<GrantId, (i64, u32)>,
    /// Failures from the network in the current window: (start, count).
    global: (i64, u32),
}

impl Attempts {
    /// Counters held (per source and per grant), and their bytes.
    pub(crate) fn size(&self) -> crate::store::TableSize {
        let mut size = crate::store::TableSize::default();
        for source in self.sources.keys() {
            size.add(source.len(), 12);
        }
        for grant in self.grants.keys() {
            size.add(grant.0.len(), 12);
        }
        size
    }
}

impl Tally for Attempts {
    fn add(&mut self, what: Counted<'_>, by: u32, now: i64) -> Result<u32, StoreError> {
        Ok(match (what, by) {
            (Counted::Source(key), 0) => current(&mut self.sources, key, now),
            (Counted::Source(key), by) => bump(&mut self.sources, key.to_owned(), by, now),
            (Counted::Grant(grant), 0) => current(&mut self.grants, grant, now),
            (Counted::Grant(grant), by) => bump(&mut self.grants, grant.clone(), by, now),
            (Counted::Network, by) => {
                if now - self.global.0 >= WINDOW {
                    if by == 0 {
                        return Ok(0);
                    }
                    self.global = (now, 0);
                }
                self.global.1 = self.global.1.saturating_add(by);
                self.global.1
            }
        })
    }
}

/// What a source counts under. An IPv6 address counts by its /64: a
/// subscriber usually holds a whole /64 and can take a new address in it
/// for every request. IPv4 (also IPv4-mapped IPv6) counts per address;
/// anything else as given.
pub(crate) fn source_key(source: &str) -> String {
    match source.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => source.to_owned(),
    }
}

fn current<K: std::hash::Hash + Eq + std::borrow::Borrow<Q>, Q: std::hash::Hash + Eq + ?Sized>(
    map: &mut HashMap<K, (i64, u32)>,
    key: &Q,
    now: i64,
) -> u32 {
    match map.get(key) {
        Some((start, count)) if now - start < WINDOW => *count,
        _ => 0,
    }
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, (i64, u32)>,
    key: K,
    by: u32,
    now: i64,
) -> u32 {
    if map.len() >= MAX_TRACKED && !map.contains_key(&key) {
        map.retain(|_, (start, _)| now - *start < WINDOW);
        if map.len() >= MAX_TRACKED
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (s, _))| *s)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    let entry = map.entry(key).or_insert((now, 0));
    if now - entry.0 >= WINDOW {
        *entry = (now, 0);
    }
    entry.1 = entry.1.saturating_add(by);
    entry.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_only_the_unambiguous_alphabet() {
        for c in b"0O1IL" {
            assert!(!ALPHABET.contains(c));
        }
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let code = UserCode::generate(&crate::random::OsRandom).unwrap();
            assert_eq!(code.as_str().len(), LENGTH);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
            seen.extend(code.as_str().bytes());
            let display = code.display();
            assert_eq!(display.len(), LENGTH + 1);
            assert_eq!(&display[4..5], "-");
            assert_eq!(UserCode::parse(&display), Some(code));
        }
        // 1 600 draws reach (nearly) every character.
        assert!(seen.len() > 25, "{}", seen.len());
    }

    #[test]
    fn user_code_input_is_case_insensitive_and_ignores_separators() {
        let code = UserCode::parse("ABCD-EFGH").unwrap();
        for typed in [
            "abcd-efgh",
            "ABCDEFGH",
            "abcd efgh",
            " AbCd-EfGh ",
            "ab.cd-ef gh",
        ] {
            assert_eq!(UserCode::parse(typed).as_ref(), Some(&code), "{typed}");
        }
        assert_eq!(code.hash(), UserCode::parse("abcdefgh").unwrap().hash());
        for bad in [
            "ABCD-EFG",
            "ABCD-EFGHJ",
            "ABCD-EFG0",
            "OBCDEFGH",
            "ABCDEFGI",
            "ABCDEFGL",
            "ÀBCDEFGH",
            "",
            "ABCD_EFGH",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
        assert!(!format!("{code:?}").contains("ABCD"));
    }

    #[test]
    fn attempts_are_limited_per_source_and_per_grant_within_a_window() {
        let mut attempts = Attempts::default();
        let budget = DEFAULT_FAILURE_BUDGET;
        for _ in 0..MAX_FAILURES_PER_SOURCE {
            assert!(source_allowed(&mut attempts, "10.0.0.1", budget, 100).unwrap());
            source_failed(&mut attempts, "10.0.0.1", budget, 100).unwrap();
        }
        assert!(!source_allowed(&mut attempts, "10.0.0.1", budget, 100).unwrap());
        assert!(!source_allowed(&mut attempts, "::ffff:10.0.0.1", budget, 100).unwrap());
        assert!(source_allowed(&mut attempts, "10.0.0.2", budget, 100).unwrap());
        assert!(source_allowed(&mut attempts, "10.0.0.1", budget, 100 + WINDOW).unwrap());
        let grant = GrantId("g".into());
        for _ in 0..MAX_ENTRIES_PER_GRANT {
            assert!(grant_entered(&mut attempts, &grant, 100).unwrap());
        }
        assert!(!grant_entered(&mut attempts, &grant, 100).unwrap());
        assert!(grant_entered(&mut attempts, &grant, 100 + WINDOW).unwrap());
    }

    #[test]
    fn ipv6_sources_count_per_64() {
        let mut attempts = Attempts::default();
        let budget = DEFAULT_FAILURE_BUDGET;
        for i in 0..MAX_FAILURES_PER_SOURCE {
            let source = format!("2001:db8:1:2:{i:x}::{:x}", i * 7 + 1);
            assert!(source_allowed(&mut attempts, &source, budget, 100).unwrap());
            source_failed(&mut attempts, &source, budget, 100).unwrap();
        }
        assert!(
            !source_allowed(
                &mut attempts,
                "2001:db8:1:2:ffff:ffff:ffff:ffff",
                budget,
                100
            )
            .unwrap()
        );
        assert!(source_allowed(&mut attempts, "2001:db8:1:3::1", budget, 100).unwrap());
        assert_eq!(source_key("2001:DB8:0:0:1::2"), "2001:db8:0:0::/64");
    }

    #[test]
    fn failures_from_every_source_share_one_budget_the_admin_is_not_held_to() {
        let mut attempts = Attempts::default();
        let budget = 25;
        let mut spent = 0;
        for source in 0..5 {
            for _ in 0..5 {
                let ip = format!("192.0.2.{source}");
                assert!(source_allowed(&mut attempts, &ip, budget, 100).unwrap());
                spent += 1;
                assert_eq!(
                    source_failed(&mut attempts, &ip, budget, 100).unwrap(),
                    spent == budget
                );
            }
        }
        assert!(!source_allowed(&mut attempts, "198.51.100.1", budget, 100).unwrap());
        assert!(!source_allowed(&mut attempts, "2001:db8::1", budget, 100).unwrap());
        assert!(source_allowed(&mut attempts, ADMIN_SOURCE, budget, 100).unwrap());
        assert!(source_allowed(&mut attempts, "198.51.100.1", budget, 100 + WINDOW).unwrap());
    }

    #[test]
    fn attempt_counters_stay_bounded() {
        let mut attempts = Attempts::default();
        for i in 0..(MAX_TRACKED + 50) {
            source_failed(
                &mut attempts,
                &format!("s{i}"),
                DEFAULT_FAILURE_BUDGET,
                1_000 + i64::try_from(i).unwrap(),
            )
            .unwrap();
        }
        assert!(attempts.sources.len() <= MAX_TRACKED);
    }
}
