//! Upstream credentials sealed at rest.
//!
//! Every secret is sealed with XChaCha20-Poly1305 under a 256-bit master key
//! that lives outside the data directory (a 0600 file or an environment
//! variable), with the record's id as associated data: a sealed value moved to
//! another record does not open. A copy of the data directory without the
//! master key reveals no upstream secret.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::proto::b64;
use crate::proto::crypto_ops::{Operation, count};

/// The AEAD's name in the counts.
const AEAD: &str = "xchacha20poly1305";

/// Nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// Why the vault could not do its work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// The master key file or variable is missing.
    #[error("no master key: {0}")]
    Missing(String),
    /// The master key is not 32 bytes of base64url.
    #[error("the master key is not 32 bytes of base64url")]
    Malformed,
    /// The master key file is readable by others than its owner.
    #[error("the master key file {0} must not be readable by group or others (chmod 600)")]
    Permissions(String),
    /// Writing a new master key failed.
    #[error("cannot write the master key: {0}")]
    Write(String),
    /// A sealed value does not open under this key for this record.
    #[error("a sealed secret does not open: wrong master key, or moved between records")]
    Open,
    /// The random source failed.
    #[error("the random source failed")]
    Random,
}

/// The master key. `Debug` never shows it; memory is wiped on drop.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(redacted)")
    }
}

impl MasterKey {
    /// Reads a key (base64url text) from a file that only its owner can read.
    pub fn from_file(path: &Path) -> Result<Self, VaultError> {
        let shown = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| VaultError::Missing(format!("{shown}: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(VaultError::Permissions(shown));
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| VaultError::Missing(format!("{shown}: {e}")))?,
        );
        Self::from_text(text.trim())
    }

    /// Reads a key (base64url text) from an environment variable's value.
    pub fn from_text(text: &str) -> Result<Self, VaultError> {
        let bytes = Zeroizing::new(b64::decode_url(text).ok_or(VaultError::Malformed)?);
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| VaultError::Malformed)?;
        Ok(Self(Zeroizing::new(key)))
    }

    /// Generates a key and writes it to `path`, created with mode 0600 (it
    /// must not exist yet).
    pub fn generate_into(path: &Path) -> Result<Self, VaultError> {
        let mut key = Zeroizing::new([0u8; 32]);
        crate::random::fill(key.as_mut()).map_err(|_| VaultError::Random)?;
        let text = Zeroizing::new(b64::encode_url(key.as_ref()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| VaultError::Write(e.to_string()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| VaultError::Write(e.to_string()))?;
        Ok(Self(key))
    }

    /// A key for another purpose, named by `label`: HMAC-SHA-256 under
    /// the master key. Every node given the master key derives the same
    /// one, and it tells nothing of the master key or of keys under other
    /// labels.
    pub fn derive(&self, label: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(crate::proto::hmac::hmac_sha256(&self.0, label.as_bytes()))
    }

    // Every seal and open goes through `cipher`'s two callers, which count
    // them for `gnapd compare`.
    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(*self.0))
    }

    /// Seals `secret` for the record `record_id`: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, record_id: &str, secret: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce).map_err(|_| VaultError::Random)?;
        count(Operation::Seal, AEAD);
        let sealed = self
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed for `record_id`.
    pub fn open(&self, record_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Open)?;
        count(Operation::Open, AEAD);
        self.cipher()
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: record_id.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_text(&b64::encode_url(&[7u8; 32])).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_record_and_key() {
        let k = key();
        let sealed = k.seal("cred-1", b"ghp_secret").unwrap();
        assert_eq!(k.open("cred-1", &sealed).unwrap().as_slice(), b"ghp_secret");
        assert_eq!(k.open("cred-2", &sealed), Err(VaultError::Open));
        let other = MasterKey::from_text(&b64::encode_url(&[8u8; 32])).unwrap();
        assert_eq!(other.open("cred-1", &sealed), Err(VaultError::Open));
        assert!(!sealed.windows(10).any(|w| w == b"ghp_secret"));
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        assert_eq!(k.open("cred-1", &tampered), Err(VaultError::Open));
    }

    #[test]
    fn each_seal_and_each_open_counts_once() {
        use crate::proto::crypto_ops::moved;
        let k = key();
        let (sealed, seals) = moved("seal:xchacha20poly1305", || k.seal("c", b"s").unwrap());
        assert_eq!(seals, 1);
        let (_, opens) = moved("open:xchacha20poly1305", || k.open("c", &sealed));
        assert_eq!(opens, 1);
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let k = key();
        assert_ne!(k.seal("r", b"s").unwrap(), k.seal("r", b"s").unwrap());
    }

    #[test]
    fn the_key_file_is_created_0600_and_a_readable_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let made = MasterKey::generate_into(&path).unwrap();
        let read = MasterKey::from_file(&path).unwrap();
        let sealed = made.seal("r", b"s").unwrap();
        assert_eq!(read.open("r", &sealed).unwrap().as_slice(), b"s");
        assert!(
            MasterKey::generate_into(&path).is_err(),
            "an existing key is never overwritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                MasterKey::from_file(&path),
                Err(VaultError::Permissions(_))
            ));
        }
        assert_eq!(format!("{made:?}"), "MasterKey(redacted)");
        assert!(matches!(
            MasterKey::from_file(&dir.path().join("none")),
            Err(VaultError::Missing(_))
        ));
        assert_eq!(
            MasterKey::from_text("short").unwrap_err(),
            VaultError::Malformed
        );
    }

    #[test]
    fn a_derived_key_is_one_per_master_key_and_label_and_not_the_master_key() {
        let other = MasterKey::from_text(&b64::encode_url(&[8u8; 32])).unwrap();
        assert_eq!(*key().derive("a"), *key().derive("a"));
        assert_ne!(*key().derive("a"), *key().derive("b"));
        assert_ne!(*key().derive("a"), *other.derive("a"));
        assert_ne!(*key().derive("a"), [7u8; 32]);
    }
}
