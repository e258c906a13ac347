//! The jobs' pages: the queue with each job's metrics (`/jobs`, sortable by
//! a metric through `?sort=`), one job (`/jobs/<id>`) and a comparison of
//! runs (`/jobs/compare?ids=1,2`).
//!
//! Owns their markup, in the shell and tables of [`super::page`] and with
//! the equity chart of [`super::equity`]. Every figure comes from
//! [`crate::jobs::glance`]; nothing here reads a file.

use std::fmt::Write;

use serde_json::Value;

use super::equity::{self, Curve};
use super::page::{esc, finding_rows, section, short_time, Cell};
use crate::config::units::human_bytes;
use crate::jobs::glance::{Comparison, Detail, Equity, Metrics, Summary, SORT_KEYS};

/// A fraction as a percentage, `-` when unknown.
pub fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.2} %", v * 100.0)).unwrap_or_else(|| "-".into())
}

/// A plain number with two decimals, `-` when unknown.
fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into())
}

/// Seconds as `1h 02m 03s`, `4m 05s` or `6.2s`; `-` when unknown.
pub fn duration(secs: Option<f64>) -> String {
    let Some(s) = secs else { return "-".into() };
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let s = s.round() as u64;
    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m:02}m {sec:02}s")
    } else {
        format!("{m}m {sec:02}s")
    }
}

/// The first 12 hex digits of a data fingerprint, then the lake snapshot
/// the export read (`@7`) when there is one.
pub fn short_fp(fp: Option<&str>, snapshot: Option<i64>) -> String {
    let mut out: String = fp.map(|f| f.chars().take(12).collect()).unwrap_or_default();
    if let Some(n) = snapshot {
        let _ = write!(out, " @{n}");
    }
    out
}

/// The links that order the list, the current one in bold.
fn sort_links(current: Option<(&str, bool)>) -> String {
    let mut out = String::from("<p class=\"meta\">Sort by:");
    for key in SORT_KEYS {
        for (asc, arrow) in [(false, "↓"), (true, "↑")] {
            let href = if asc {
                format!("jobs?sort={key}&amp;order=asc")
            } else {
                format!("jobs?sort={key}")
            };
            let text = format!("{} {arrow}", key.replace('_', " "));
            if current == Some((key, asc)) {
                let _ = write!(out, " <strong>{text}</strong>");
            } else {
                let _ = write!(out, " <a href=\"{href}\">{text}</a>");
            }
        }
    }
    out.push_str(" · compare runs: <code>jobs/compare?ids=1,2</code></p>\n");
    out
}

/// The queue (newest first, or as `sort` orders it) with each job's metrics.
pub fn list(items: &[Summary], sort: Option<(&str, bool)>) -> String {
    let rows: Vec<Vec<Cell>> = items
        .iter()
        .map(|s| {
            let v = &s.view;
            let m = &s.metrics;
            let result = if v.finished_at.is_some() {
                Cell::Link {
                    text: "result.json".into(),
                    href: format!("jobs/{}/result.json", v.id),
                }
            } else {
                Cell::from("")
            };
            vec![
                Cell::Link {
                    text: v.id.to_string(),
                    href: format!("jobs/{}", v.id),
                },
                v.name.clone().into(),
                v.framework.clone().into(),
                v.state.into(),
                pct(m.total_return).into(),
                pct(m.max_drawdown).into(),
                m.trades.map(|t| t.to_string()).unwrap_or_else(|| "-".into()).into(),
                duration(s.duration_seconds).into(),
                short_fp(v.data_fingerprint.as_deref(), v.data_snapshot).into(),
                memory(v.peak_memory_bytes, v.reserved_memory_bytes).into(),
                v.finished_at.as_deref().map(short_time).unwrap_or_default().into(),
                v.exit_code.map(|c| c.to_string()).unwrap_or_default().into(),
                Cell::Link {
                    text: "log".into(),
                    href: format!("jobs/{}/log", v.id),
                },
                result,
            ]
        })
        .collect();
    let mut out = String::from("<h1>Jobs</h1>\n");
    out.push_str(&sort_links(sort));
    section(
        &mut out,
        &format!("Queue ({})", items.len()),
        &[
            "id",
            "name",
            "framework",
            "state",
            "total return",
            "max drawdown",
            "trades",
            "duration",
            "data",
            "peak / reserved",
            "finished",
            "exit",
            "log",
            "result",
        ],
        &rows,
    );
    out
}

/// `peak / reserved (n %)`.
fn memory(peak: Option<u64>, reserved: u64) -> String {
    match peak {
        Some(p) if reserved > 0 => format!(
            "{} / {} ({:.0} %)",
            human_bytes(p),
            human_bytes(reserved),
            p as f64 * 100.0 / reserved as f64
        ),
        Some(p) => human_bytes(p),
        None => format!("- / {}", human_bytes(reserved)),
    }
}

