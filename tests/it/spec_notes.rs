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
        "store.md",
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

/// The header of the column that names `gnapd conformance` checks.
const CONFORMANCE_COLUMN: &str = "conformance check";

/// The files whose requirement tables carry that column, before `test`.
const LINKED_FILES: [&str; 1] = ["rfc9635.md"];

/// RFC 9635 checks in the catalogue that no requirement row names yet, and
/// why. The list may only shrink: a listed id that a row names, or that
/// left the catalogue, fails the test. (Empty: every check is linked.)
const NOT_YET_LINKED: [(&str, &str); 0] = [];

/// One requirement row's `conformance check` cell.
struct LinkCell {
    line: usize,
    text: String,
}

/// The `conformance check` cells of `file`'s tables whose last column is the
/// test column. Panics where such a table lacks the column or has it
/// anywhere but just before `test`.
fn conformance_cells(file: &str) -> Vec<LinkCell> {
    let text = std::fs::read_to_string(root().join("spec-notes").join(file)).unwrap();
    let mut cells = Vec::new();
    // The column's index in the current table; None between tables and in
    // tables without a test column.
    let mut column: Option<Option<usize>> = None;
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        if !line.starts_with('|') {
            column = None;
            continue;
        }
        let row: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let Some(index) = column else {
            let tested = row
                .last()
                .is_some_and(|h| h.to_ascii_lowercase().starts_with("test"));
            let at = row.iter().position(|h| *h == CONFORMANCE_COLUMN);
            if tested {
                assert_eq!(
                    at,
                    Some(row.len() - 2),
                    "{file}:{number}: a table with a test column needs `{CONFORMANCE_COLUMN}` just before it"
                );
            }
            column = Some(at.filter(|_| tested));
            continue;
        };
        let Some(index) = index else { continue };
        if row
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        cells.push(LinkCell {
            line: number,
            text: row.get(index).copied().unwrap_or_default().to_owned(),
        });
    }
    cells
}

/// The check ids a cell names: `—` names none; otherwise backticked ids
/// separated by commas and nothing else (free text would hide a typo).
fn named_checks(file: &str, cell: &LinkCell) -> Vec<String> {
    if cell.text == "—" {
        return Vec::new();
    }
    let mut ids = Vec::new();
    for part in cell.text.split(',') {
        let id = part
            .trim()
            .strip_prefix('`')
            .and_then(|p| p.strip_suffix('`'))
            .filter(|id| {
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            });
        match id {
            Some(id) => ids.push(id.to_owned()),
            None => panic!(
                "{file}:{}: `{CONFORMANCE_COLUMN}` must be — or backticked check ids separated by commas, not {:?}",
                cell.line, cell.text
            ),
        }
    }
    ids
}

fn catalogue_ids() -> BTreeSet<&'static str> {
    gnapd::conformance::checks::catalogue()
        .into_iter()
        .map(|check| check.id)
        .collect()
}

#[test]
fn every_conformance_check_named_in_spec_notes_is_in_the_catalogue() {
    let catalogue = catalogue_ids();
    for file in LINKED_FILES {
        let cells = conformance_cells(file);
        assert!(cells.len() > 50, "{file}: only {} rows", cells.len());
        for cell in &cells {
            for id in named_checks(file, cell) {
                assert!(
                    catalogue.contains(id.as_str()),
                    "{file}:{}: `{id}` is not a check of `gnapd conformance`",
                    cell.line
                );
            }
        }
    }
}

#[test]
fn every_rfc9635_conformance_check_is_named_by_a_requirement_row() {
    let named: BTreeSet<String> = LINKED_FILES
        .iter()
        .flat_map(|file| {
            conformance_cells(file)
                .iter()
                .flat_map(|cell| named_checks(file, cell))
                .collect::<Vec<_>>()
        })
        .collect();
    let catalogue = catalogue_ids();
    for (id, why) in NOT_YET_LINKED {
        assert!(
            catalogue.contains(id),
            "{id} left the catalogue: drop it from NOT_YET_LINKED"
        );
        assert!(
            !named.contains(id),
            "{id} is named now: drop it from NOT_YET_LINKED ({why})"
        );
    }
    let unlinked: Vec<&str> = gnapd::conformance::checks::catalogue()
        .into_iter()
        .filter(|check| check.section.contains("RFC 9635"))
        .map(|check| check.id)
        .filter(|id| !named.contains(*id) && !NOT_YET_LINKED.iter().any(|(n, _)| n == id))
        .collect();
    assert!(
        unlinked.is_empty(),
        "RFC 9635 checks no row of {LINKED_FILES:?} names in `{CONFORMANCE_COLUMN}`: {unlinked:?}"
    );
}

/// The reader above refuses what it should: a misspelt id and free text.
#[test]
fn a_conformance_cell_with_free_text_or_a_misspelt_id_is_caught() {
    let cell = |text: &str| LinkCell {
        line: 1,
        text: text.to_owned(),
    };
    assert_eq!(
        named_checks("x.md", &cell("`grant-key-by-value`, `error-shape`")),
        ["grant-key-by-value", "error-shape"]
    );
    assert!(named_checks("x.md", &cell("—")).is_empty());
    for bad in [
        "",
        "grant-key-by-value",
        "`grant-key-by-value` and more",
        "`Grant_Key`",
    ] {
        let caught = std::panic::catch_unwind(|| named_checks("x.md", &cell(bad)));
        assert!(caught.is_err(), "{bad:?} was read");
    }
    assert!(!catalogue_ids().contains("grant-key-by-valu"));
}
