use super::write_plots;
use crate::compare::sample;
use crate::compare::variant::{Scenario, Variant};

#[test]
fn every_plot_is_an_svg_naming_every_variant_and_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_plots(&sample::report(), dir.path()).unwrap();
    assert_eq!(written.len(), 6);
    for path in &written {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", path.display());
        assert!(svg.trim_end().ends_with("</svg>"), "{}", path.display());
        for variant in Variant::GNAPD {
            assert!(
                svg.contains(variant.id()),
                "{} lacks {variant:?}",
                path.display()
            );
        }
        let name = path.file_name().unwrap().to_str().unwrap();
        if !name.starts_with("steady-state") {
            // The steady state has plots of its own (one call), not a
            // group here that would dwarf the others.
            assert!(!svg.contains(Scenario::SteadyState.id()), "{name}");
            for scenario in Scenario::ALL
                .into_iter()
                .filter(|s| *s != Scenario::SteadyState)
            {
                assert!(
                    svg.contains(scenario.id()),
                    "{} lacks {}",
                    path.display(),
                    scenario.id()
                );
            }
        }
    }
}

/// A scenario that does not apply leaves a visible mark, not a missing bar
/// that reads as zero.
#[test]
fn a_scenario_that_does_not_apply_is_marked_in_the_plots() {
    let dir = tempfile::tempdir().unwrap();
    write_plots(&sample::report(), dir.path()).unwrap();
    let svg = std::fs::read_to_string(dir.path().join("round-trips.svg")).unwrap();
    assert_eq!(
        svg.lines().filter(|l| l.trim() == "n/a").count(),
        1,
        "one n/a cell in the sample"
    );
}