/// A metric's value as a cell: numbers with up to 6 decimals, objects as JSON.
fn metric_text(v: &Value) -> String {
    match v {
        Value::String(s) => short_time(s),
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .map(|f| {
                let t = format!("{f:.6}");
                t.trim_end_matches('0').trim_end_matches('.').to_string()
            })
            .unwrap_or_default(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The equity chart, or what stands in for it.
fn equity_block(title: &str, curves: &[Curve]) -> String {
    if curves.is_empty() {
        return "<p class=\"none\">No equity curve: no <code>artifacts/equity.parquet</code>.</p>\n".into();
    }
    match equity::chart(title, curves) {
        Ok(svg) => format!("<div class=\"charts\">{svg}</div>\n"),
        Err(e) => format!("<p class=\"none\">chart unavailable: {}</p>\n", esc(&e)),
    }
}

/// `/jobs/<id>`: the spec, every metric, the data read and its findings,
/// memory, the equity curve and the log tails.
pub fn detail(d: &Detail, log: &str) -> String {
    let j = &d.job;
    let v = j.view();
    let mut out = format!(
        "<h1>Job {} · {}</h1>\n<p class=\"meta\">{} · {} · attempt {} of {} · exit code {} · \
         <a href=\"{id}/log\">log</a> · <a href=\"{id}/result.json\">result.json</a></p>\n",
        v.id,
        esc(&v.name),
        esc(&v.framework),
        esc(v.state),
        v.attempts,
        v.retries + 1,
        v.exit_code.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        id = v.id,
    );
    if let Some(m) = &v.message {
        let _ = writeln!(out, "<p>{}</p>", esc(m));
    }
    let run: Vec<Vec<Cell>> = vec![
        vec!["queued".into(), short_time(&v.queued_at).into()],
        vec![
            "started".into(),
            v.started_at.as_deref().map(short_time).unwrap_or_default().into(),
        ],
        vec![
            "finished".into(),
            v.finished_at.as_deref().map(short_time).unwrap_or_default().into(),
        ],
        vec![
            "duration".into(),
            duration(crate::jobs::glance::duration_seconds(j)).into(),
        ],
        vec![
            "memory (peak / reserved)".into(),
            memory(v.peak_memory_bytes, v.reserved_memory_bytes).into(),
        ],
        vec![
            "limit".into(),
            v.limit_mechanism.clone().unwrap_or_else(|| "-".into()).into(),
        ],
    ];
    section(&mut out, "Run", &["", ""], &run);
    out.push_str("<h2>Equity</h2>\n");
    out.push_str(&match &d.equity {
        Ok(Some(e)) => equity_block(
            &format!("Equity of job {} ({} rows)", v.id, e.rows),
            &[Curve {
                label: v.name.clone(),
                points: &e.points,
            }],
        ),
        Ok(None) => equity_block("", &[]),
        Err(why) => format!("<p class=\"bad\">equity.parquet cannot be read: {}</p>\n", esc(why)),
    });
    out.push_str(&metrics_section(d.result.as_ref()));
    out.push_str(&data_section(d));
    let spec = serde_json::to_string_pretty(&j.spec).unwrap_or_default();
    let _ = write!(out, "<h2>Spec</h2>\n<pre>{}</pre>\n", esc(&spec));
    let _ = write!(out, "<h2>Log tails</h2>\n<pre>{}</pre>\n", esc(log));
    out
}

/// Every metric of `result.json`, one row each (nested values as JSON).
fn metrics_section(result: Option<&Value>) -> String {
    let mut out = String::new();
    let rows: Vec<Vec<Cell>> = result
        .and_then(|r| r["metrics"].as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| vec![k.clone().into(), metric_text(v).into()])
                .collect()
        })
        .unwrap_or_default();
    section(
        &mut out,
        &format!("Metrics ({})", rows.len()),
        &["metric", "value"],
        &rows,
    );
    out
}

/// The data the job read (its manifest) and the findings on those partitions.
fn data_section(d: &Detail) -> String {
    let mut out = String::new();
    let Some(m) = &d.manifest else {
        out.push_str("<h2>Data read</h2>\n<p class=\"none\">No data manifest: the spec has no [data], or its export has not run.</p>\n");
        return out;
    };
    let rows: Vec<Vec<Cell>> = m
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.clone().into(),
                p.rows.to_string().into(),
                short_time(&p.first).into(),
                short_time(&p.last).into(),
            ]
        })
        .collect();
    section(
        &mut out,
        &format!(
            "Data read: {}, {} rows, fingerprint {} ({} partitions)",
            m.dataset,
            m.rows,
            m.fingerprint,
            m.partitions.len()
        ),
        &["partition", "rows", "first", "last"],
        &rows,
    );
    let findings: Vec<_> = d.findings.iter().collect();
    let mut rows = finding_rows(&findings);
    for (row, f) in rows.iter_mut().zip(&findings) {
        row.insert(3, Cell::from(f.status.as_str()));
    }
    section(
        &mut out,
        &format!("Quality findings on those partitions ({})", findings.len()),
        &[
            "dataset",
            "partition",
            "kind",
            "status",
            "rows",
            "first",
            "detail",
            "file",
        ],
        &rows,
    );
    out
}

