//! Issuing the operator's one-time sign-in link (`crate::authz::operator`):
//! at `gnapd serve` start and on `gnapd admin login-link`. The link is
//! written to `<data-dir>/operator-login` (mode 0600) for the admin to
//! read; the file always holds the newest link.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::authz::operator::{Operator, OperatorError, link_url};

/// Why no link was issued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The operator could not make one.
    #[error("making an operator sign-in link: {0}")]
    Make(#[from] OperatorError),
    /// The link file could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The link file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The file in the data dir holding the newest sign-in link.
pub fn file_in(data_dir: &Path) -> PathBuf {
    data_dir.join("operator-login")
}

/// Makes a fresh link (the previous one stops working), writes it to
/// `file` and returns it.
pub fn issue(
    operator: &Operator,
    public_url: &str,
    file: &Path,
    now: i64,
) -> Result<String, LinkError> {
    let secret = operator.new_link(now)?;
    let url = link_url(public_url, &secret);
    write_private(file, &format!("{url}\n")).map_err(|source| LinkError::Write {
        path: file.to_owned(),
        source,
    })?;
    Ok(url)
}

/// Writes `text` to `path` readable by its owner only: a fresh file
/// created 0600, renamed over the old one, so no reader ever sees a
/// half-written or more widely readable link.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_file_is_private_and_holds_the_newest_link() {
        let dir = tempfile::tempdir().unwrap();
        let file = file_in(dir.path());
        let operator = Operator::default();
        let first = issue(&operator, "https://as.example", &file, 1_000).unwrap();
        let second = issue(&operator, "https://as.example", &file, 1_000).unwrap();
        assert_ne!(first, second);
        assert!(second.starts_with("https://as.example/gnap/operator?code="));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("{second}\n")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
