//! `--approve-hook CMD`: the person and the browser, played by a command.
//!
//! The suite cannot click through an AS's consent pages, so the operator
//! gives a shell command that does: it runs as `sh -c CMD` with what the
//! interaction needs in its environment, and returns once it has approved
//! (or denied) the grant and, for a `redirect` finish, sent the browser on
//! to the suite's finish URI. Its output is kept only for the detail of a
//! failed run.

use std::process::Stdio;
use std::time::Duration;

/// What the person does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Approve the grant.
    Approve,
    /// Deny it.
    Deny,
}

impl Decision {
    /// The value of `GNAP_DECISION`.
    pub fn word(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Deny => "deny",
        }
    }
}

/// One interaction handed to the hook: what the AS answered in
/// `interact` (§3.3), and the decision wanted.
#[derive(Debug, Clone, Default)]
pub struct Interaction {
    /// `interact.redirect` (§3.3.1).
    pub redirect: Option<String>,
    /// `interact.user_code` or `interact.user_code_uri.code` (§3.3.3, §3.3.4).
    pub user_code: Option<String>,
    /// `interact.user_code_uri.uri` (§3.3.4).
    pub user_code_uri: Option<String>,
}

impl Interaction {
    /// What the AS's `interact` object offers.
    pub fn from_response(interact: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let code_uri = interact.get("user_code_uri");
        Self {
            redirect: interact.get("redirect").and_then(text),
            user_code: interact
                .get("user_code")
                .and_then(text)
                .or_else(|| code_uri.and_then(|c| c.get("code")).and_then(text)),
            user_code_uri: code_uri.and_then(|c| c.get("uri")).and_then(text),
        }
    }
}

/// The operator's hook command.
#[derive(Debug, Clone)]
pub struct Hook {
    command: String,
    timeout: Duration,
}

impl Hook {
    /// `command`, killed if it runs longer than `timeout`.
    pub fn new(command: String, timeout: Duration) -> Self {
        Self { command, timeout }
    }

    /// Runs the hook for `interaction` at the AS whose grant endpoint is
    /// `grant_endpoint`. Err: it could not start, timed out or exited
    /// non-zero (with the tail of its stderr).
    pub async fn run(
        &self,
        interaction: &Interaction,
        decision: Decision,
        grant_endpoint: &str,
    ) -> Result<(), String> {
        let mut command = tokio::process::Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .env(
                "GNAP_INTERACT_URL",
                interaction.redirect.as_deref().unwrap_or(""),
            )
            .env(
                "GNAP_USER_CODE",
                interaction.user_code.as_deref().unwrap_or(""),
            )
            .env(
                "GNAP_USER_CODE_URI",
                interaction.user_code_uri.as_deref().unwrap_or(""),
            )
            .env("GNAP_DECISION", decision.word())
            .env("GNAP_GRANT_ENDPOINT", grant_endpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| format!("the approve hook did not start: {e}"))?;
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| format!("the approve hook ran over {}s", self.timeout.as_secs()))?
            .map_err(|e| format!("the approve hook: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .trim()
            .chars()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(format!(
            "the approve hook failed ({}): {tail}",
            output.status
        ))
    }
}
