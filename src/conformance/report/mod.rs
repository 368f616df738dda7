//! What a run found, and its three renderings: the terminal table
//! ([`table`]), JSON ([`json`], schema version 1) and JUnit XML
//! ([`junit`]).

use serde::Serialize;

use super::check::{Finding, Summary};

pub mod json;
pub mod junit;
pub mod table;

/// The JSON schema version; bumped when a member changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// One run against one AS.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The grant endpoint tested.
    pub target: String,
    /// When the run started, `YYYY-MM-DDTHH:MM:SSZ`.
    pub started_at: String,
    /// Every check run, in order.
    pub checks: Vec<Finding>,
    /// The counts.
    pub summary: Summary,
}

impl Report {
    /// A report of `checks`.
    pub fn new(target: &str, started_at: String, checks: Vec<Finding>) -> Self {
        let summary = Summary::of(&checks);
        Self {
            schema_version: SCHEMA_VERSION,
            target: target.to_owned(),
            started_at,
            checks,
            summary,
        }
    }

    /// True when no MUST check failed: the run passes.
    pub fn conforms(&self) -> bool {
        !self.checks.iter().any(Finding::fails_the_run)
    }
}
