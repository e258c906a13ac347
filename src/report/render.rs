//! The report as a terminal table or as Markdown.
//!
//! Owns layout only; every figure comes from [`super::Report`].

use std::fmt::Write;

use super::Report;
use crate::config::units::human_bytes;

fn days(d: Option<f64>, reached: bool) -> String {
    match (d, reached) {
        (_, true) => "reached".into(),
        (Some(d), _) => format!("{d:.1} days"),
        (None, _) => "not growing".into(),
    }
}

/// A compression ratio, or `-` when no file's uncompressed size is known
/// yet (a report built from caches only).
fn ratio(r: f64) -> String {
    if r > 0.0 {
        format!("{r:.1}x")
    } else {
        "-".into()
    }
}

/// Rows of cells, rendered as aligned text or as a Markdown table.
struct Table {
    head: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn text(&self, out: &mut String) {
        let n = self.head.len();
        let w: Vec<usize> = (0..n)
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([self.head[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>, out: &mut String| {
            let parts: Vec<String> = cells.iter().zip(&w).map(|(c, w)| format!("{c:<w$}")).collect();
            let _ = writeln!(out, "  {}", parts.join("  ").trim_end());
        };
        line(self.head.clone(), out);
        for r in &self.rows {
            line(r.iter().map(String::as_str).collect(), out);
        }
    }

    fn md(&self, out: &mut String) {
        let _ = writeln!(out, "| {} |", self.head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(self.head.len()));
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
}

/// Section titles and their tables, in order.
fn sections(r: &Report) -> Vec<(String, Table)> {
    let mut s = stored_sections(r);
    s.extend(quality_sections(r));
    s.extend(activity_sections(r));
    s
}

/// What is stored: object stores, totals by dataset and tier, coverage gaps.
fn stored_sections(r: &Report) -> Vec<(String, Table)> {
    let mut s = Vec::new();
    if !r.stores.is_empty() {
        s.push((
            "Object stores".to_string(),
            Table {
                head: vec!["tier", "url", "status", "files", "size"],
                rows: r
                    .stores
                    .iter()
                    .map(|st| {
                        vec![
                            st.tier.clone(),
                            st.url.clone(),
                            st.error.clone().unwrap_or_else(|| "reachable".into()),
                            st.files.to_string(),
                            human_bytes(st.bytes),
                        ]
                    })
                    .collect(),
            },
        ));
    }
    if let Some(l) = &r.lake {
        s.push(("Lake".to_string(), lake_table(l)));
    }
    s.push((
        "Stored".to_string(),
        Table {
            head: vec!["dataset", "tier", "files", "rows", "size", "ratio", "from", "to"],
            rows: r
                .datasets
                .iter()
                .map(|d| {
                    vec![
                        d.dataset.clone(),
                        d.tier.clone(),
                        d.files.to_string(),
                        d.rows.to_string(),
                        human_bytes(d.bytes),
                        ratio(d.compression_ratio),
                        d.min_ts.clone().unwrap_or_default(),
                        d.max_ts.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        },
    ));
    s.push((
        format!("Coverage gaps ({})", r.gaps.len()),
        Table {
            head: vec!["dataset", "series", "from", "to", "missing"],
            rows: r
                .gaps
                .iter()
                .map(|g| {
                    vec![
                        g.dataset.clone(),
                        g.series.clone(),
                        g.from.clone(),
                        g.to.clone(),
                        format!("{} × {}", g.missing, g.cadence),
                    ]
                })
                .collect(),
        },
    ));
    s
}

/// What happened and what comes next: history, removals, forecast, plans, jobs.
fn activity_sections(r: &Report) -> Vec<(String, Table)> {
    let mut s = Vec::new();
    s.push((
        format!("Since {} ({})", r.since_time, r.since),
        Table {
            head: vec!["action", "events", "bytes"],
            rows: r
                .history_totals
                .iter()
                .map(|t| vec![t.action.clone(), t.events.to_string(), human_bytes(t.bytes)])
                .collect(),
        },
    ));
    s.push((
        "Removed, and why".to_string(),
        Table {
            head: vec!["when", "action", "dataset", "partition", "size", "reason"],
            rows: r
                .history
                .iter()
                .filter(|h| matches!(h.action.as_str(), "retention" | "evict" | "trim"))
                .map(|h| {
                    vec![
                        h.at.clone(),
                        h.action.clone(),
                        h.dataset.clone().unwrap_or_default(),
                        h.partition.clone().unwrap_or_default(),
                        human_bytes(h.bytes.unwrap_or(0)),
                        h.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        },
    ));
    s.extend(plan_sections(r));
    s.extend(jobs_section(r));
    s
}

/// What comes next: the forecast and what the next runs would remove.
fn plan_sections(r: &Report) -> Vec<(String, Table)> {
    let mut s = Vec::new();
    s.push((
        "Forecast".to_string(),
        Table {
            head: vec!["limit", "usage", "limit", "growth/day", "reached in"],
            rows: r
                .forecast
                .iter()
                .map(|f| {
                    vec![
                        f.limit.clone(),
                        human_bytes(f.usage_bytes),
                        human_bytes(f.limit_bytes),
                        format!(
                            "{}{}",
                            if f.growth_bytes_per_day < 0.0 { "-" } else { "" },
                            human_bytes(f.growth_bytes_per_day.abs() as u64)
                        ),
                        days(f.days_until, f.reached),
                    ]
                })
                .collect(),
        },
    ));
    let next: Vec<Vec<String>> = r
        .next_retention
        .iter()
        .map(|d| ("retention", d))
        .chain(r.next_quota.iter().map(|d| ("quota", d)))
        .map(|(k, d)| {
            vec![
                k.to_string(),
                d.dataset.clone(),
                d.tier.clone(),
                d.partition.clone(),
                human_bytes(d.bytes),
                d.reason.clone(),
            ]
        })
        .collect();
    s.push((
        "Next runs would remove".to_string(),
        Table {
            head: vec!["run", "dataset", "tier", "partition", "size", "reason"],
            rows: next,
        },
    ));
    s
}

/// Jobs per framework, when any ran.
fn jobs_section(r: &Report) -> Option<(String, Table)> {
    if r.jobs.is_empty() {
        return None;
    }
    Some((
        "Jobs".to_string(),
        Table {
            head: vec![
                "framework",
                "jobs",
                "ok",
                "failed",
                "oom",
                "timeout",
                "max peak",
                "peak/reserved",
            ],
            rows: r
                .jobs
                .iter()
                .map(|j| {
                    vec![
                        j.framework.clone(),
                        j.jobs.to_string(),
                        j.succeeded.to_string(),
                        j.failed.to_string(),
                        j.oom_killed.to_string(),
                        j.timed_out.to_string(),
                        j.max_peak_bytes.map(human_bytes).unwrap_or_default(),
                        j.max_peak_over_reserved
                            .map(|x| format!("{:.0}%", x * 100.0))
                            .unwrap_or_default(),
                    ]
                })
                .collect(),
        },
    ))
}

/// "Data quality": findings by dataset and kind, those in the data now
/// apart from those mdkeep repaired, then the worst partitions.
fn quality_sections(r: &Report) -> Vec<(String, Table)> {
    use crate::quality::findings::Status;
    let q = &r.quality;
    let by_kind = |status: Status| Table {
        head: vec!["dataset", "kind", "partitions", "rows"],
        rows: q
            .by_kind
            .iter()
            .filter(|t| t.status == status)
            .map(|t| {
                vec![
                    t.dataset.clone(),
                    t.kind.to_string(),
                    t.partitions.to_string(),
                    t.rows.to_string(),
                ]
            })
            .collect(),
    };
    let worst = Table {
        head: vec!["dataset", "partition", "rows", "kinds"],
        rows: q
            .worst
            .iter()
            .map(|w| {
                let kinds: Vec<&str> = w.kinds.iter().map(|k| k.as_str()).collect();
                vec![
                    w.dataset.clone(),
                    w.partition.clone(),
                    w.rows.to_string(),
                    kinds.join(", "),
                ]
            })
            .collect(),
    };
    vec![
        (
            format!(
                "Data quality: in the data now ({} partitions checked)",
                q.partitions_checked
            ),
            by_kind(Status::Present),
        ),
        (
            "Data quality: repaired by mdkeep (duplicates removed, rows re-filed or re-sorted)".to_string(),
            by_kind(Status::Repaired),
        ),
        ("Worst partitions".to_string(), worst),
    ]
}

pub fn table(r: &Report) -> String {
    let mut out = format!("mdkeep data-retention report, {}\n", r.generated_at);
    for (title, t) in sections(r) {
        let _ = writeln!(out, "\n{title}");
        if t.rows.is_empty() {
            out.push_str("  (none)\n");
        } else {
            t.text(&mut out);
        }
    }
    out
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!("# mdkeep data-retention report\n\nGenerated {}.\n", r.generated_at);
    for (title, t) in sections(r) {
        let _ = writeln!(out, "\n## {title}\n");
        if t.rows.is_empty() {
            out.push_str("None.\n");
        } else {
            t.md(&mut out);
        }
    }
    out
}

/// The same sections as HTML tables, for the HTML page: times to the second.
pub fn html_tables(r: &Report) -> String {
    let mut out = String::new();
    for (title, t) in sections(r) {
        let rows: Vec<Vec<super::page::Cell>> = t
            .rows
            .into_iter()
            .map(|row| row.iter().map(|c| super::page::short_time(c).into()).collect())
            .collect();
        super::page::section(&mut out, &title, &t.head, &rows);
    }
    out
}

/// The lake's snapshots and what old snapshots keep on disk.
fn lake_table(l: &crate::lake::status::LakeStatus) -> Table {
    use crate::lake::status::opt;
    Table {
        head: vec![
            "lake",
            "snapshots",
            "latest",
            "oldest kept",
            "live files",
            "kept for old snapshots",
        ],
        rows: vec![vec![
            l.path.clone(),
            l.error.clone().unwrap_or_else(|| l.snapshots.to_string()),
            opt(l.latest_snapshot),
            format!(
                "{} {}",
                opt(l.oldest_snapshot),
                l.oldest_time.clone().unwrap_or_default()
            ),
            format!("{} ({})", l.live_files, human_bytes(l.live_bytes)),
            format!("{} ({})", l.kept_files, human_bytes(l.kept_bytes)),
        ]],
    }
}
