//! Scan and ls against real files, checked by DuckDB and pyarrow.

mod common;

use std::time::Duration;

use common::{age, py, Sandbox};

#[test]
fn scan_counts_what_gen_wrote_and_duckdb_agrees() {
    let s = Sandbox::new();
    let g = s.gen(2, 2, 2, 300);
    let files = g["files"].as_u64().unwrap();
    let rows = g["rows"].as_u64().unwrap();
    assert_eq!(files, 2 * 2 * 24 * 2);

    let r = s.json(&["scan"]);
    assert_eq!(r["added"].as_u64(), Some(files));
    assert_eq!(r["rows"].as_u64(), Some(rows));
    assert_eq!(r["pending"].as_array().unwrap().len(), 0);
    assert_eq!(r["corrupt"].as_array().unwrap().len(), 0);
    // The first flush of day 2 carries day 1's last trades: misfiled, once per symbol.
    assert_eq!(r["misfiled"].as_array().unwrap().len(), 2, "{r}");

    let hot = s.hot().display().to_string();
    let duck = py(
        "import duckdb,sys; print(duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT count(*) FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning=true)\").fetchone()[0])",
        &[&hot],
    );
    assert_eq!(duck, rows.to_string());
    let arrow = py(
        "import pyarrow.dataset as ds,sys; print(ds.dataset(sys.argv[1] + '/trades', format='parquet', partitioning='hive').count_rows())",
        &[&hot],
    );
    assert_eq!(arrow, rows.to_string());

    // ls agrees and keeps its JSON contract.
    let ls = s.json(&["ls"]);
    let parts = ls.as_array().unwrap();
    assert_eq!(parts.len(), 4);
    let sum: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(sum, rows);
    let p = &parts[0];
    for k in [
        "dataset",
        "partition",
        "tier",
        "files",
        "rows",
        "bytes",
        "min_ts",
        "max_ts",
    ] {
        assert!(p.get(k).is_some(), "ls entry lacks {k}: {p}");
    }
    assert_eq!(p["dataset"], "trades");
    assert_eq!(p["tier"], "hot");
    assert_eq!(p["partition"]["exchange"], "binance");
    assert_eq!(p["partition"]["date"], "2024-01-01");
    assert!(p["min_ts"].as_str().unwrap().starts_with("2024-01-01T"), "{p}");
}

#[test]
fn second_scan_reads_no_file_and_vanished_files_leave() {
    let s = Sandbox::new();
    s.gen(1, 1, 2, 100);
    let first = s.json(&["scan"]);
    let n = first["added"].as_u64().unwrap();
    let again = s.json(&["scan"]);
    assert_eq!(again["unchanged"].as_u64(), Some(n));
    assert_eq!(again["added"].as_u64(), Some(0));
    assert_eq!(again["updated"].as_u64(), Some(0));
    assert_eq!(again["files_read"].as_u64(), Some(0));

    let victim = s.data_files().pop().unwrap();
    std::fs::remove_file(&victim).unwrap();
    let after = s.json(&["scan"]);
    assert_eq!(after["removed"].as_u64(), Some(1));
    assert_eq!(after["files"].as_u64(), Some(n - 1));
}

#[test]
fn truncated_old_file_is_quarantined_not_deleted() {
    let s = Sandbox::new();
    s.gen(1, 1, 2, 100);
    let victim = s.data_files()[3].clone();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    age(&victim, Duration::from_secs(3600));

    let r = s.json(&["scan"]);
    let corrupt = r["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{r}");
    assert_eq!(corrupt[0]["path"].as_str().unwrap(), victim.display().to_string());
    assert!(!corrupt[0]["reason"].as_str().unwrap().is_empty());
    let moved = std::path::PathBuf::from(corrupt[0]["moved_to"].as_str().unwrap());
    assert!(
        moved.starts_with(s.root().join("data/quarantine")),
        "{}",
        moved.display()
    );
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        bytes[..bytes.len() / 2],
        "quarantined bytes kept as they were"
    );
    assert!(!victim.exists());
    // The run went on: every other file is cataloged.
    assert_eq!(r["added"].as_u64(), Some(47));
}

#[test]
fn just_written_file_is_pending_and_untouched() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 50);
    let src = s.data_files()[0].clone();
    let fresh = src.with_file_name("live-flush.parquet");
    std::fs::copy(&src, &fresh).unwrap();
    // A collector half-way through a write: no footer yet, but young.
    let half = src.with_file_name("half-written.parquet");
    std::fs::write(&half, b"PAR1 partial").unwrap();

    let r = s.json(&["scan"]);
    let pending: Vec<&str> = r["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(pending.contains(&fresh.display().to_string().as_str()), "{r}");
    assert!(pending.contains(&half.display().to_string().as_str()), "{r}");
    assert_eq!(r["corrupt"].as_array().unwrap().len(), 0);
    assert!(half.exists() && fresh.exists());
    assert_eq!(r["added"].as_u64(), Some(24));
}

