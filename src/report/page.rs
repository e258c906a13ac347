//! The HTML every page shares: the document shell with its inline CSS, the
//! dashboard's header, tables, and the bodies of the jobs, quality and
//! coverage pages.
//!
//! Owns all of mdkeep's HTML markup but the report's charts ([`super::html`]):
//! `mdkeep report --format html` and the daemon's pages are both drawn
//! here. Pages are read-only and self-contained: no script, no form, no
//! request to the network. Every figure comes from the library's values.

use std::fmt::Write;

use super::header::Header;
use crate::config::units::human_bytes;
use crate::coverage::SeriesCoverage;
use crate::jobs::queue::JobView;
use crate::quality::Overview;

pub const CSS: &str =
    "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}\
th{background:#f4f4f4}.none{color:#777}.meta{color:#666;font-size:13px}.charts svg{display:block;margin:14px 0}\
header{background:#f4f6f8;border:1px solid #dde;padding:8px 12px;font-size:13px;margin-bottom:12px}\
header nav{margin-top:4px}header nav a{margin-right:12px}.bad{color:#b00}";

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One table cell: text, or text linking to a relative address.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Link { text: String, href: String },
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

/// A section: its title, then its table or "None.".
pub fn section(out: &mut String, title: &str, head: &[&str], rows: &[Vec<Cell>]) {
    let _ = writeln!(out, "<h2>{}</h2>", esc(title));
    if rows.is_empty() {
        out.push_str("<p class=\"none\">None.</p>\n");
        return;
    }
    out.push_str("<table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            match c {
                Cell::Text(t) => {
                    let _ = write!(out, "<td>{}</td>", esc(t));
                }
                Cell::Link { text, href } => {
                    let _ = write!(out, "<td><a href=\"{}\">{}</a></td>", esc(href), esc(text));
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

/// A whole page: `body` in the shared shell, under the dashboard's header
/// when there is one.
pub fn document(title: &str, header: Option<&Header>, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{CSS}</style></head><body>\n{}{body}</body></html>\n",
        esc(title),
        header.map(render_header).unwrap_or_default(),
    )
}

/// The box's name, disk use, budget in use, the last maintain, and the links.
fn render_header(h: &Header) -> String {
    let disk = match (h.disk_used_bytes, h.disk_size_bytes) {
        (Some(used), Some(size)) if size > 0 => format!(
            "disk {} of {} ({:.0} %)",
            human_bytes(used),
            human_bytes(size),
            used as f64 * 100.0 / size as f64
        ),
        _ => "disk unknown".into(),
    };
    let maintain = match &h.last_maintain {
        Some(m) => {
            let class = if m.ok { "" } else { " class=\"bad\"" };
            format!("last maintain {} <span{class}>{}</span>", esc(&m.at), esc(&m.result))
        }
        None => "no maintain run yet".into(),
    };
    format!(
        "<header><strong>{}</strong> · mdkeep data {} · {disk} · budget {} of {} in use · {maintain}\n\
         <nav><a href=\"./\">report</a><a href=\"jobs\">jobs</a><a href=\"quality\">quality</a>\
         <a href=\"coverage\">coverage</a> JSON: <a href=\"api/report\">report</a><a href=\"api/jobs\">jobs</a>\
         <a href=\"api/quality\">quality</a><a href=\"api/coverage\">coverage</a></nav></header>\n",
        esc(&h.name),
        human_bytes(h.data_bytes),
        human_bytes(h.budget_in_use_bytes),
        human_bytes(h.budget_bytes),
    )
}

/// `2026-12-02T12:08:08.340121767Z` → `2026-12-02 12:08:08` (UTC), for a table.
fn short_time(t: &str) -> String {
    let t = t.split('.').next().unwrap_or(t).trim_end_matches('Z');
    t.replacen('T', " ", 1)
}

/// The queue, newest first, with links to each job's log tail and result.
pub fn jobs(views: &[JobView]) -> String {
    let rows: Vec<Vec<Cell>> = views
        .iter()
        .map(|v| {
            let result = if v.finished_at.is_some() {
                Cell::Link {
                    text: "result.json".into(),
                    href: format!("jobs/{}/result.json", v.id),
                }
            } else {
                Cell::from("")
            };
            vec![
                v.id.to_string().into(),
                v.name.clone().into(),
                v.framework.clone().into(),
                v.state.into(),
                human_bytes(v.reserved_memory_bytes).into(),
                v.peak_memory_bytes.map(human_bytes).unwrap_or_default().into(),
                short_time(&v.queued_at).into(),
                v.started_at.as_deref().map(short_time).unwrap_or_default().into(),
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
    section(
        &mut out,
        &format!("Queue ({})", views.len()),
        &[
            "id",
            "name",
            "framework",
            "state",
            "reserved",
            "peak",
            "queued",
            "started",
            "finished",
            "exit",
            "log",
            "result",
        ],
        &rows,
    );
    out
}

/// What could not be finished yet and is retried every run (empty when
/// nothing is deferred).
pub fn deferred(items: &[crate::engine::deferred::Deferred]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<Cell>> = items
        .iter()
        .map(|d| {
            vec![
                format!("{} {}", d.kind, d.id).into(),
                d.step.clone().into(),
                d.file.clone().into(),
                d.reason.clone().into(),
                short_time(&d.since).into(),
            ]
        })
        .collect();
    let mut out = String::new();
    section(
        &mut out,
        &format!("Deferred, retried every run ({})", items.len()),
        &["what", "step", "file", "reason", "since"],
        &rows,
    );
    out
}

/// The alerts section: what is firing (or held) and the targets failing to
/// take them; nothing when all is quiet.
pub fn alerts(firing: &[crate::alerts::state::AlertView], targets: &[crate::alerts::state::TargetHealth]) -> String {
    let failing: Vec<&crate::alerts::state::TargetHealth> = targets.iter().filter(|t| t.failures > 0).collect();
    if firing.is_empty() && failing.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<Cell>> = firing
        .iter()
        .map(|a| {
            vec![
                a.state.into(),
                a.subject.clone().into(),
                a.message.clone().into(),
                short_time(&a.since).into(),
                a.last_sent.as_deref().map(short_time).unwrap_or_default().into(),
            ]
        })
        .collect();
    let mut out = String::new();
    section(
        &mut out,
        &format!("Alerts ({})", firing.len()),
        &["state", "what", "message", "since", "last sent"],
        &rows,
    );
    if !failing.is_empty() {
        let rows: Vec<Vec<Cell>> = failing
            .iter()
            .map(|t| {
                vec![
                    t.target.clone().into(),
                    t.failures.to_string().into(),
                    t.last_error.clone().unwrap_or_default().into(),
                    t.last_ok.as_deref().map(short_time).unwrap_or_default().into(),
                ]
            })
            .collect();
        section(
            &mut out,
            "Alert targets failing",
            &["target", "failures in a row", "last error", "last delivered"],
            &rows,
        );
    }
    out
}

/// The stored findings, one row each.
pub fn quality(o: &Overview) -> String {
    let rows: Vec<Vec<Cell>> = o
        .findings
        .iter()
        .map(|f| {
            vec![
                f.dataset.clone().into(),
                f.partition_key.clone().into(),
                f.kind.as_str().into(),
                f.rows.to_string().into(),
                f.first_ts.clone().into(),
                f.detail.clone().unwrap_or_else(|| format!("e.g. {}", f.example)).into(),
                f.file.clone().unwrap_or_default().into(),
            ]
        })
        .collect();
    let mut out = format!(
        "<h1>Data quality</h1>\n<p class=\"meta\">{} partitions checked. Partitions no check has seen \
         since their files changed are checked by <code>mdkeep quality</code>.</p>\n",
        o.partitions_checked
    );
    section(
        &mut out,
        &format!("Findings ({})", o.findings.len()),
        &["dataset", "partition", "kind", "rows", "first", "detail", "file"],
        &rows,
    );
    out
}

/// Gaps listed on the coverage page, at most; the JSON twin has them all.
const MAX_GAP_ROWS: usize = 500;

/// Every series' span and gaps, from the coverage index.
pub fn coverage(series: &[SeriesCoverage]) -> String {
    let name = |s: &SeriesCoverage| -> String {
        let parts: Vec<String> = s.series.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.join("/")
    };
    let rows: Vec<Vec<Cell>> = series
        .iter()
        .map(|s| {
            vec![
                s.dataset.clone().into(),
                name(s).into(),
                s.cadence.clone().into(),
                s.first.clone().into(),
                s.last.clone().into(),
                s.rows.to_string().into(),
                s.files.to_string().into(),
                s.files_unindexed.to_string().into(),
                s.gaps.len().to_string().into(),
                s.gaps.iter().map(|g| g.missing).sum::<u64>().to_string().into(),
            ]
        })
        .collect();
    let gaps: Vec<Vec<Cell>> = series
        .iter()
        .flat_map(|s| {
            s.gaps.iter().map(move |g| {
                vec![
                    s.dataset.clone().into(),
                    name(s).into(),
                    g.from.clone().into(),
                    g.to.clone().into(),
                    format!("{} × {}", g.missing, s.cadence).into(),
                ]
            })
        })
        .take(MAX_GAP_ROWS)
        .collect();
    let total: usize = series.iter().map(|s| s.gaps.len()).sum();
    let mut out = String::from(
        "<h1>Coverage</h1>\n<p class=\"meta\">From the catalog and the coverage index; a file not \
         indexed yet counts as covering its whole range.</p>\n",
    );
    section(
        &mut out,
        &format!("Series ({})", series.len()),
        &[
            "dataset",
            "series",
            "cadence",
            "first",
            "last",
            "rows",
            "files",
            "not indexed",
            "gaps",
            "missing",
        ],
        &rows,
    );
    let title = if total > gaps.len() {
        format!("Gaps (first {} of {total}; all in api/coverage)", gaps.len())
    } else {
        format!("Gaps ({total})")
    };
    section(&mut out, &title, &["dataset", "series", "from", "to", "missing"], &gaps);
    out
}
