//! When to poll a pending grant and when to rotate a token, as pure
//! functions of the time (whole Unix seconds from an injected
//! [`crate::clock::Clock`]), so the rules are tested without sleeping.
//!
//! - Polling (RFC 9635 §3.1, §5.2): wait the `wait` the AS gave (five
//!   seconds when absent) before each continuation call, longer when it
//!   answers `too_fast` with `Retry-After`, and give up at a deadline (the
//!   interaction's `expires_in`, else the agent's own limit).
//! - Rotation (§6.1): rotate once most of the token's life is spent, leaving
//!   a lead of a third of its lifetime (at least one second, at most five
//!   minutes), so a token never expires under an active agent.

/// The agent's own limit on waiting for approval, seconds.
pub const DEFAULT_APPROVAL_TIMEOUT: u64 = 600;

/// The continuation wait when the AS gives none (§3.1).
pub const DEFAULT_WAIT: u64 = 5;

/// What to do next while a grant is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sleep this many seconds, then call the continuation URI.
    Wait(u64),
    /// The deadline passed: stop and report a timeout.
    GiveUp,
}

/// The polling schedule of one pending grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollSchedule {
    /// When the agent stops waiting (Unix seconds).
    pub deadline: i64,
    /// The earliest time of the next continuation call.
    next_at: i64,
}

impl PollSchedule {
    /// A schedule starting `now` for a continuation that asked for `wait`
    /// seconds (None: the default five), giving up after `limit` seconds.
    pub fn new(now: i64, wait: Option<u64>, limit: u64) -> Self {
        Self {
            deadline: now.saturating_add(secs(limit)),
            next_at: now.saturating_add(secs(wait.unwrap_or(DEFAULT_WAIT))),
        }
    }

    /// Brings the deadline forward to when the interaction expires.
    pub fn interaction_expires_in(&mut self, now: i64, expires_in: u64) {
        self.deadline = self.deadline.min(now.saturating_add(secs(expires_in)));
    }

    /// What to do at `now`.
    pub fn step(&self, now: i64) -> Step {
        if now >= self.deadline || self.next_at > self.deadline {
            return Step::GiveUp;
        }
        Step::Wait(u64::try_from(self.next_at.saturating_sub(now)).unwrap_or(0))
    }

    /// The AS answered with a new continuation asking for `wait` (§3.1:
    /// the client "MUST wait at least this number of seconds").
    pub fn continued(&mut self, now: i64, wait: Option<u64>) {
        self.next_at = now.saturating_add(secs(wait.unwrap_or(DEFAULT_WAIT)));
    }

    /// The AS answered `too_fast`; `retry_after` is its `Retry-After`, if
    /// any. The wait grows by the default at least, so a confused AS cannot
    /// make the agent spin.
    pub fn too_fast(&mut self, now: i64, retry_after: Option<u64>) {
        let wait = retry_after.unwrap_or(DEFAULT_WAIT).max(1);
        self.next_at = now.saturating_add(secs(wait));
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// When to rotate a token issued at `issued_at` that lives `expires_in`
/// seconds; `None` for a token without a stated lifetime.
pub fn rotate_at(issued_at: i64, expires_in: Option<u64>) -> Option<i64> {
    let lifetime = secs(expires_in?);
    let lead = (lifetime / 3).clamp(1, 300);
    Some(issued_at.saturating_add(lifetime.saturating_sub(lead)))
}

/// True once `now` has reached the rotation time.
pub fn rotation_due(now: i64, issued_at: i64, expires_in: Option<u64>) -> bool {
    rotate_at(issued_at, expires_in).is_some_and(|at| now >= at)
}

/// True once the token has expired (no use rotating it then: the AS
/// refuses; negotiate again).
pub fn expired(now: i64, issued_at: i64, expires_in: Option<u64>) -> bool {
    expires_in.is_some_and(|e| now >= issued_at.saturating_add(secs(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock as _, ManualClock};

    #[test]
    fn poll_honours_wait_and_default() {
        let clock = ManualClock::at(1_000);
        let mut s = PollSchedule::new(clock.now(), Some(30), 600);
        assert_eq!(s.step(clock.now()), Step::Wait(30));
        clock.advance(10);
        assert_eq!(s.step(clock.now()), Step::Wait(20));
        clock.advance(20);
        assert_eq!(s.step(clock.now()), Step::Wait(0));
        s.continued(clock.now(), None);
        assert_eq!(s.step(clock.now()), Step::Wait(DEFAULT_WAIT));
        let fresh = PollSchedule::new(clock.now(), None, 600);
        assert_eq!(fresh.step(clock.now()), Step::Wait(5));
    }

    #[test]
    fn poll_too_fast_backs_off_by_retry_after() {
        let clock = ManualClock::at(50);
        let mut s = PollSchedule::new(clock.now(), Some(5), 600);
        clock.advance(5);
        s.too_fast(clock.now(), Some(12));
        assert_eq!(s.step(clock.now()), Step::Wait(12));
        s.too_fast(clock.now(), Some(0));
        assert_eq!(s.step(clock.now()), Step::Wait(1));
        s.too_fast(clock.now(), None);
        assert_eq!(s.step(clock.now()), Step::Wait(DEFAULT_WAIT));
    }

    #[test]
    fn poll_gives_up_at_the_deadline_or_interaction_expiry() {
        let clock = ManualClock::at(0);
        let mut s = PollSchedule::new(clock.now(), Some(5), 20);
        clock.advance(20);
        assert_eq!(s.step(clock.now()), Step::GiveUp);
        let mut s2 = PollSchedule::new(0, Some(5), 600);
        s2.interaction_expires_in(0, 8);
        assert_eq!(s2.step(0), Step::Wait(5));
        s2.continued(5, Some(5));
        // The next call would come after the interaction expired.
        assert_eq!(s2.step(5), Step::GiveUp);
        s.continued(0, Some(5));
        // A later, longer expiry never extends the agent's own limit.
        s.interaction_expires_in(0, 10_000);
        assert_eq!(s.deadline, 20);
    }

    #[test]
    fn rotation_timing_leaves_a_third_of_the_lifetime() {
        let clock = ManualClock::at(10_000);
        let issued = clock.now();
        assert_eq!(rotate_at(issued, Some(3600)), Some(issued + 3300));
        assert_eq!(rotate_at(issued, Some(6)), Some(issued + 4));
        assert_eq!(rotate_at(issued, Some(1)), Some(issued));
        assert_eq!(rotate_at(issued, None), None);
        assert!(!rotation_due(clock.now(), issued, Some(6)));
        clock.advance(3);
        assert!(!rotation_due(clock.now(), issued, Some(6)));
        clock.advance(1);
        assert!(rotation_due(clock.now(), issued, Some(6)));
        assert!(!expired(clock.now(), issued, Some(6)));
        clock.advance(2);
        assert!(expired(clock.now(), issued, Some(6)));
        assert!(!expired(clock.now(), issued, None));
        assert!(!rotation_due(clock.now(), issued, None));
    }
}
