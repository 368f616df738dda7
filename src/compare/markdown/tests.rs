use super::render;
use crate::compare::sample;
use crate::compare::variant::{Attack, Scenario, Variant};

#[test]
fn render_mentions_every_scenario_variant_and_attack() {
    let md = render(&sample::report());
    for scenario in Scenario::ALL {
        assert!(md.contains(scenario.id()), "{} missing", scenario.id());
        assert!(
            md.contains(scenario.title()),
            "{} missing",
            scenario.title()
        );
    }
    for variant in Variant::GNAPD {
        assert!(
            md.contains(&format!("`{}`", variant.id())),
            "{variant:?} missing"
        );
    }
    for attack in Attack::ALL {
        assert!(md.contains(attack.id()), "{} missing", attack.id());
        assert!(md.contains(attack.title()), "{} missing", attack.title());
    }
}

#[test]
fn render_says_why_a_cell_is_empty_and_against_what_ratios_are() {
    let md = render(&sample::report());
    assert!(md.contains("n/a [1]"));
    assert!(md.contains("`oauth-client-credentials`: client_credentials has no person"));
    assert!(md.contains("round trips × `gnap-ed25519`"));
    // gnap-p256 has scale 1.5 against gnap-ed25519's 1.
    assert!(md.contains("×1.50"));
    assert!(md.contains("Failed runs:"));
    for symbol in ["✓", "✗", "–", "⚠"] {
        assert!(md.contains(symbol), "{symbol} missing");
    }
}

/// Every table row has as many cells as its header: an unescaped `|` in
/// a reason or an evidence string would shift every column after it.
#[test]
fn every_table_row_has_as_many_cells_as_its_header() {
    let md = render(&sample::report());
    let cells = |line: &str| {
        let (mut n, mut escaped) = (0, false);
        for c in line.chars() {
            if c == '|' && !escaped {
                n += 1;
            }
            escaped = c == '\\' && !escaped;
        }
        n
    };
    let mut width = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = cells(line);
            match width {
                None => width = Some(n),
                Some(w) => assert_eq!(n, w, "row does not match its header: {line}"),
            }
        } else {
            width = None;
        }
    }
}

/// The glance tables come before the scenario sections, one row per
/// scenario, with the person-approves cell of a client without a person
/// marked n/a rather than left blank or zero.
#[test]
fn at_a_glance_lists_every_scenario_with_not_applicable_cells_marked() {
    let md = render(&sample::report());
    let glance = md.find("## At a glance").expect("the section");
    assert!(glance < md.find("## Scenarios").unwrap());
    let section = &md[glance..md.find("## How to read").unwrap_or(md.len())];
    for title in [
        "HTTP round trips",
        "Bytes on the wire",
        "Latency per run",
        "Server CPU",
    ] {
        assert!(section.contains(title), "{title} missing");
    }
    let person_row = section
        .lines()
        .find(|l| l.starts_with("| `person-approves`"))
        .expect("a person-approves row");
    // The client_credentials column (the header's position of it).
    let header = section
        .lines()
        .find(|l| l.starts_with("| scenario |"))
        .unwrap();
    let column = header
        .split(" | ")
        .position(|c| c.contains("oauth-client-credentials"))
        .expect("a client_credentials column");
    assert_eq!(
        person_row.split(" | ").nth(column),
        Some("n/a"),
        "{person_row}"
    );
    for scenario in Scenario::ALL {
        assert!(section.contains(&format!("| `{}` |", scenario.id())));
    }
}
