use super::write_plots;
use crate::compare::sample;
use crate::compare::variant::{Scenario, Variant};

#[test]
fn every_plot_is_an_svg_naming_every_variant_and_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_plots(&sample::report(), dir.path()).unwrap();
    assert_eq!(written.len(), 5);
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
        if !path.ends_with("steady-state-latency.svg") {
            for scenario in Scenario::ALL {
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
