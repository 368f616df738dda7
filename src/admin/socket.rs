//! The admin socket: `<data-dir>/admin.sock`, one JSON command per line in,
//! one JSON answer per line out (`{"ok": true, "result": …}` or
//! `{"ok": false, "error": "…"}`).
//!
//! The socket is created mode 0600 (under a umask-independent chmod before
//! the first accept) in a data dir the server keeps at 0700: only the
//! server's own user can connect. A command line is at most
//! [`MAX_LINE`] bytes, and a connection gets [`IO_TIMEOUT`] to send it.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use zeroize::Zeroizing;

use super::{Admin, parse_command};

/// The socket's file name in the data dir.
pub const SOCKET_NAME: &str = "admin.sock";
/// Largest command line read.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a connection gets to send its command, and the CLI to get an
/// answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the admin socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A live server answers on it.
    #[error("another gnapd is serving this data dir (its admin socket {} answers)", .0.display())]
    InUse(PathBuf),
    /// A stale socket could not be removed.
    #[error("cannot replace {}: {source}", path.display())]
    Replace {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Binding failed.
    #[error("cannot bind {}: {source}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The mode could not be set to 0600.
    #[error("cannot restrict {}: {source}", path.display())]
    Restrict {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Why a command sent over the socket got no result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No server answers on the data dir's socket.
    #[error("no gnapd is serving {} ({}: {source})", data_dir.display(), socket.display())]
    NotServing {
        /// The data dir.
        data_dir: PathBuf,
        /// Its socket.
        socket: PathBuf,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// The socket could not be set up.
    #[error("{0}")]
    Setup(std::io::Error),
    /// The command could not be written as JSON.
    #[error("{0}")]
    Encode(serde_json::Error),
    /// Sending failed.
    #[error("sending the command: {0}")]
    Send(std::io::Error),
    /// Reading the answer failed.
    #[error("reading the answer: {0}")]
    Receive(std::io::Error),
    /// The answer is not JSON.
    #[error("the server's answer is not JSON")]
    NotJson,
    /// The server refused the command, saying why.
    #[error("{0}")]
    Refused(String),
}

/// The socket path for a data dir.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_NAME)
}

/// Binds the admin socket at `path` (replacing a stale one left by a server
/// that died) with mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    use std::os::unix::fs::PermissionsExt as _;
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(BindError::InUse(path.to_owned()));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BindError::Replace {
                path: path.to_owned(),
                source,
            });
        }
    }
    let listener = UnixListener::bind(path).map_err(|source| BindError::Bind {
        path: path.to_owned(),
        source,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        BindError::Restrict {
            path: path.to_owned(),
            source,
        }
    })?;
    Ok(listener)
}

/// Serves admin commands until the task is dropped.
pub async fn serve(listener: UnixListener, admin: Arc<Admin>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, admin).await {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
}

/// One connection: reads a command line, answers it, closes (also the
/// fuzz hook's way in, over a socket pair).
pub(crate) async fn connection(stream: UnixStream, admin: Arc<Admin>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Zeroizing::new(Vec::new());
    let mut reader = tokio::io::BufReader::new(read).take(MAX_LINE as u64 + 1);
    let read = tokio::time::timeout(IO_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
    let answer = match read {
        Err(_) => json!({"ok": false, "error": "no command in time"}),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) if line.len() > MAX_LINE => {
            json!({"ok": false, "error": "the command is too long"})
        }
        Ok(Ok(_)) => match parse_command(line) {
            Err(e) => json!({"ok": false, "error": e.for_cli()}),
            // Store writes wait for the disk: off the async threads.
            Ok(command) => match tokio::task::spawn_blocking(move || admin.run(command)).await {
                Ok(Ok(result)) => json!({"ok": true, "result": result}),
                Ok(Err(e)) => json!({"ok": false, "error": e.for_cli()}),
                Err(_) => json!({"ok": false, "error": "the command failed"}),
            },
        },
    };
    let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Sends `command` to the server whose data dir is `data_dir` and returns
/// its result (the CLI side; blocking).
pub fn call(data_dir: &Path, command: &Value) -> Result<Value, CallError> {
    let path = path_in(data_dir);
    let mut stream =
        std::os::unix::net::UnixStream::connect(&path).map_err(|source| CallError::NotServing {
            data_dir: data_dir.to_owned(),
            socket: path.clone(),
            source,
        })?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(CallError::Setup)?;
    let mut line = Zeroizing::new(serde_json::to_vec(command).map_err(CallError::Encode)?);
    line.push(b'\n');
    stream.write_all(&line).map_err(CallError::Send)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(CallError::Receive)?;
    let answer: Value = serde_json::from_str(&answer).map_err(|_| CallError::NotJson)?;
    if answer["ok"] == Value::Bool(true) {
        Ok(answer["result"].clone())
    } else {
        Err(CallError::Refused(
            answer["error"]
                .as_str()
                .unwrap_or("the server refused the command")
                .to_owned(),
        ))
    }
}