/// The metrics every comparison lists first, then the rest of each job's.
const FIRST_METRICS: [&str; 5] = ["total_return", "total_profit", "max_drawdown", "trades", "funding_fees"];

/// `/jobs/compare`: the metrics side by side, the equity curves on one
/// chart, and whether the runs read the same data.
pub fn compare(c: &Comparison) -> String {
    let ids: Vec<String> = c.jobs.iter().map(|j| j.id.to_string()).collect();
    let mut out = format!("<h1>Compare jobs {}</h1>\n", esc(&ids.join(", ")));
    out.push_str(&verdict(c));
    let mut head: Vec<String> = vec!["".into()];
    head.extend(c.jobs.iter().map(|j| format!("job {} · {}", j.id, j.name)));
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut rows: Vec<Vec<Cell>> = vec![
        row("framework", c.jobs.iter().map(|j| j.framework.clone())),
        row("state", c.jobs.iter().map(|j| j.state.to_string())),
        row("total return", c.jobs.iter().map(|j| pct(j.summary.total_return))),
        row("max drawdown", c.jobs.iter().map(|j| pct(j.summary.max_drawdown))),
        row("duration", c.jobs.iter().map(|j| duration(j.duration_seconds))),
        row(
            "data",
            c.jobs
                .iter()
                .map(|j| short_fp(j.data_fingerprint.as_deref(), j.data_snapshot)),
        ),
        row("final equity", c.jobs.iter().map(|j| num(j.equity_last))),
    ];
    for key in metric_keys(c) {
        rows.push(row(&key, c.jobs.iter().map(|j| metric_text(&j.metrics[key.as_str()]))));
    }
    section(&mut out, "Metrics side by side", &head, &rows);
    out.push_str("<h2>Equity</h2>\n");
    let curves: Vec<Curve> = c
        .curves
        .iter()
        .map(|(id, name, e): &(i64, String, Equity)| Curve {
            label: format!("job {id} · {name}"),
            points: &e.points,
        })
        .collect();
    out.push_str(&equity_block("Equity", &curves));
    out
}

/// Every metric name any of the jobs has: the usual ones first, then the
/// rest in the order they first appear.
fn metric_keys(c: &Comparison) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let present = |k: &str| c.jobs.iter().any(|j| j.metrics.get(k).is_some());
    keys.extend(FIRST_METRICS.iter().filter(|k| present(k)).map(|k| k.to_string()));
    for j in &c.jobs {
        if let Some(m) = j.metrics.as_object() {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
    }
    keys
}

fn row(label: &str, values: impl Iterator<Item = String>) -> Vec<Cell> {
    let mut r = vec![Cell::from(label)];
    r.extend(values.map(Cell::from));
    r
}

/// "Same data" or what differs, as `jobs diff` says it.
fn verdict(c: &Comparison) -> String {
    let mut out = String::new();
    match c.same_data {
        Some(true) => out.push_str("<p class=\"good\">Every job read the same data.</p>\n"),
        None => out.push_str(
            "<p class=\"none\">Not every job has a data manifest, so whether they read the same data is unknown.</p>\n",
        ),
        Some(false) => {
            out.push_str("<p class=\"bad\">The jobs read different data.</p>\n<ul>\n");
            for d in &c.data {
                match d.same {
                    Some(true) => {
                        let _ = writeln!(out, "<li>jobs {} and {}: the same data</li>", d.a, d.b);
                    }
                    None => {
                        let _ = writeln!(out, "<li>jobs {} and {}: unknown (no manifest)</li>", d.a, d.b);
                    }
                    Some(false) => {
                        let changes: Vec<String> = d.partitions.iter().map(|p| esc(&p.to_string())).collect();
                        let _ = writeln!(
                            out,
                            "<li>jobs {} and {}: {}</li>",
                            d.a,
                            d.b,
                            if changes.is_empty() {
                                "different datasets".to_string()
                            } else {
                                changes.join("; ")
                            }
                        );
                    }
                }
            }
            out.push_str("</ul>\n");
        }
    }
    out
}

/// Metrics as one line of text, for `jobs ls`.
pub fn metrics_line(m: &Metrics) -> [String; 3] {
    [
        pct(m.total_return),
        pct(m.max_drawdown),
        m.trades.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
    ]
}
