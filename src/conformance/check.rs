//! What one check is and what it found: the catalogue entry ([`Check`]),
//! the verdict a check function returns ([`Verdict`]) and the row the
//! reports print ([`Finding`]).
//!
//! `not_applicable` is a result of its own and never a pass: a suite that
//! could not drive the AS to a feature says so, rather than letting the
//! absence of evidence count as conformance.

use serde::Serialize;

/// How strongly the RFC asks for what a check proves (RFC 2119 words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Level {
    /// MUST / MUST NOT / REQUIRED: a failure fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// SHOULD / RECOMMENDED.
    #[serde(rename = "SHOULD")]
    Should,
    /// MAY / OPTIONAL, or where the RFC is silent and the suite reports
    /// what it saw.
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    /// The word as the RFC writes it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
            Self::May => "MAY",
        }
    }
}

/// What running a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The AS did what the RFC asks.
    Pass,
    /// The AS did not.
    Fail,
    /// The AS could not be driven to it, or does not offer the feature.
    NotApplicable,
    /// The suite itself could not run it.
    Error,
}

impl Outcome {
    /// The result's name in every report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not_applicable",
            Self::Error => "error",
        }
    }
}

/// One entry of the catalogue: a stable id, the RFC section and level,
/// and what passing proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// Stable kebab-case id, prefixed by its group (`grant-`, `negative-`…).
    pub id: &'static str,
    /// The RFC and section, e.g. `RFC 9635 §3.6`.
    pub section: &'static str,
    /// The RFC 2119 level of the requirement.
    pub level: Level,
    /// What passing proves, in one line.
    pub title: &'static str,
}

/// What a check function returns: the outcome and one line saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// One line of detail.
    pub detail: String,
}

impl Verdict {
    /// The AS did what the RFC asks.
    pub fn pass(detail: impl Into<String>) -> Self {
        Self::new(Outcome::Pass, detail)
    }

    /// The AS did not.
    pub fn fail(detail: impl Into<String>) -> Self {
        Self::new(Outcome::Fail, detail)
    }

    /// The AS could not be driven to it.
    pub fn not_applicable(detail: impl Into<String>) -> Self {
        Self::new(Outcome::NotApplicable, detail)
    }

    /// The suite could not run it.
    pub fn error(detail: impl Into<String>) -> Self {
        Self::new(Outcome::Error, detail)
    }

    /// Pass when `held`, else fail; one detail either way.
    pub fn holds(held: bool, detail: impl Into<String>) -> Self {
        if held {
            Self::pass(detail)
        } else {
            Self::fail(detail)
        }
    }

    fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        // One line in every report: the AS's own text may carry newlines.
        let detail: String = detail.into();
        let detail = detail
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Self { outcome, detail }
    }
}

/// A check and its verdict: one row of every report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's id.
    pub id: &'static str,
    /// What passing proves.
    pub title: &'static str,
    /// The RFC section.
    pub section: &'static str,
    /// The level.
    pub level: Level,
    /// The outcome.
    pub result: Outcome,
    /// One line of detail.
    pub detail: String,
}

impl Finding {
    /// The row for `check` with `verdict`.
    pub fn new(check: &Check, verdict: Verdict) -> Self {
        Self {
            id: check.id,
            title: check.title,
            section: check.section,
            level: check.level,
            result: verdict.outcome,
            detail: verdict.detail,
        }
    }

    /// True for a failed MUST: what makes the run fail.
    pub fn fails_the_run(&self) -> bool {
        self.level == Level::Must && self.result == Outcome::Fail
    }
}

/// The counts of each outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Checks passed.
    pub pass: usize,
    /// Checks failed (at any level).
    pub fail: usize,
    /// Checks the AS could not be driven to.
    pub not_applicable: usize,
    /// Checks the suite could not run.
    pub error: usize,
}

impl Summary {
    /// Counts `findings`.
    pub fn of(findings: &[Finding]) -> Self {
        let mut summary = Self::default();
        for finding in findings {
            match finding.result {
                Outcome::Pass => summary.pass += 1,
                Outcome::Fail => summary.fail += 1,
                Outcome::NotApplicable => summary.not_applicable += 1,
                Outcome::Error => summary.error += 1,
            }
        }
        summary
    }
}
