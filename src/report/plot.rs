//! PNG charts drawn with plotters' bitmap backend and the embedded DejaVu Sans font, so
//! that they need no system fonts.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle, HSLColor};

use crate::error::{Error, Result};

/// Size of a line chart.
const LINE_SIZE: (u32, u32) = (900, 420);
/// Size of a 2-D map.
const MAP_SIZE: (u32, u32) = (900, 720);
/// Classes named in a map's legend; more would hide the points.
const LEGEND_CLASSES: usize = 20;
/// Matplotlib's `tab10`, the first ten class colours.
const TAB10: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// One line of a chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw a dot at every point (for sparse series such as per-epoch values).
    pub markers: bool,
}

/// The colour of class (or series) `i`: `tab10`, then hues spaced by the golden angle.
pub fn colour(i: usize) -> RGBColor {
    match TAB10.get(i) {
        Some(&(r, g, b)) => RGBColor(r, g, b),
        None => {
            let (r, g, b) = HSLColor((i as f64 * 0.618_034) % 1.0, 0.65, 0.45).rgb();
            RGBColor(r, g, b)
        }
    }
}

/// The colour as CSS `#rrggbb`.
pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Registers the embedded font as `sans-serif` once.
fn fonts(path: &Path) -> Result<()> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(fail(path, "the embedded font cannot be read"))
    }
}

fn fail(path: &Path, msg: impl ToString) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// `[min, max]` of `values`, widened by 5% of the span; a single value by 5% of itself
/// (at least 0.05), so that one point does not sit on a 0.999–1.001 axis.
fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = match hi - lo {
        span if span > 1e-12 => span * 0.05,
        _ => lo.abs().max(1.0) * 0.05,
    };
    (lo - pad, hi + pad)
}

/// A line chart of `series` written to `path`.
pub fn lines(path: &Path, title: &str, x: &str, y: &str, series: &[Series]) -> Result<()> {
    fonts(path)?;
    let err = |e: &dyn std::fmt::Display| fail(path, e);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = range(all().map(|p| p.0));
    let (y0, y1) = range(all().map(|p| p.1));
    let root = BitMapBackend::new(path, LINE_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(x)
        .y_desc(y)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        if s.markers {
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(|e| err(&e))?;
        }
        // a lone point (a one-epoch run's kNN) says its value
        if let [p] = s.points.as_slice() {
            let label = format!("  {:.4}", p.1);
            chart
                .draw_series(std::iter::once(Text::new(label, *p, ("sans-serif", 16))))
                .map_err(|e| err(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// A scatter plot of the 2-D points `xy` (`[n, 2]` row-major), one colour per label, with
/// a legend of `class_names`.
pub fn map(
    path: &Path,
    title: &str,
    xy: &[f32],
    labels: &[u32],
    class_names: &[String],
) -> Result<()> {
    fonts(path)?;
    let err = |e: &dyn std::fmt::Display| fail(path, e);
    let pts: Vec<(f64, f64)> = xy
        .chunks_exact(2)
        .map(|p| (f64::from(p[0]), f64::from(p[1])))
        .collect();
    let (x0, x1) = range(pts.iter().map(|p| p.0));
    let (y0, y1) = range(pts.iter().map(|p| p.1));
    let root = BitMapBackend::new(path, MAP_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| err(&e))?;
    for (c, name) in class_names.iter().enumerate() {
        let col = colour(c);
        let members = pts
            .iter()
            .zip(labels)
            .filter(|(_, &l)| l as usize == c)
            .map(|(&p, _)| Circle::new(p, 3, col.mix(0.75).filled()));
        let drawn = chart.draw_series(members).map_err(|e| err(&e))?;
        if c < LEGEND_CLASSES {
            drawn
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, col.filled()));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}