/// Issue 29's leftover: a file whose columns differ from its dataset's is
/// quarantined with a reason naming each difference, not cataloged to sit
/// unmerged forever; the rest of the partition goes on.
#[test]
fn drift_is_quarantined_with_its_reason() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 50);
    let dir = s.data_files()[0].parent().unwrap().to_path_buf();
    let odd = dir.join("odd.parquet");
    py(
        "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
         t = pa.table({'ts': pa.array([1704067200000], pa.timestamp('ms', tz='UTC')), 'trade_id': [1], 'price': [1.0], 'amount': [1.0], 'side': ['buy'], 'fee': [0.1]})\n\
         pq.write_table(t, sys.argv[1])",
        &[&odd.display().to_string()],
    );
    age(&odd, Duration::from_secs(3600));
    let r = s.json(&["scan"]);
    assert_eq!(r["drift"].as_array().unwrap().len(), 0, "{r}");
    let corrupt = r["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{r}");
    assert_eq!(corrupt[0]["path"], odd.display().to_string().as_str());
    let reason = corrupt[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("schema drift") && reason.contains("extra column `fee`"),
        "{reason}"
    );
    assert!(!odd.exists(), "moved out of the data tree");
    let moved = std::path::PathBuf::from(corrupt[0]["moved_to"].as_str().unwrap());
    assert!(moved.exists(), "{}", moved.display());
    assert!(
        r["added"].as_u64().unwrap() >= 1,
        "the healthy files are cataloged: {r}"
    );
    let c = s.json(&["compact"]);
    assert!(c["skipped_drift"].as_array().is_none_or(|a| a.is_empty()), "{c}");
}

/// Issue 29, rot: noise written into a compacted file's dictionary page, with
/// the footer intact. `verify` finds it by the checksum recorded at write
/// time, quarantines it with its reason, and marks the healthy files checked.
#[test]
fn verify_quarantines_a_file_that_rotted_at_rest() {
    let s = Sandbox::new();
    s.gen(1, 2, 2, 200);
    s.ok(&["scan"]);
    s.ok(&["compact"]);
    let files = s.data_files();
    assert!(files.len() >= 2, "{files:?}");
    let plan = s.json(&["verify", "--dry-run"]);
    assert_eq!(plan["files"].as_array().unwrap().len(), files.len(), "{plan}");
    // Overwrite 16 bytes inside the first column chunk that has a dictionary page.
    let bad = &files[0];
    let at = py(
        "import pyarrow.parquet as pq, sys\n\
         rg = pq.ParquetFile(sys.argv[1]).metadata.row_group(0)\n\
         cols = [rg.column(i) for i in range(rg.num_columns)]\n\
         c = next((c for c in cols if c.has_dictionary_page), cols[0])\n\
         start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset\n\
         print(start + c.total_compressed_size // 2)",
        &[bad.to_str().unwrap()],
    );
    let at: u64 = at.parse().unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(bad).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&[0x5a; 16]).unwrap();
    }
    let o = s.cmd(&["verify", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["mismatches"], 1, "{r}");
    assert_eq!(r["checked"].as_u64(), Some(files.len() as u64), "{r}");
    let f = &r["failures"][0];
    assert_eq!(f["outcome"], "quarantined", "{r}");
    assert!(f["file"]
        .as_str()
        .unwrap()
        .ends_with(bad.file_name().unwrap().to_str().unwrap()));
    assert!(f["reason"].as_str().unwrap().contains("checksum mismatch"), "{r}");
    assert!(!bad.exists(), "the rotten file is still live");
    assert_eq!(common::walk(&s.root().join("data/quarantine")).len(), 1);
    // Checked files are not read again until `verify.every` has passed.
    let again = s.json(&["verify"]);
    assert_eq!(again["checked"], 0, "{again}");
    assert_eq!(
        s.json(&["verify", "--all"])["checked"].as_u64(),
        Some(files.len() as u64 - 1)
    );
}

/// Issue 29: after the clock jumps forward, a file a collector is still
/// writing looks old. Held open for writing, it is left for the next scan,
/// not quarantined; once its writer is gone and it is still unreadable, it is.
#[test]
fn a_file_held_open_for_writing_is_not_quarantined_however_old_it_looks() {
    let s = Sandbox::new();
    s.gen(1, 1, 1, 50);
    let half = s.data_files()[0].with_file_name("half-written.parquet");
    std::fs::write(&half, b"PAR1 partial").unwrap();
    age(&half, Duration::from_secs(3600));
    let mut writer = std::process::Command::new("sh")
        .arg("-c")
        .arg("exec 3>>\"$0\"; exec sleep 60")
        .arg(&half)
        .spawn()
        .unwrap();
    common::wait_for("the writer to open the file", Duration::from_secs(10), || {
        std::fs::read_dir(format!("/proc/{}/fd", writer.id()))
            .map(|fds| {
                fds.flatten()
                    .any(|fd| std::fs::read_link(fd.path()).ok().as_deref() == Some(half.as_path()))
            })
            .unwrap_or(false)
    });
    let r = s.json(&["scan"]);
    writer.kill().unwrap();
    writer.wait().unwrap();
    assert_eq!(r["corrupt"].as_array().unwrap().len(), 0, "{r}");
    let skipped = r["skipped"].to_string();
    assert!(
        skipped.contains("half-written") && skipped.contains("holds it open for writing"),
        "{r}"
    );
    assert!(half.exists());
    let r = s.json(&["scan"]);
    assert_eq!(r["corrupt"].as_array().unwrap().len(), 1, "{r}");
    assert!(!half.exists());
}

