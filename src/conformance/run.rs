//! One run: set up the session (the suite's key, the finish listener and
//! the hook when given), run every selected check in catalogue order, each
//! bounded in time, and gather the findings into a [`Report`].

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::CertificateDer;

use super::check::{Finding, Verdict};
use super::checks::{self, Session};
use super::finish_listener::FinishListener;
use super::hook::Hook;
use super::proof::HttpSig;
use super::report::Report;
use super::target::Target;

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The grant endpoint URL of the AS under test.
    pub grant_endpoint: String,
    /// A resource at an RS this AS protects (`--rs-url`).
    pub rs_url: Option<String>,
    /// The hook that plays the person (`--approve-hook`).
    pub approve_hook: Option<String>,
    /// Run only checks whose id contains one of these (`--only`); all
    /// when empty.
    pub only: Vec<String>,
    /// Longest wait for one exchange, one hook run or one callback.
    pub timeout: Duration,
    /// CA certificates trusted beside the system's (`--ca-file`): the AS
    /// under test may have a certificate of a private CA.
    pub ca_certs: Vec<CertificateDer<'static>>,
}

/// How many exchange timeouts one check may take in all (it may wait out
/// `wait` several times and run the hook).
const CHECK_BUDGET: u32 = 10;

/// Runs the suite; `progress` hears each finding as it is made. Err: the
/// suite could not start (no key, no listener).
pub async fn run(
    options: &Options,
    started_at: String,
    mut progress: impl FnMut(&Finding),
) -> Result<Report, String> {
    let signer = HttpSig::generate("conformance-suite")?;
    let target = Target::new(
        &options.grant_endpoint,
        options.timeout,
        Arc::new(signer),
        options.ca_certs.clone(),
    )?;
    let (hook, listener) = match &options.approve_hook {
        Some(command) => (
            Some(Hook::new(command.clone(), options.timeout)),
            Some(FinishListener::start().await?),
        ),
        None => (None, None),
    };
    let mut session = Session::new(target, hook, listener, options.rs_url.clone());
    let budget = options.timeout.saturating_mul(CHECK_BUDGET);
    let mut findings = Vec::new();
    for check in checks::catalogue() {
        if !selected(check.id, &options.only) {
            continue;
        }
        session
            .target
            .set_signer(Arc::new(HttpSig::generate("conformance-suite")?));
        let verdict = match tokio::time::timeout(budget, checks::run(check, &mut session)).await {
            Ok(verdict) => verdict,
            Err(_) => Verdict::fail(format!("no verdict within {}s", budget.as_secs())),
        };
        let finding = Finding::new(check, verdict);
        progress(&finding);
        findings.push(finding);
    }
    session.target.clean_up().await;
    Ok(Report::new(&options.grant_endpoint, started_at, findings))
}

/// Whether `--only` selects `id`.
pub fn selected(id: &str, only: &[String]) -> bool {
    only.is_empty() || only.iter().any(|part| id.contains(part.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_by_substring_and_nothing_means_everything() {
        assert!(selected("grant-key-by-value", &[]));
        assert!(selected("grant-key-by-value", &["key-by".into()]));
        assert!(selected(
            "negative-replayed",
            &["grant".into(), "negative".into()]
        ));
        assert!(!selected("negative-replayed", &["grant".into()]));
    }

    #[test]
    fn check_ids_are_unique_kebab_case_and_prefixed_by_their_group() {
        let groups = [
            "discovery",
            "grant",
            "interact",
            "continue",
            "token",
            "error",
            "headers",
            "negative",
            "rs",
        ];
        let mut seen = std::collections::BTreeSet::new();
        for check in checks::catalogue() {
            assert!(seen.insert(check.id), "{} twice", check.id);
            assert!(
                check
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{}",
                check.id
            );
            let group = check.id.split('-').next().unwrap();
            assert!(groups.contains(&group), "{}", check.id);
            assert!(check.section.starts_with("RFC "), "{}", check.id);
        }
    }
}
