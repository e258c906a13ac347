//! Text tables and JSON printing shared by the commands.

use serde::Serialize;

pub fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Left-aligned text columns, numbers right-aligned, sized to fit.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let numeric = !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit() || ch == ',' || ch == '.');
                if numeric {
                    format!("{c:>width$}", width = w[i])
                } else {
                    format!("{c:<width$}", width = w[i])
                }
            })
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Print what a run could not handle, one line each, on stderr.
pub fn failures<'a>(fs: impl IntoIterator<Item = &'a mdkeep::error::Failure>) {
    for f in fs {
        eprintln!("{} {}: {} ({}): {}", f.step, f.outcome, f.file, f.code, f.reason);
    }
}

/// What is left deferred (retried every run), one line each on stderr.
pub fn deferred<'a>(ds: impl IntoIterator<Item = &'a mdkeep::engine::deferred::Deferred>) {
    for d in ds {
        eprintln!(
            "deferred {} {} ({} since {}): {}: {}",
            d.kind, d.id, d.step, d.since, d.file, d.reason
        );
    }
}

/// `exchange=binance,symbol=BTC_USDT` → pairs (`--where`).
pub fn parse_where(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("`{p}` is not COL=VALUE"))
        })
        .collect()
}
