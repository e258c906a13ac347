//! The equity chart of `/jobs/<id>` and `/jobs/compare`: one or more
//! equity series over time, as inline SVG drawn with plotters, in the
//! report's colours and legend ([`super::html`]).
//!
//! Owns drawing only; the series come downsampled from
//! [`crate::jobs::glance::read_equity`].

use plotters::prelude::*;

use super::html::{err, legend, COLORS};

/// One line of the chart: its label and its (ns since the epoch, equity) points.
pub struct Curve<'a> {
    pub label: String,
    pub points: &'a [(i64, f64)],
}

/// `ns` as `2024-01-02 03:04` (UTC), for an axis.
fn axis_time(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The x and y ranges over every curve, never empty.
fn bounds(curves: &[Curve]) -> ((f64, f64), (f64, f64)) {
    let pts = curves.iter().flat_map(|c| c.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(t, v) in pts {
        let x = t as f64 / 1e9;
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    if x1 - x0 < 1.0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(y1.abs() * 1e-6).max(1e-9);
    ((x0, x1), (y0 - pad, y1 + pad))
}

/// The curves on one chart, as an SVG document; an error names what failed.
pub fn chart(title: &str, curves: &[Curve]) -> Result<String, String> {
    let ((x0, x1), (y0, y1)) = bounds(curves);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 340)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let xl = |x: &f64| axis_time(*x);
        let yl = |y: &f64| format!("{y:.2}");
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&xl)
            .y_label_formatter(&yl)
            .y_desc("equity")
            .draw()
            .map_err(err)?;
        for (i, c) in curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = c.points.iter().map(|&(t, v)| (t as f64 / 1e9, v)).collect();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                .map_err(err)?
                .label(c.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_with_its_labels() {
        let pts = [(1_704_153_600_000_000_000, 100.0), (1_704_157_200_000_000_000, 110.0)];
        let svg = chart(
            "Equity",
            &[Curve {
                label: "job 1".into(),
                points: &pts,
            }],
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("job 1"), "{svg}");
        // A single point or none still draws.
        assert!(chart("Equity", &[]).is_ok());
    }
}
