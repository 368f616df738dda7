//! The JUnit XML report: one `testsuite`, one `testcase` per check with
//! the section as its `classname`; a failed check carries `failure`, a
//! `not_applicable` one `skipped`, one the suite could not run `error`.

use super::Report;
use crate::conformance::check::Outcome;

/// The report as JUnit XML.
pub fn render(report: &Report) -> String {
    let s = &report.summary;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuite name=\"gnapd conformance {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"{}\" timestamp=\"{}\">\n",
        escape(&report.target),
        report.checks.len(),
        s.fail,
        s.not_applicable,
        s.error,
        escape(&report.started_at),
    ));
    for check in &report.checks {
        let opening = format!(
            "  <testcase classname=\"{}\" name=\"{} ({})\"",
            escape(check.section),
            escape(check.id),
            check.level.word()
        );
        let message = escape(&check.detail);
        match check.result {
            Outcome::Pass => xml.push_str(&format!("{opening}/>\n")),
            Outcome::Fail => xml.push_str(&format!(
                "{opening}>\n    <failure message=\"{message}\">{}</failure>\n  </testcase>\n",
                escape(check.title)
            )),
            Outcome::NotApplicable => xml.push_str(&format!(
                "{opening}>\n    <skipped message=\"{message}\"/>\n  </testcase>\n"
            )),
            Outcome::Error => xml.push_str(&format!(
                "{opening}>\n    <error message=\"{message}\"/>\n  </testcase>\n"
            )),
        }
    }
    xml.push_str("</testsuite>\n");
    xml
}

/// Text made safe inside XML attributes and elements; characters XML 1.0
/// cannot carry become spaces.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::check::{Check, Finding, Level, Verdict};

    #[test]
    fn junit_marks_failures_skips_and_errors_and_escapes_details() {
        let check = Check {
            id: "error-shape",
            section: "RFC 9635 §3.6",
            level: Level::Must,
            title: "t",
        };
        let report = crate::conformance::report::Report::new(
            "http://a/<x>",
            "2026-01-01T00:00:00Z".into(),
            vec![
                Finding::new(&check, Verdict::pass("ok")),
                Finding::new(&check, Verdict::fail("got \"<b>\" & more")),
                Finding::new(&check, Verdict::not_applicable("n")),
                Finding::new(&check, Verdict::error("e")),
            ],
        );
        let xml = render(&report);
        assert!(xml.contains("tests=\"4\" failures=\"1\" skipped=\"1\" errors=\"1\""));
        assert!(xml.contains("got &quot;&lt;b&gt;&quot; &amp; more"));
        assert!(xml.contains("<skipped message=\"n\"/>"));
        assert!(xml.contains("<error message=\"e\"/>"));
        assert!(xml.contains("classname=\"RFC 9635 §3.6\""));
        assert!(!xml.contains("<x>"));
    }
}
