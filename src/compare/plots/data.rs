//! What the plots show, read from the report: a bar per scenario total per
//! variant, or per variant for one step of one scenario.

use super::bars::{Bar, Series};
use crate::compare::report::{Report, ScenarioReport, StepReport};
use crate::compare::variant::Scenario;

/// Whether a scenario's totals are plotted beside the others: the steady
/// state's are `--calls` calls, tens of times any other scenario's, and
/// would flatten every other bar; its own plots show one call.
fn in_totals(scenario: &ScenarioReport) -> bool {
    scenario.id != Scenario::SteadyState.id()
}

/// The ids of the scenarios whose totals are plotted, in report order.
pub(super) fn scenario_ids(report: &Report) -> Vec<String> {
    report
        .scenarios
        .iter()
        .filter(|s| in_totals(s))
        .map(|s| s.id.clone())
        .collect()
}

/// One series per variant: `bar` of each scenario's total (`None` where
/// the scenario does not apply or produced no total).
pub(super) fn totals(report: &Report, bar: impl Fn(&StepReport) -> Bar) -> Vec<Series> {
    report
        .variants
        .iter()
        .map(|variant| Series {
            name: variant.id.clone(),
            bars: report
                .scenarios
                .iter()
                .filter(|s| in_totals(s))
                .map(|scenario| total(scenario, &variant.id).map(&bar))
                .collect(),
        })
        .collect()
}

fn total<'r>(scenario: &'r ScenarioReport, variant: &str) -> Option<&'r StepReport> {
    scenario
        .results
        .iter()
        .find(|r| r.variant == variant && r.not_applicable.is_none())
        .and_then(|r| r.total.as_ref())
}

/// What a group of [`step`] shows.
pub(super) type Figure = fn(&StepReport) -> Bar;

/// One series per variant with one bar per figure: each of `figures` of
/// the step `step` of scenario `scenario`.
pub(super) fn step(report: &Report, scenario: &str, step: &str, figures: &[Figure]) -> Vec<Series> {
    let scenario = report.scenarios.iter().find(|s| s.id == scenario);
    report
        .variants
        .iter()
        .map(|variant| {
            let found = scenario.and_then(|s| {
                s.results
                    .iter()
                    .find(|r| r.variant == variant.id && r.not_applicable.is_none())
                    .and_then(|r| r.steps.iter().find(|x| x.name == step))
            });
            Series {
                name: variant.id.clone(),
                bars: figures.iter().map(|figure| found.map(figure)).collect(),
            }
        })
        .collect()
}

/// A bar of `value` alone.
pub(super) fn plain(value: f64) -> Bar {
    Bar {
        value,
        part: None,
        whiskers: None,
    }
}

/// A latency bar: p50 with p95/p99 whiskers.
pub(super) fn latency(step: &StepReport) -> Bar {
    Bar {
        value: step.latency_ms.p50,
        part: None,
        whiskers: Some((step.latency_ms.p95, step.latency_ms.p99)),
    }
}
