//! `gnapd conformance AS_URL`: a black-box GNAP conformance suite. It
//! speaks only HTTP to the AS under test, as a client instance (and, with
//! `--rs-url`, as a resource server), and names for each check its RFC
//! section and level. spec-notes/conformance.md describes what it checks
//! and how results count.
//!
//! The table of every check (id, section, level, what it proves) is the
//! `CHECKS` constant of each group in [`checks`], in run order:
//! `discovery-*` (RFC 9635 §9), `grant-*` (§2, §3), `headers-*` (§3),
//! `continue-*` (§5), `token-*` (§6), `error-*` (§3.6), `negative-*`
//! (§7.3.1), the checks of the `jwsd`, `jws` and `mtls` methods (§7.3.2-4,
//! `checks::proofs`, ids in the groups above naming the method),
//! `interact-*` (§3.3, §4, with `--approve-hook`) and `rs-*`
//! (RFC 9767, with `--rs-url`).
//!
//! Results are `pass`, `fail`, `not_applicable` (never counted as a pass)
//! and `error` (the suite itself could not run the check). A run passes
//! when no MUST check failed.

pub mod check;
pub mod checks;
pub mod finish_listener;
pub mod hook;
pub mod proof;
pub mod report;
pub mod run;
pub mod target;
