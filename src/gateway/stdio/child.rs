//! Starting a stdio upstream's process, and passing its stderr to the log.
//!
//! The child gets a cleared environment: `PATH`, `HOME` and `LANG` from the
//! gateway (so `npx`/`uvx` and locales work), then the upstream's plain
//! `env`, then its credential set's variables. Nothing else of the gateway's
//! environment — its master key variable, the agent's token, proxies' or
//! cloud credentials — reaches the child.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::Stdio;

use tokio::io::AsyncReadExt as _;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::framing::{Frame, LineFramer, MAX_LOG_LINE};
use crate::upstream::credential::Credential;
use crate::upstream::server::StdioCommand;

/// The gateway's variables a child inherits.
pub(crate) const INHERITED: [&str; 3] = ["PATH", "HOME", "LANG"];

/// A child's whole environment: [`INHERITED`] as `inherited` gives them, then
/// the command's plain variables, then the credential's (later wins).
pub(crate) fn environment(
    inherited: impl Fn(&str) -> Option<OsString>,
    command: &StdioCommand,
    credential: &Credential,
) -> BTreeMap<OsString, OsString> {
    let mut env = BTreeMap::new();
    for name in INHERITED {
        if let Some(value) = inherited(name) {
            env.insert(OsString::from(name), value);
        }
    }
    for (name, value) in &command.env {
        env.insert(OsString::from(name), OsString::from(value));
    }
    for (name, value) in credential.env_vars() {
        env.insert(OsString::from(name), OsString::from(value));
    }
    env
}

/// A started child and its pipes.
pub(crate) struct Spawned {
    /// The process (killed when dropped).
    pub child: Child,
    /// Messages to it.
    pub stdin: ChildStdin,
    /// Messages from it.
    pub stdout: ChildStdout,
    /// Its diagnostics.
    pub stderr: ChildStderr,
}

/// Starts `command` with `credential`'s variables. Killed on drop, so a
/// gateway that stops (or a task that is dropped) leaves no process behind;
/// in its own process group, so a Ctrl-C at the gateway's terminal reaches
/// the gateway, which then stops its children in order.
pub(crate) fn spawn(command: &StdioCommand, credential: &Credential) -> std::io::Result<Spawned> {
    let mut cmd = Command::new(&command.command);
    cmd.args(&command.args)
        .env_clear()
        .envs(environment(|n| std::env::var_os(n), command, credential))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = &command.cwd {
        cmd.current_dir(dir);
    }
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn()?;
    let missing = || std::io::Error::other("a child pipe is missing");
    let stdin = child.stdin.take().ok_or_else(missing)?;
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stderr = child.stderr.take().ok_or_else(missing)?;
    Ok(Spawned {
        child,
        stdin,
        stdout,
        stderr,
    })
}

/// Logs each stderr line of `upstream`'s child at debug level until it
/// closes. (What a child prints is its own business; the gateway adds no
/// secret to it.)
pub(crate) async fn log_stderr(upstream: String, mut stderr: ChildStderr) {
    let mut framer = LineFramer::new(MAX_LOG_LINE);
    let mut buf = vec![0u8; 8192];
    let mut frames = Vec::new();
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => framer.push(&buf[..n], &mut frames),
        }
        for frame in frames.drain(..) {
            log_frame(&upstream, &frame);
        }
    }
    if let Some(frame) = framer.finish() {
        log_frame(&upstream, &frame);
    }
}

fn log_frame(upstream: &str, frame: &Frame) {
    match frame {
        Frame::Line(line) => {
            tracing::debug!(upstream, line = %String::from_utf8_lossy(line), "stdio upstream stderr");
        }
        Frame::TooLong => {
            tracing::debug!(upstream, "stdio upstream stderr: a line too long to log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::Secret;

    #[test]
    fn the_child_environment_is_three_inherited_variables_plain_env_and_the_credential() {
        let gateway_env = |name: &str| match name {
            "PATH" => Some(OsString::from("/usr/bin")),
            "HOME" => Some(OsString::from("/home/gw")),
            "GNAPD_MASTER_KEY" | "AWS_SECRET_ACCESS_KEY" => Some(OsString::from("x")),
            _ => None,
        };
        let command = StdioCommand {
            command: "npx".into(),
            env: BTreeMap::from([
                ("LOG_LEVEL".into(), "info".into()),
                ("API_KEY".into(), "plain".into()),
            ]),
            ..StdioCommand::default()
        };
        let credential =
            Credential::Env(BTreeMap::from([("API_KEY".into(), Secret::new("s3cr3t"))]));
        let env = environment(gateway_env, &command, &credential);
        let shown: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect();
        assert_eq!(
            shown,
            [
                ("API_KEY".to_owned(), "s3cr3t".to_owned()),
                ("HOME".into(), "/home/gw".into()),
                ("LOG_LEVEL".into(), "info".into()),
                ("PATH".into(), "/usr/bin".into()),
            ]
        );
    }
}
