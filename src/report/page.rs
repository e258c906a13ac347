//! The HTML every page shares: the document shell with its inline CSS, the
//! dashboard's header, tables, the one short form of a time ([`short_time`]),
//! and the bodies of the quality and coverage pages (the jobs' pages are
//! [`super::jobs_page`]'s).
//!
//! Owns all of mdkeep's HTML markup but the report's charts ([`super::html`]):
//! `mdkeep report --format html` and the daemon's pages are both drawn
//! here. Pages are read-only and self-contained: no script, no form, no
//! request to the network. Every figure comes from the library's values.

use std::fmt::Write;

use super::header::Header;
use crate::config::units::human_bytes;
use crate::coverage::SeriesCoverage;
use crate::quality::findings::Status;
use crate::quality::{FindingRow, Overview};

pub const CSS: &str =
    "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\
table{border-collapse:collapse;font-size:13px;margin:6px 0;max-width:100%}\
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f4f4f4}.none{color:#777}.meta{color:#666;font-size:13px}.charts svg{display:block;margin:14px 0}\
header{background:#f4f6f8;border:1px solid #dde;padding:8px 12px;font-size:13px;margin-bottom:12px}\
header nav{margin-top:4px}header nav a{margin-right:12px}.bad{color:#b00}.good{color:#070}\
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;border:1px solid #ddd;padding:6px;font-size:12px;max-height:420px;overflow:auto}\
svg{max-width:100%;height:auto}";

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
    document_at(title, header, body, "")
}

/// [`document`] for a page one folder down (`/jobs/<id>`): `up` (`../`)
/// leads the header's links back to the top.
pub fn document_at(title: &str, header: Option<&Header>, body: &str, up: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>{CSS}</style></head><body>\n{}{body}</body></html>\n",
        esc(title),
        header.map(|h| render_header(h, up)).unwrap_or_default(),
    )
}

/// The box's name, disk use, budget in use, the last maintain, and the links.
fn render_header(h: &Header, up: &str) -> String {
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
            format!(
                "last maintain {} <span{class}>{}</span>",
                esc(&short_time(&m.at)),
                esc(&m.result)
            )
        }
        None => "no maintain run yet".into(),
    };
    format!(
        "<header><strong>{}</strong> · mdkeep data {} · {disk} · budget {} of {} in use · {maintain}\n\
         <nav><a href=\"{up}./\">report</a><a href=\"{up}jobs\">jobs</a><a href=\"{up}quality\">quality</a>\
         <a href=\"{up}coverage\">coverage</a> JSON: <a href=\"{up}api/report\">report</a><a href=\"{up}api/jobs\">jobs</a>\
         <a href=\"{up}api/quality\">quality</a><a href=\"{up}api/coverage\">coverage</a></nav></header>\n",
        esc(&h.name),
        human_bytes(h.data_bytes),
        human_bytes(h.budget_in_use_bytes),
        human_bytes(h.budget_bytes),
    )
}

/// `2026-12-02T12:08:08.340121767Z` → `2026-12-02 12:08:08` (UTC): every
/// time a page or table shows is to the second (the JSON keeps them
/// whole). Text that is not an RFC 3339 time comes back as it was.
pub fn short_time(t: &str) -> String {
    let b = t.as_bytes();
    let is_time = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[..19].is_ascii()
        && b[..4].iter().all(u8::is_ascii_digit);
    if !is_time {
        return t.to_string();
    }
    let rest = &t[19..];
    // What follows the seconds: a fraction, then `Z` or an offset.
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = if zone == "Z" || zone == "+00:00" { "" } else { zone };
    format!("{} {}{}", &t[..10], &t[11..19], zone)
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

/// The stored findings, one row each: what mdkeep's rewrites repaired
/// (duplicates removed, rows re-filed or re-sorted), then the faults in the
/// data now.
pub fn quality(o: &Overview) -> String {
    let mut out = format!(
        "<h1>Data quality</h1>\n<p class=\"meta\">{} partitions checked. Partitions no check has seen \
         since their files changed are checked by <code>mdkeep quality</code>.</p>\n",
        o.partitions_checked
    );
    let (present, repaired): (Vec<&FindingRow>, Vec<&FindingRow>) =
        o.findings.iter().partition(|f| f.status == Status::Present);
    let head = ["dataset", "partition", "kind", "rows", "first", "detail", "file"];
    section(
        &mut out,
        &format!("In the data now ({})", present.len()),
        &head,
        &finding_rows(&present),
    );
    section(
        &mut out,
        &format!("Repaired by mdkeep ({})", repaired.len()),
        &head,
        &finding_rows(&repaired),
    );
    out
}

/// Findings as table rows (dataset, partition, kind, rows, first, detail, file).
pub fn finding_rows(findings: &[&FindingRow]) -> Vec<Vec<Cell>> {
    findings
        .iter()
        .map(|f| {
            vec![
                f.dataset.clone().into(),
                f.partition_key.clone().into(),
                f.kind.as_str().into(),
                f.rows.to_string().into(),
                short_time(&f.first_ts).into(),
                f.detail.clone().unwrap_or_else(|| format!("e.g. {}", f.example)).into(),
                finding_file(f).into(),
            ]
        })
        .collect()
}

/// The file a finding names while it exists; once a rewrite removed it,
/// the partition's files that hold its rows now.
pub fn finding_file(f: &FindingRow) -> String {
    match &f.file {
        Some(file) if f.file_exists => file.clone(),
        Some(file) if !f.now_in.is_empty() => format!(
            "now in {} (was {})",
            f.now_in.join(", "),
            file.rsplit('/').next().unwrap_or(file)
        ),
        None if !f.now_in.is_empty() => format!("now in {}", f.now_in.join(", ")),
        _ => String::new(),
    }
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
                short_time(&s.first).into(),
                short_time(&s.last).into(),
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
                    short_time(&g.from).into(),
                    short_time(&g.to).into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_to_the_second() {
        assert_eq!(short_time("2026-12-05T07:33:33.265822168Z"), "2026-12-05 07:33:33");
        assert_eq!(short_time("2026-12-05T07:33:33Z"), "2026-12-05 07:33:33");
        assert_eq!(short_time("2026-12-05T07:33:33.5+02:00"), "2026-12-05 07:33:33+02:00");
        // Anything else is left as it is.
        for t in ["2026-12-05", "12.50 %", "", "x"] {
            assert_eq!(short_time(t), t);
        }
    }
}
