//! The agent's key: fresh and in memory by default, or kept in a file so a
//! returning agent is the same client instance (its key is its identity).
//!
//! A key file holds the private JWK as JSON. It is created with mode 0600
//! (never readable by anyone else, not even for a moment: the mode is set
//! when the file is created), and an existing file that group or others can
//! read or write is refused rather than used.

use std::path::Path;

use thiserror::Error;

use crate::proto::httpsig::Algorithm;
use crate::proto::jwk::{KeyError, SigningKey};

/// Largest key file read, in bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Why the key file could not be used.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// Reading or creating the file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Group or others may read or write the file.
    #[error(
        "key file {path} is accessible to group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    TooOpen {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a private JWK gnapd can sign with.
    #[error("key file {path} does not hold a usable private JWK: {reason}")]
    BadKey {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file's key is of another algorithm than the one asked for.
    #[error("key file {path} holds a {found} key, not {wanted}")]
    WrongAlgorithm {
        /// The file.
        path: String,
        /// The key's algorithm.
        found: Algorithm,
        /// The algorithm asked for.
        wanted: Algorithm,
    },
    /// Generating the key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// A fresh key, held in memory only.
pub fn ephemeral(algorithm: Algorithm) -> Result<SigningKey, KeyError> {
    SigningKey::generate(algorithm)
}

/// Loads the key in `path`, or creates it (mode 0600) with a fresh key of
/// `algorithm` (Ed25519 when `None`) if the file does not exist.
pub fn load_or_create(
    path: &Path,
    algorithm: Option<Algorithm>,
) -> Result<SigningKey, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io {
        path: shown.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(_) => load(path, algorithm),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(algorithm.unwrap_or(Algorithm::Ed25519))?;
            let text = serde_json::to_vec_pretty(key.private_jwk()).map_err(|e| io(e.into()))?;
            write_private(path, &text).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// Loads the key in `path`, refusing a file others can read.
pub fn load(path: &Path, algorithm: Option<Algorithm>) -> Result<SigningKey, KeyFileError> {
    use std::io::Read as _;
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io {
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    check_mode(&file, &shown)?;
    let mut text = Vec::new();
    file.take(MAX_KEY_FILE).read_to_end(&mut text).map_err(io)?;
    let bad = |reason: String| KeyFileError::BadKey {
        path: shown.clone(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let key = SigningKey::from_private_jwk(&value, None).map_err(|e| bad(e.to_string()))?;
    if key.algorithm() == Algorithm::HmacSha256 {
        return Err(bad("a shared secret cannot identify a client".into()));
    }
    if let Some(wanted) = algorithm
        && wanted != key.algorithm()
    {
        return Err(KeyFileError::WrongAlgorithm {
            path: shown,
            found: key.algorithm(),
            wanted,
        });
    }
    Ok(key)
}

#[cfg(unix)]
fn check_mode(file: &std::fs::File, path: &str) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = file.metadata().map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &std::fs::File, _: &str) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.jwk");
        let first = load_or_create(&path, None).unwrap();
        assert_eq!(first.algorithm(), Algorithm::Ed25519);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&path, None).unwrap();
        assert_eq!(
            again.verifying_key().thumbprint(),
            first.verifying_key().thumbprint()
        );
        assert!(matches!(
            load_or_create(&path, Some(Algorithm::EcdsaP256Sha256)),
            Err(KeyFileError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn key_file_p256_option() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p256.jwk");
        let key = load_or_create(&path, Some(Algorithm::EcdsaP256Sha256)).unwrap();
        assert_eq!(key.algorithm(), Algorithm::EcdsaP256Sha256);
        let again = load(&path, None).unwrap();
        assert_eq!(again.algorithm(), Algorithm::EcdsaP256Sha256);
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.jwk");
        load_or_create(&path, None).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = load_or_create(&path, None).unwrap_err();
            assert!(
                matches!(err, KeyFileError::TooOpen { .. }),
                "{mode:o}: {err}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        load_or_create(&path, None).unwrap();
    }

    #[test]
    fn key_file_with_garbage_or_a_public_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jwk");
        let public = SigningKey::generate(Algorithm::Ed25519).unwrap();
        for text in [
            b"not json".to_vec(),
            serde_json::to_vec(public.verifying_key().public_jwk().unwrap()).unwrap(),
        ] {
            let _ = std::fs::remove_file(&path);
            write_private(&path, &text).unwrap();
            assert!(matches!(
                load_or_create(&path, None),
                Err(KeyFileError::BadKey { .. })
            ));
        }
    }
}
