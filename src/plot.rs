//! PNG pictures for examples and tools: line charts (training curves), scatter plots coloured
//! by class, heat maps over a plane, and matrix images (attention masks).
//!
//! Rendering uses `plotters`' bitmap backend with an embedded DejaVu Sans Mono font, so it
//! works on machines with no fonts or system libraries installed. Every function returns a
//! [`GraphError::Io`] naming the file when drawing or writing fails.

use crate::GraphError;
use ndarray::Array2;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;

const FONT: &str = "flumen-mono";
static FONT_BYTES: &[u8] = include_bytes!("../assets/fonts/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

/// Default picture size in pixels.
pub const SIZE: (u32, u32) = (800, 500);

fn ensure_font() {
    REGISTER.call_once(|| {
        // The embedded font is a valid TTF; a failure here would only lose the labels.
        let _ = register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: format!("plot: {e}"),
    }
}

/// One named curve of a [`line_chart`].
#[derive(Clone, Debug)]
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// `(x, y)` points in drawing order.
    pub points: &'a [(f64, f64)],
}

/// A qualitative palette for series and classes.
pub fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

fn bounds<'a>(points: impl Iterator<Item = &'a (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = |a: f64, b: f64| {
        let d = if b > a {
            (b - a) * 0.05
        } else {
            a.abs().max(1.0) * 0.05
        };
        (a - d, b + d)
    };
    (pad(x0, x1), pad(y0, y1))
}

/// Draws curves into a PNG (training loss, reward, accuracy…). Non-finite points are skipped.
pub fn line_chart(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
) -> crate::Result<()> {
    ensure_font();
    let path = path.as_ref();
    let ((x0, x1), (y0, y1)) = bounds(series.iter().flat_map(|s| s.points.iter()));
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| io_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| io_err(path, e))?;
    for (i, s) in series.iter().enumerate() {
        let color = palette(i);
        let pts = s
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| io_err(path, e))?
            .label(s.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if series.len() > 1 || series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| io_err(path, e))?;
    }
    root.present().map_err(|e| io_err(path, e))
}

/// Draws points coloured by class (`classes[i]` picks point `i`'s colour) into a PNG.
pub fn scatter(
    path: impl AsRef<Path>,
    title: &str,
    points: &[(f64, f64)],
    classes: &[usize],
) -> crate::Result<()> {
    ensure_font();
    let path = path.as_ref();
    if points.len() != classes.len() {
        return Err(GraphError::Invalid(format!(
            "plot::scatter: {} points but {} class labels",
            points.len(),
            classes.len()
        )));
    }
    let ((x0, x1), (y0, y1)) = bounds(points.iter());
    let root = BitMapBackend::new(path, (600, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| io_err(path, e))?;
    chart
        .configure_mesh()
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| io_err(path, e))?;
    chart
        .draw_series(
            points
                .iter()
                .zip(classes)
                .map(|(&(x, y), &c)| Circle::new((x, y), 3, palette(c).filled())),
        )
        .map_err(|e| io_err(path, e))?;
    root.present().map_err(|e| io_err(path, e))
}

/// Maps `t` in `[0, 1]` to a blue → yellow colour ramp (viridis-like).
pub fn ramp(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let f = t * (stops.len() - 1) as f64;
    let i = (f.floor() as usize).min(stops.len() - 2);
    let u = f - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * u).round() as u8;
    RGBColor(
        mix(stops[i].0, stops[i + 1].0),
        mix(stops[i].1, stops[i + 1].1),
        mix(stops[i].2, stops[i + 1].2),
    )
}

