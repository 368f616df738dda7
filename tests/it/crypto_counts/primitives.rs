//! The crypto crates are called only where the call is counted: a new
//! `Sha256::digest` in a service would do work that `gnapd compare` never
//! sees, so this reads src/ and names any such call.

use std::path::Path;

use crate::support::paths::root;

/// What calls a primitive directly.
const CRATES: &[&str] = &[
    "sha2::",
    "sha3::",
    "use sha2",
    "use sha3",
    "Sha256::",
    "Sha512::",
    "ed25519_dalek::",
    "josekit::",
    "chacha20poly1305",
];

/// The files that call them and count each call (paths under src/).
const COUNTING: &[&str] = &[
    // Every hash, and the one MAC.
    "proto/hash.rs",
    "proto/hmac.rs",
    // The interaction hash methods (sha-384, sha3-*).
    "proto/gnap/interact.rs",
    // Keys: sign/verify (RFC 9421 and JWS), key generation.
    "proto/jwk.rs",
    "proto/jwk/",
    // The Ed25519 batch equation.
    "proto/httpsig/batch.rs",
    // Sealing upstream credentials.
    "upstream/vault.rs",
    // Not the server: the fuzz harness, and the measuring client, which
    // counts by hand what it does outside proto.
    "fuzzing",
    "compare/",
];

#[test]
fn crypto_crates_are_called_only_where_the_calls_are_counted() {
    let src = root().join("src");
    let mut found = Vec::new();
    walk(&src, &mut |path| {
        let relative = path
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if COUNTING.iter().any(|allowed| relative.starts_with(allowed)) {
            return;
        }
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests may check against the crates themselves.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            if let Some(name) = CRATES.iter().find(|c| line.contains(*c)) {
                found.push(format!("src/{relative}:{}: {name}", n + 1));
            }
        }
    });
    assert!(
        found.is_empty(),
        "uncounted crypto (use crate::proto::hash or count it): {found:#?}"
    );
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, visit);
        } else if path.extension().is_some_and(|e| e == "rs") {
            visit(&path);
        }
    }
}
