//! One drawing, used by every plot: grouped bars (groups along x, one bar
//! per variant in each), an optional darker part at the bottom of a bar
//! and optional p95/p99 whiskers, with the legend beside the chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar's figures.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bar {
    /// The bar's height.
    pub value: f64,
    /// A part of `value` drawn darker from the bottom (front-channel round
    /// trips, bytes sent).
    pub part: Option<f64>,
    /// p95 and p99 whisker ends.
    pub whiskers: Option<(f64, f64)>,
}

/// One variant's bars, one per group; `None` where it does not apply or
/// has no figure (drawn as "n/a").
pub(super) struct Series {
    pub name: String,
    pub bars: Vec<Option<Bar>>,
}

/// What one chart shows.
pub(super) struct Chart {
    pub title: String,
    pub y_label: String,
    /// The groups' labels along x.
    pub groups: Vec<String>,
    pub series: Vec<Series>,
    /// One short line under the legend (what the darker part or the
    /// whiskers mean).
    pub note: Option<String>,
}

/// Width of the legend column, pixels.
const LEGEND: u32 = 250;

/// Distinct colours, in variant order: blues for the two GNAP variants
/// first in report order, warm and other hues for the OAuth ones.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(23, 190, 207),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(44, 160, 44),
];

fn colour(index: usize) -> RGBColor {
    COLOURS[index % COLOURS.len()]
}

fn darker(colour: RGBColor) -> RGBColor {
    let dim = |c: u8| (f64::from(c) * 0.55).round() as u8;
    RGBColor(dim(colour.0), dim(colour.1), dim(colour.2))
}

/// A y-axis tick: no decimals once the axis goes past 100.
fn tick(value: f64, max: f64) -> String {
    if max >= 100.0 {
        format!("{value:.0}")
    } else if max >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Draws `chart` on `area` (the legend takes its right-hand column).
pub(super) fn draw(area: &DrawingArea<SVGBackend<'_>, Shift>, chart: &Chart) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| format!("drawing {}: {e}", chart.title);
    let (width, _) = area.dim_in_pixel();
    let (plot, legend) = area.split_horizontally(width.saturating_sub(LEGEND));

    let groups = chart.groups.len().max(1);
    let top = chart
        .series
        .iter()
        .flat_map(|s| s.bars.iter().flatten())
        .map(|b| {
            b.whiskers
                .map_or(b.value, |(p95, p99)| b.value.max(p95).max(p99))
        })
        .fold(0.0_f64, f64::max);
    let y_max = if top > 0.0 && top.is_finite() {
        top * 1.12
    } else {
        1.0
    };

    let mut ctx = ChartBuilder::on(&plot)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(34)
        .y_label_area_size(66)
        .build_cartesian_2d(0.0..groups as f64, 0.0..y_max)
        .map_err(err)?;
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(chart.y_label.as_str())
        .y_label_formatter(&|v| tick(*v, y_max))
        .draw()
        .map_err(err)?;

    // Bars take 80% of a group, spread evenly over the variants.
    let width = 0.8 / chart.series.len().max(1) as f64;
    let label =
        TextStyle::from(("sans-serif", 10).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (s, series) in chart.series.iter().enumerate() {
        let fill = colour(s);
        for (g, bar) in series.bars.iter().enumerate() {
            let x0 = g as f64 + 0.1 + s as f64 * width;
            let (x1, centre) = (x0 + width * 0.9, x0 + width * 0.45);
            let Some(bar) = bar else {
                ctx.draw_series([
                    EmptyElement::at((centre, 0.0)) + Text::new("n/a", (0, -2), label.clone())
                ])
                .map_err(err)?;
                continue;
            };
            ctx.draw_series([Rectangle::new([(x0, 0.0), (x1, bar.value)], fill.filled())])
                .map_err(err)?;
            if let Some(part) = bar.part.filter(|p| *p > 0.0) {
                ctx.draw_series([Rectangle::new(
                    [(x0, 0.0), (x1, part.min(bar.value))],
                    darker(fill).filled(),
                )])
                .map_err(err)?;
            }
            if let Some((p95, p99)) = bar.whiskers {
                let ends = [
                    (x0 + width * 0.2, x1 - width * 0.2),
                    (x0 + width * 0.05, x1 - width * 0.05),
                ];
                ctx.draw_series([
                    PathElement::new(
                        vec![(centre, bar.value), (centre, p99.max(p95))],
                        BLACK.stroke_width(1),
                    ),
                    PathElement::new(
                        vec![(ends[0].0, p95), (ends[0].1, p95)],
                        BLACK.stroke_width(1),
                    ),
                    PathElement::new(
                        vec![(ends[1].0, p99), (ends[1].1, p99)],
                        BLACK.stroke_width(1),
                    ),
                ])
                .map_err(err)?;
            }
        }
    }
    let group_label =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    ctx.draw_series(chart.groups.iter().enumerate().map(|(g, name)| {
        EmptyElement::at((g as f64 + 0.5, 0.0))
            + Text::new(name.clone(), (0, 8), group_label.clone())
    }))
    .map_err(err)?;

    let entry = ("sans-serif", 14).into_font();
    for (s, series) in chart.series.iter().enumerate() {
        let y = 60 + 24 * s as i32;
        legend
            .draw(&Rectangle::new([(8, y), (24, y + 14)], colour(s).filled()))
            .map_err(err)?;
        legend
            .draw(&Text::new(series.name.clone(), (32, y), entry.clone()))
            .map_err(err)?;
    }
    if let Some(note) = &chart.note {
        let y = 72 + 24 * chart.series.len() as i32;
        legend
            .draw(&Text::new(
                note.clone(),
                (8, y),
                ("sans-serif", 12).into_font(),
            ))
            .map_err(err)?;
    }
    Ok(())
}