/// A partition value mdkeep cannot write is refused by scan with the same
/// rule (quarantined, reported once); one it can write (a BitMEX index
/// `.BXBT`, a value with a space) is compacted and read back as itself by
/// DuckDB, pyarrow and polars. Nothing is stuck: compact and maintain exit 0.
#[test]
fn a_partition_value_the_engine_refuses_is_never_cataloged() {
    let s = Sandbox::new();
    s.gen(1, 2, 1, 20);
    let write = |symbol: &str, file: &str, first: u32| {
        let dir = s
            .hot()
            .join(format!("trades/exchange=bitmex/symbol={symbol}/date=2024-01-01"));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(file);
        py(
            "import pyarrow as pa, pyarrow.parquet as pq, sys\n\
             ids = list(range(int(sys.argv[2]), int(sys.argv[2]) + 10))\n\
             ts = [1704067200000 + i * 1000 for i in ids]\n\
             t = pa.table({'ts': pa.array(ts, pa.timestamp('ms', tz='UTC')), 'trade_id': ids, 'price': [1.0] * 10, 'amount': [2.0] * 10, 'side': ['buy'] * 10})\n\
             pq.write_table(t, sys.argv[1])",
            &[p.to_str().unwrap(), &first.to_string()],
        );
        age(&p, Duration::from_secs(3600));
        p
    };
    let kept = [".BXBT", "BTC USD"];
    let refused = [("a=b", "`=`"), ("..", "`..`")];
    for v in kept {
        // Two files, so compact has something to do.
        write(v, "p.parquet", 0);
        write(v, "q.parquet", 10);
    }
    let bad: Vec<_> = refused.iter().map(|(v, _)| write(v, "p.parquet", 0)).collect();

    let o = s.run(&["scan", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let corrupt = r["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 2, "{r}");
    for ((value, rule), path) in refused.iter().zip(&bad) {
        let c = corrupt
            .iter()
            .find(|c| c["path"] == path.display().to_string())
            .unwrap_or_else(|| panic!("{} not reported: {r}", path.display()));
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("refused partition value `{value}`")) && reason.contains(rule),
            "{reason}"
        );
        assert!(!path.exists(), "quarantined, not left in place");
        assert!(std::path::Path::new(c["moved_to"].as_str().unwrap()).exists(), "{c}");
    }
    // Reported once: the next scan has nothing to say.
    assert_eq!(s.json(&["scan"])["corrupt"].as_array().unwrap().len(), 0);

    let o = s.run(&["compact", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = s.run(&["maintain", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for v in kept {
        let dir = s
            .hot()
            .join(format!("trades/exchange=bitmex/symbol={v}/date=2024-01-01"));
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(files.len(), 1, "{v}: compacted into one file");
    }
    // Every reader finds both symbols, named as written, with all their rows.
    let got = py(
        "import duckdb, pyarrow.dataset as pds, polars as pl, sys\n\
         root = sys.argv[1] + '/trades'\n\
         d = duckdb.connect().execute('SET enable_progress_bar = false').execute(f\"SELECT string_agg(symbol || ':' || n, ',' ORDER BY symbol) FROM (SELECT symbol, count(*) AS n FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true) WHERE exchange = 'bitmex' GROUP BY symbol)\").fetchone()[0]\n\
         t = pds.dataset(root, format='parquet', partitioning='hive').to_table(filter=pds.field('exchange') == 'bitmex').group_by('symbol').aggregate([('ts', 'count')])\n\
         a = ','.join(f'{s}:{n}' for s, n in sorted(zip(t['symbol'].to_pylist(), t['ts_count'].to_pylist())))\n\
         q = pl.scan_parquet(root + '/**/*.parquet', hive_partitioning=True).filter(pl.col('exchange') == 'bitmex').group_by('symbol').len().sort('symbol').collect()\n\
         p = ','.join(f'{s}:{n}' for s, n in q.iter_rows())\n\
         print(d); print(a); print(p)",
        &[&s.hot().display().to_string()],
    );
    for line in got.lines() {
        assert_eq!(line, ".BXBT:20,BTC USD:20", "duckdb, pyarrow, polars:\n{got}");
    }
}
