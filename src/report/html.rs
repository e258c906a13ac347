//! The report as one self-contained HTML page: inline CSS, inline SVG
//! charts drawn with plotters, the tables, and no network request.
//!
//! Owns the charts: disk use over time by dataset, the tier breakdown, and
//! the coverage map (series by days, gaps in red). Its colours, legend and
//! error text are shared with the jobs' equity chart ([`super::equity`]).

use std::collections::{BTreeMap, BTreeSet};

use plotters::prelude::*;

use super::Report;

pub(super) const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];
pub use super::page::esc;

const MIB: f64 = 1048576.0;

pub(super) fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// The series' labels in a framed box, the same on every chart.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)
}

/// Bytes per dataset per day, as lines.
fn growth_chart(r: &Report) -> Result<String, String> {
    let days: Vec<&str> = r
        .growth
        .iter()
        .map(|g| g.day.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut series: BTreeMap<&str, Vec<(i32, f64)>> = BTreeMap::new();
    for g in &r.growth {
        let x = days.iter().position(|d| *d == g.day).unwrap_or(0) as i32;
        series
            .entry(g.dataset.as_str())
            .or_default()
            .push((x, g.bytes as f64 / MIB));
    }
    let ymax = r
        .growth
        .iter()
        .map(|g| g.bytes as f64 / MIB)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = (days.len() as i32).max(2);
        let mut chart = ChartBuilder::on(&root)
            .caption("Disk use over time, by dataset (MiB)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0..n - 1, 0f64..ymax)
            .map_err(err)?;
        let label = |x: &i32| days.get(*x as usize).map(|d| d[5..].to_string()).unwrap_or_default();
        chart
            .configure_mesh()
            .x_labels(days.len().clamp(2, 10))
            .x_label_formatter(&label)
            .y_desc("MiB")
            .draw()
            .map_err(err)?;
        for (i, (name, pts)) in series.into_iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
                .map_err(err)?;
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Stored bytes per dataset, stacked by tier.
fn tier_chart(r: &Report) -> Result<String, String> {
    let datasets: Vec<&str> = r
        .datasets
        .iter()
        .map(|d| d.dataset.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tiers: Vec<&str> = {
        let mut t: Vec<&str> = Vec::new();
        for d in &r.datasets {
            if !t.contains(&d.tier.as_str()) {
                t.push(&d.tier);
            }
        }
        t
    };
    let total = |ds: &str| {
        r.datasets
            .iter()
            .filter(|d| d.dataset == ds)
            .map(|d| d.bytes as f64 / MIB)
            .sum::<f64>()
    };
    let xmax = datasets.iter().map(|d| total(d)).fold(0.0, f64::max).max(0.001) * 1.15;
    let mut svg = String::new();
    {
        let h = 90 + 46 * datasets.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = datasets.len().max(1) as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption("Stored bytes by dataset and tier (MiB)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..xmax, 0f64..n as f64)
            .map_err(err)?;
        // A label sits at each bar's middle (y + 0.5); other ticks stay blank.
        let label = |y: &f64| {
            let f = y - y.floor();
            if (f - 0.5).abs() < 0.01 {
                datasets
                    .get(y.floor() as usize)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(2 * datasets.len().max(1) + 1)
            .y_label_formatter(&label)
            .x_desc("MiB")
            .draw()
            .map_err(err)?;
        for (ti, tier) in tiers.iter().enumerate() {
            let c = COLORS[ti % COLORS.len()];
            let bars = tier_bars(r, &datasets, &tiers, ti, c);
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(*tier)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The bars of tier `ti`, one per dataset, placed after the warmer tiers'.
fn tier_bars(r: &Report, datasets: &[&str], tiers: &[&str], ti: usize, c: RGBColor) -> Vec<Rectangle<(f64, f64)>> {
    let tier = tiers[ti];
    let mut bars = Vec::new();
    for (yi, ds) in datasets.iter().enumerate() {
        let before: f64 = tiers[..ti]
            .iter()
            .flat_map(|t| r.datasets.iter().filter(move |d| d.dataset == *ds && d.tier == *t))
            .map(|d| d.bytes as f64 / MIB)
            .sum();
        let this: f64 = r
            .datasets
            .iter()
            .filter(|d| d.dataset == *ds && d.tier == tier)
            .map(|d| d.bytes as f64 / MIB)
            .sum();
        if this > 0.0 {
            let y = yi as f64;
            bars.push(Rectangle::new(
                [(before, y + 0.2), (before + this, y + 0.8)],
                c.filled(),
            ));
        }
    }
    bars
}

/// Series by days: green where the day is covered, fading with missing
/// buckets, red where a day in the span has no rows at all.
fn coverage_chart(r: &Report) -> Result<String, String> {
    let rows: Vec<(String, String)> = r
        .coverage
        .iter()
        .map(|c| (c.dataset.clone(), c.series.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let days: Vec<String> = r
        .coverage
        .iter()
        .map(|c| c.day.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let days = fill_days(&days);
    let mut svg = String::new();
    {
        let (nx, ny) = (days.len().max(1) as i32, rows.len().max(1) as i32);
        let h = 100 + 26 * ny as u32;
        let root = SVGBackend::with_string(&mut svg, (900, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Coverage: series by day (red = no data that day, orange frame = quality finding)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(300)
            .build_cartesian_2d(0..nx, 0..ny)
            .map_err(err)?;
        let xl = |x: &i32| days.get(*x as usize).map(|d| d[5..].to_string()).unwrap_or_default();
        let yl = |y: &i32| {
            rows.get((ny - 1 - *y) as usize)
                .map(|(d, s)| format!("{d} {}", s.replace("exchange=", "").replace("symbol=", "")))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(days.len().clamp(1, 15))
            .x_label_formatter(&xl)
            .y_labels(rows.len().max(1))
            .y_label_formatter(&yl)
            .draw()
            .map_err(err)?;
        chart.draw_series(coverage_cells(r, &rows, &days)).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One square per series and day: green as covered, red with no rows, an
/// orange frame on a day with a quality finding.
fn coverage_cells(r: &Report, rows: &[(String, String)], days: &[String]) -> Vec<Rectangle<(i32, i32)>> {
    let ny = rows.len().max(1) as i32;
    let covered: BTreeMap<(&str, &str, &str), f64> = r
        .coverage
        .iter()
        .map(|c| ((c.dataset.as_str(), c.series.as_str(), c.day.as_str()), c.covered))
        .collect();
    let flagged: BTreeMap<(&str, &str, &str), u64> = r
        .coverage
        .iter()
        .map(|c| ((c.dataset.as_str(), c.series.as_str(), c.day.as_str()), c.findings))
        .collect();
    let mut cells = Vec::new();
    for (ri, (ds, series)) in rows.iter().enumerate() {
        let y = ny - 1 - ri as i32;
        for (xi, day) in days.iter().enumerate() {
            let v = covered.get(&(ds.as_str(), series.as_str(), day.as_str())).copied();
            let color = match v {
                None => RGBColor(214, 39, 40),
                Some(v) => RGBColor(
                    (230.0 * (1.0 - v)) as u8,
                    (120.0 + 80.0 * v) as u8,
                    (80.0 * (1.0 - v)) as u8,
                ),
            };
            cells.push(Rectangle::new([(xi as i32, y), (xi as i32 + 1, y + 1)], color.filled()));
            cells.push(Rectangle::new(
                [(xi as i32, y), (xi as i32 + 1, y + 1)],
                WHITE.stroke_width(1),
            ));
            // A day holding a quality finding: an orange frame.
            if flagged
                .get(&(ds.as_str(), series.as_str(), day.as_str()))
                .is_some_and(|n| *n > 0)
            {
                cells.push(Rectangle::new(
                    [(xi as i32, y), (xi as i32 + 1, y + 1)],
                    RGBColor(255, 127, 14).stroke_width(3),
                ));
            }
        }
    }
    cells
}

/// Every day from the first to the last, so a day with no data at all shows.
fn fill_days(days: &[String]) -> Vec<String> {
    let parse = |d: &String| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
    let (Some(first), Some(last)) = (days.first().and_then(parse), days.last().and_then(parse)) else {
        return days.to_vec();
    };
    let mut out = Vec::new();
    let mut d = first;
    while d <= last && out.len() < 3660 {
        out.push(d.format("%Y-%m-%d").to_string());
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

/// The whole page, as `mdkeep report --format html` writes it.
pub fn render(r: &Report) -> String {
    super::page::document(&format!("mdkeep report {}", r.generated_at), None, &body(r))
}

/// The page's content: title, charts and tables (the dashboard's `/` puts
/// its header above it).
pub fn body(r: &Report) -> String {
    let chart = |c: Result<String, String>| {
        c.unwrap_or_else(|e| format!("<p class=\"none\">chart unavailable: {}</p>", esc(&e)))
    };
    format!(
        "<h1>mdkeep data-retention report</h1>\n\
         <p class=\"meta\">Generated {gen}; history since {since} ({span}); {gaps} coverage gaps.</p>\n\
         <div class=\"charts\">\n{g}\n{t}\n{c}\n</div>\n{tables}",
        gen = esc(&super::page::short_time(&r.generated_at)),
        since = esc(&super::page::short_time(&r.since_time)),
        span = esc(&r.since),
        gaps = r.gaps.len(),
        g = chart(growth_chart(r)),
        t = chart(tier_chart(r)),
        c = chart(coverage_chart(r)),
        tables = super::render::html_tables(r),
    )
}
