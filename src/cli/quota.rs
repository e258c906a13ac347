//! `mdkeep quota`

use mdkeep::config::units::human_bytes;
use mdkeep::quota::{self, QuotaReport};

use super::{lock_for, open_state, output, Cli, PolicyArgs};

pub fn run(cli: &Cli, a: &PolicyArgs) -> anyhow::Result<i32> {
    let (cfg, mut db) = open_state(cli, a.dataset.as_deref())?;
    let _lock = lock_for(cli, &cfg, &db, "quota", a.dry_run)?;
    let plan = quota::plan(&cfg, &db, a.dataset.as_deref())?;
    let report = if a.dry_run {
        QuotaReport {
            dry_run: true,
            plan,
            ..Default::default()
        }
    } else {
        quota::execute(&cfg, &mut db, plan)?
    };
    let unmet = report.plan.unmet.is_some();
    if a.json {
        output::json(&report)?;
    } else {
        print(&report);
    }
    if let Some(why) = &report.plan.unmet {
        eprintln!("error: quota cannot be met: {why}");
    }
    Ok(if unmet { report.outcome().code() } else { 0 })
}

/// The plan and what was done, in words.
fn print(report: &QuotaReport) {
    let p = &report.plan;
    println!(
        "usage {} (data {}, state {}, tmp {}, trash {}, quarantine {}); soft {}, hard {}",
        human_bytes(p.usage.total),
        human_bytes(p.usage.tiers.values().sum()),
        human_bytes(p.usage.state),
        human_bytes(p.usage.tmp),
        human_bytes(p.usage.trash),
        human_bytes(p.usage.quarantine),
        p.soft_total.map(human_bytes).unwrap_or_else(|| "none".into()),
        p.hard_total.map(human_bytes).unwrap_or_else(|| "none".into()),
    );
    for r in &p.roots {
        println!(
            "{}: {} free of {} (keep {} free)",
            r.tier,
            human_bytes(r.free),
            human_bytes(r.size),
            human_bytes(r.min_free)
        );
    }
    for e in &p.soft {
        println!(
            "warning: {} is above its soft limit ({} > {}): tiering early",
            e.what,
            human_bytes(e.usage),
            human_bytes(e.limit)
        );
    }
    for e in &p.hard {
        println!(
            "{} is above its hard limit ({} > {})",
            e.what,
            human_bytes(e.usage),
            human_bytes(e.limit)
        );
    }
    let verb = if report.dry_run { "would move" } else { "moved" };
    for mv in p.early_tier.iter().flat_map(|t| &t.moves) {
        println!(
            "{verb} {} {} {} → {}: {}, {}",
            mv.dataset,
            mv.partition,
            mv.from,
            mv.to,
            human_bytes(mv.bytes),
            mv.reason
        );
    }
    let verb = if report.dry_run { "would evict" } else { "evicted" };
    for e in &p.evictions {
        println!(
            "{verb} {} {} [{}]: {}, {}",
            e.dataset,
            e.partition,
            e.tier,
            human_bytes(e.bytes),
            e.reason
        );
    }
    if let Some(u) = &report.usage_after {
        println!("usage now {}", human_bytes(u.total));
    }
    if report.dry_run {
        println!("dry run: nothing was changed");
    }
}