/// Draws `values` as a heat map over the plane `x_range × y_range` into a PNG: column `j`
/// spans x, row `i` spans y with row 0 at the bottom. Colours are scaled to the finite
/// minimum and maximum of `values`.
pub fn heatmap(
    path: impl AsRef<Path>,
    title: &str,
    values: &Array2<f64>,
    x_range: (f64, f64),
    y_range: (f64, f64),
) -> crate::Result<()> {
    ensure_font();
    let path = path.as_ref();
    let (rows, cols) = values.dim();
    let (lo, hi) = finite_range(values);
    let root = BitMapBackend::new(path, (640, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}  [{lo:.3}, {hi:.3}]"), (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
        .map_err(|e| io_err(path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .label_style((FONT, 14))
        .draw()
        .map_err(|e| io_err(path, e))?;
    let dx = (x_range.1 - x_range.0) / cols.max(1) as f64;
    let dy = (y_range.1 - y_range.0) / rows.max(1) as f64;
    let scale = if hi > lo { hi - lo } else { 1.0 };
    chart
        .draw_series(values.indexed_iter().map(|((i, j), &v)| {
            let x = x_range.0 + j as f64 * dx;
            let y = y_range.0 + i as f64 * dy;
            Rectangle::new([(x, y), (x + dx, y + dy)], ramp((v - lo) / scale).filled())
        }))
        .map_err(|e| io_err(path, e))?;
    root.present().map_err(|e| io_err(path, e))
}

/// Draws a matrix as an image (row 0 at the top, like a printed matrix) with `pixels` per
/// cell: an attention mask, a weight matrix. Values are scaled to their finite range.
pub fn matrix_image(
    path: impl AsRef<Path>,
    values: &Array2<f64>,
    pixels: u32,
) -> crate::Result<()> {
    let path = path.as_ref();
    let (rows, cols) = values.dim();
    let pixels = pixels.max(1);
    let (w, h) = (cols as u32 * pixels, rows as u32 * pixels);
    if w == 0 || h == 0 || w > 16384 || h > 16384 {
        return Err(GraphError::Invalid(format!(
            "plot::matrix_image: a {rows}x{cols} matrix at {pixels} px per cell gives a {w}x{h} image; expected 1..=16384 pixels per side"
        )));
    }
    let (lo, hi) = finite_range(values);
    let scale = if hi > lo { hi - lo } else { 1.0 };
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| io_err(path, e))?;
    for ((i, j), &v) in values.indexed_iter() {
        let (x, y) = (j as i32 * pixels as i32, i as i32 * pixels as i32);
        root.draw(&Rectangle::new(
            [(x, y), (x + pixels as i32, y + pixels as i32)],
            ramp((v - lo) / scale).filled(),
        ))
        .map_err(|e| io_err(path, e))?;
    }
    root.present().map_err(|e| io_err(path, e))
}

fn finite_range(values: &Array2<f64>) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for &v in values.iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_ok(path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.len() > 1000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn every_kind_of_plot_writes_a_png() {
        let dir = std::env::temp_dir().join(format!("flumen-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a: Vec<(f64, f64)> = (0..50)
            .map(|i| (i as f64, (i as f64 * 0.2).sin()))
            .collect();
        let b: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, f64::NAN)).collect();
        let p = dir.join("line.png");
        line_chart(
            &p,
            "loss",
            "step",
            "value",
            &[
                Series {
                    label: "sin",
                    points: &a,
                },
                Series {
                    label: "nan",
                    points: &b,
                },
            ],
        )
        .unwrap();
        png_ok(&p);
        let p = dir.join("scatter.png");
        scatter(
            &p,
            "classes",
            &a,
            &(0..50).map(|i| i % 3).collect::<Vec<_>>(),
        )
        .unwrap();
        png_ok(&p);
        assert!(scatter(&p, "bad", &a, &[0]).is_err());
        let grid = Array2::from_shape_fn((20, 30), |(i, j)| (i * j) as f64);
        let p = dir.join("heat.png");
        heatmap(&p, "heat", &grid, (-1.0, 1.0), (-1.0, 1.0)).unwrap();
        png_ok(&p);
        let p = dir.join("mask.png");
        matrix_image(&p, &grid, 4).unwrap();
        png_ok(&p);
        assert!(matrix_image(&p, &Array2::zeros((0, 3)), 4).is_err());
        let err = line_chart("/nonexistent-dir/x.png", "t", "x", "y", &[]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x.png"), "{err}");
        if std::env::var_os("FLUMEN_KEEP_PLOTS").is_none() {
            std::fs::remove_dir_all(&dir).ok();
        }
    }
}
