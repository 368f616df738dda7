//! The terminal table: one row per check (id, section, level, result,
//! detail), then the counts and the verdict.

use super::Report;

/// Longest detail shown in a row; the JSON report keeps it whole.
const DETAIL_WIDTH: usize = 100;

/// The report as a plain-text table.
pub fn render(report: &Report) -> String {
    let width = |f: fn(&crate::conformance::check::Finding) -> usize, title: &str| {
        report
            .checks
            .iter()
            .map(f)
            .max()
            .unwrap_or(0)
            .max(title.chars().count())
    };
    let id_w = width(|c| c.id.chars().count(), "id");
    let section_w = width(|c| c.section.chars().count(), "section");
    let level_w = "SHOULD".len();
    let result_w = "not_applicable".len();
    let mut out = format!(
        "{:id_w$}  {:section_w$}  {:level_w$}  {:result_w$}  detail\n",
        "id", "section", "level", "result"
    );
    for check in &report.checks {
        let detail: String = check.detail.chars().take(DETAIL_WIDTH).collect();
        out.push_str(&format!(
            "{:id_w$}  {:section_w$}  {:level_w$}  {:result_w$}  {detail}\n",
            check.id,
            pad(check.section, section_w),
            check.level.word(),
            check.result.name(),
        ));
    }
    let s = &report.summary;
    out.push_str(&format!(
        "\n{} pass, {} fail, {} not_applicable, {} error: {}\n",
        s.pass,
        s.fail,
        s.not_applicable,
        s.error,
        if report.conforms() {
            "no MUST check failed"
        } else {
            "a MUST check failed"
        }
    ));
    out
}

/// `text` padded to `width` characters (`§` is one character, two bytes:
/// `format!`'s width counts characters too, but this keeps it explicit).
fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_owned();
    let n = text.chars().count();
    padded.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    padded
}
