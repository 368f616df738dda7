//! How numbers and cells look in report.md: one place, so every table
//! rounds the same way.

/// Milliseconds, two decimals.
pub(super) fn ms(value: f64) -> String {
    format!("{value:.2}")
}

/// A whole quantity (bytes, microseconds): no decimals.
pub(super) fn whole(value: f64) -> String {
    let rounded = value.round();
    // `-0` reads as a sign error in a table.
    if rounded == 0.0 {
        "0".to_owned()
    } else {
        format!("{rounded:.0}")
    }
}

/// A mean count (round trips, operations): whole when it is whole, else
/// two decimals (3 runs of 1, 2 and 2 round trips give 1.67).
pub(super) fn count(value: f64) -> String {
    if (value - value.round()).abs() < 0.005 {
        whole(value)
    } else {
        format!("{value:.2}")
    }
}

/// `value` against `base`, as `×1.23`; a dash when there is no base.
pub(super) fn ratio(value: f64, base: f64) -> String {
    let ratio = value / base;
    if base > 0.0 && ratio.is_finite() {
        format!("×{ratio:.2}")
    } else {
        "–".to_owned()
    }
}

/// Text made safe for one table cell: a `|` would split it, a line break
/// would end the row.
pub(super) fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// Appends a Markdown table (`header` then `rows`; every cell already
/// formatted) followed by a blank line.
pub(super) fn table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(header));
    let rule: Vec<String> = header.iter().map(|_| "---".to_owned()).collect();
    out.push_str(&line(&rule));
    for row in rows {
        out.push_str(&line(row));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_the_way_the_tables_promise() {
        assert_eq!(ms(1.0 / 3.0), "0.33");
        assert_eq!(whole(1234.5678), "1235");
        assert_eq!(whole(-0.2), "0");
        assert_eq!(count(3.0), "3");
        assert_eq!(count(5.0 / 3.0), "1.67");
        assert_eq!(ratio(3.0, 2.0), "×1.50");
        assert_eq!(ratio(3.0, 0.0), "–");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
