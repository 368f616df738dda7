//! The JSON report (schema version 1): `schema_version`, `target`,
//! `started_at`, `checks` (each `id`, `title`, `section`, `level`,
//! `result`, `detail`) and `summary` (`pass`, `fail`, `not_applicable`,
//! `error`).

use super::Report;

/// The report as pretty-printed JSON.
pub fn render(report: &Report) -> String {
    // Serializing plain strings and numbers cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::check::{Check, Finding, Level, Verdict};

    #[test]
    fn the_json_report_has_the_schema_members_and_counts() {
        let check = Check {
            id: "grant-x",
            section: "RFC 9635 §2",
            level: Level::Must,
            title: "t",
        };
        let report = Report::new(
            "https://as.example/gnap",
            "2026-01-01T00:00:00Z".into(),
            vec![
                Finding::new(&check, Verdict::fail("d")),
                Finding::new(&check, Verdict::not_applicable("n")),
            ],
        );
        let value: serde_json::Value = serde_json::from_str(&render(&report)).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["checks"][0]["result"], "fail");
        assert_eq!(value["checks"][0]["level"], "MUST");
        assert_eq!(value["checks"][1]["result"], "not_applicable");
        assert_eq!(
            value["summary"],
            serde_json::json!({"pass": 0, "fail": 1, "not_applicable": 1, "error": 0})
        );
        let members: Vec<&String> = value["checks"][0].as_object().unwrap().keys().collect();
        assert_eq!(
            members,
            ["id", "title", "section", "level", "result", "detail"]
        );
        assert!(!report.conforms());
    }
}
