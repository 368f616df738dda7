//! Introspection answers kept for `cache_seconds`, so a busy agent does not
//! cost the external AS a request per call.
//!
//! Only active answers are kept, by the token's hash (never its value),
//! and never past the token's `exp`: a revoked token still passes until
//! its entry ends, which is the price the operator chose with
//! `cache_seconds` (0, the default, keeps nothing). The map is bounded:
//! when full, ended entries go, and if none had, everything does, so a
//! stranger's flood of tokens cannot grow it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::reading::Answer;
use crate::store::TokenHash;

/// Most answers kept.
pub(crate) const CAPACITY: usize = 16_384;

/// The kept answers.
#[derive(Debug)]
pub(crate) struct Cache {
    seconds: i64,
    capacity: usize,
    /// Answer and the instant (Unix seconds) it stops being used.
    entries: Mutex<HashMap<TokenHash, (Answer, i64)>>,
}

impl Cache {
    /// A cache keeping answers `seconds` (0: none), at most `capacity`.
    pub(crate) fn new(seconds: u64, capacity: usize) -> Self {
        Self {
            seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
            capacity,
            entries: Mutex::default(),
        }
    }

    /// The answer kept for `token`, if it has not ended.
    pub(crate) fn get(&self, token: &TokenHash, now: i64) -> Option<Answer> {
        if self.seconds == 0 {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (answer, until) = entries.get(token)?;
        (*until > now).then(|| answer.clone())
    }

    /// Keeps `answer` for `token` if it is active and unexpired.
    pub(crate) fn put(&self, token: TokenHash, answer: &Answer, now: i64) {
        let Answer::Active(info) = answer else {
            return;
        };
        let Some(exp) = info.exp else { return };
        let until = now.saturating_add(self.seconds).min(exp);
        if self.seconds == 0 || until <= now {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&token) {
            entries.retain(|_, (_, until)| *until > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(token, (answer.clone(), until));
    }

    /// Answers held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::external::reading::read;

    fn active(exp: i64) -> Answer {
        read(format!(r#"{{"active": true, "exp": {exp}}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn nothing_is_kept_with_zero_seconds() {
        let cache = Cache::new(0, 8);
        cache.put(TokenHash::of("t"), &active(1_000), 0);
        assert_eq!(cache.get(&TokenHash::of("t"), 0), None);
    }

    #[test]
    fn an_answer_is_kept_its_seconds_but_never_past_exp() {
        let cache = Cache::new(60, 8);
        let long = TokenHash::of("long");
        cache.put(long, &active(1_000), 0);
        assert!(cache.get(&long, 59).is_some());
        assert_eq!(cache.get(&long, 60), None);
        let short = TokenHash::of("short");
        cache.put(short, &active(10), 0);
        assert!(cache.get(&short, 9).is_some());
        assert_eq!(cache.get(&short, 10), None);
    }

    #[test]
    fn inactive_answers_are_never_kept() {
        let cache = Cache::new(60, 8);
        cache.put(TokenHash::of("t"), &Answer::Inactive, 0);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_flood_of_tokens_never_grows_the_cache_past_its_capacity() {
        let cache = Cache::new(60, 8);
        for i in 0..100 {
            cache.put(TokenHash::of(&i.to_string()), &active(1_000), 0);
            assert!(cache.len() <= 8);
        }
    }
}
