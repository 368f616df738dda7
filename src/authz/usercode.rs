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

use crate::store::{GrantId, TokenHash};

use super::mint::NoRandomness;

/// The characters a code is made of: ASCII digits and capital letters
/// without `0`, `O`, `1`, `I` and `L`.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code.
pub const LENGTH: usize = 8;

/// A user code: exactly [`LENGTH`] characters of [`ALPHABET`]. `Debug`
/// does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(…)")
    }
}

impl UserCode {
    /// A fresh random code (rejection sampling keeps every character
    /// equally likely).
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut code = String::with_capacity(LENGTH);
        // 248 = 8 × 31: bytes at or above it would bias the first characters.
        let limit = 256 - 256 % ALPHABET.len();
        while code.len() < LENGTH {
            let mut bytes = [0u8; 16];
            getrandom::fill(&mut bytes).map_err(|_| NoRandomness)?;
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
    pub fn parse(input: &str) -> Option<Self> {
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
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as people read it: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(LENGTH / 2);
        format!("{a}-{b}")
    }

    /// What the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// How many failed code entries one source may make per window.
pub const MAX_FAILURES_PER_SOURCE: u32 = 10;
/// How many times one grant's code may be entered (each successful entry
/// counts; a decision normally takes one).
pub const MAX_ENTRIES_PER_GRANT: u32 = 5;
/// The counting window, seconds.
pub const WINDOW: i64 = 600;
/// Most sources and grants tracked; past it the oldest window is dropped
/// first (a flood of sources cannot grow memory without bound).
const MAX_TRACKED: usize = 10_000;

/// Bounded in-memory attempt counters: failed entries per source (an IP
/// address, `admin` for the admin socket) and entries per grant, each over
/// a [`WINDOW`]. Lost on restart, which only resets the counts.
#[derive(Debug, Default)]
pub struct Attempts {
    sources: HashMap<String, (i64, u32)>,
    grants: HashMap<GrantId, (i64, u32)>,
}

impl Attempts {
    /// True if `source` may try a code now.
    pub fn source_allowed(&mut self, source: &str, now: i64) -> bool {
        current(&mut self.sources, source, now) < MAX_FAILURES_PER_SOURCE
    }

    /// Counts a failed entry from `source`.
    pub fn source_failed(&mut self, source: &str, now: i64) {
        bump(&mut self.sources, source.to_owned(), now);
    }

    /// Counts an entry of `grant`'s code; false once it was entered
    /// [`MAX_ENTRIES_PER_GRANT`] times in the window.
    pub fn grant_entered(&mut self, grant: &GrantId, now: i64) -> bool {
        bump(&mut self.grants, grant.clone(), now) <= MAX_ENTRIES_PER_GRANT
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
    entry.1 = entry.1.saturating_add(1);
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
            let code = UserCode::generate().unwrap();
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
        for _ in 0..MAX_FAILURES_PER_SOURCE {
            assert!(attempts.source_allowed("10.0.0.1", 100));
            attempts.source_failed("10.0.0.1", 100);
        }
        assert!(!attempts.source_allowed("10.0.0.1", 100));
        assert!(attempts.source_allowed("10.0.0.2", 100));
        assert!(attempts.source_allowed("10.0.0.1", 100 + WINDOW));
        let grant = GrantId("g".into());
        for _ in 0..MAX_ENTRIES_PER_GRANT {
            assert!(attempts.grant_entered(&grant, 100));
        }
        assert!(!attempts.grant_entered(&grant, 100));
        assert!(attempts.grant_entered(&grant, 100 + WINDOW));
    }

    #[test]
    fn attempt_counters_stay_bounded() {
        let mut attempts = Attempts::default();
        for i in 0..(MAX_TRACKED + 50) {
            attempts.source_failed(&format!("s{i}"), 1_000 + i64::try_from(i).unwrap());
        }
        assert!(attempts.sources.len() <= MAX_TRACKED);
    }
}
