//! Every test a spec-notes table names exists, so the tables cannot drift
//! from the suite.

use std::collections::BTreeSet;

use crate::support::paths::root;

/// Test function names defined anywhere under src/ and tests/.
fn defined_tests() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![root().join("src"), root().join("tests")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    let line = line.trim_start();
                    let line = line.strip_prefix("async ").unwrap_or(line);
                    if let Some(rest) = line.strip_prefix("fn ") {
                        let name: String = rest
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        names.insert(name);
                    }
                }
            }
        }
    }
    names
}

/// Test names cited in a spec-notes table: backticked identifiers in the
/// "test" column (the last column) of tables whose header names it so
/// (other tables, such as an attack's description, cite code, not tests).
fn cited_tests(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("spec-notes").join(file)).unwrap();
    let mut cited = Vec::new();
    // Whether the table the current line belongs to has a test column;
    // None between tables.
    let mut tested: Option<bool> = None;
    for line in text.lines() {
        if !line.starts_with('|') {
            tested = None;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let Some(last) = cells.last() else { continue };
        let tested =
            *tested.get_or_insert_with(|| last.trim().to_ascii_lowercase().starts_with("test"));
        if !tested {
            continue;
        }
        for piece in last.split('`').skip(1).step_by(2) {
            if !piece.is_empty()
                && piece
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                cited.push(piece.to_owned());
            }
        }
    }
    cited
}

#[test]
fn every_test_named_in_spec_notes_exists() {
    let defined = defined_tests();
    for file in [
        "rfc9421.md",
        "rfc9530.md",
        "rfc9635.md",
        "rfc9767.md",
        "oauth.md",
        "mcp-gateway.md",
        "client.md",
        "security.md",
        "compare.md",
        "conformance.md",
    ] {
        let cited = cited_tests(file);
        assert!(!cited.is_empty(), "{file} names no tests");
        let missing: Vec<_> = cited.iter().filter(|t| !defined.contains(*t)).collect();
        assert!(
            missing.is_empty(),
            "{file} names tests that do not exist: {missing:?}"
        );
    }
}
