//! One lake snapshot: the rows a sync writes in its transaction.
//!
//! Owns the write side of a snapshot: tables for new datasets, ending the
//! removed files (`end_snapshot`), the new files with their partition
//! values and column stats, the running table stats (`ducklake_table_stats`,
//! and `ducklake_table_column_stats`, only ever widened, since readers of
//! older snapshots rely on them too), and the snapshot row itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{self, Ids};
use super::stats::{ColStats, FileStats};
use super::{Live, Table};
use crate::catalog::ReadableFile;
use crate::config::Config;

/// Write snapshot (latest + 1) in `tx`; returns its id.
pub(super) fn write(
    tx: &Connection,
    cfg: &Config,
    mut tables: HashMap<String, Table>,
    missing: &[&str],
    removed: &[Live],
    added: &[(&ReadableFile, &str, FileStats)],
) -> rusqlite::Result<i64> {
    let mut ids = schema::latest(tx)?.unwrap_or(Ids {
        snapshot: -1,
        schema_version: 0,
        next_catalog_id: 1,
        next_file_id: 0,
    });
    ids.snapshot += 1;
    let mut changes = Vec::new();
    if !missing.is_empty() {
        ids.schema_version += 1;
    }
    for name in missing {
        let Ok(ds) = cfg.dataset(name) else { continue };
        changes.push(schema::create_table(tx, &mut ids, ds)?);
        if let Some(t) = super::tables(tx)?.remove(*name) {
            tables.insert(name.to_string(), t);
        }
    }
    // (rows, bytes) each table gains or loses.
    let mut delta: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let (mut ended, mut inserted) = (BTreeSet::new(), BTreeSet::new());
    for l in removed {
        tx.execute(
            "UPDATE ducklake_data_file SET end_snapshot = ?2 WHERE data_file_id = ?1",
            params![l.id, ids.snapshot],
        )?;
        let d = delta.entry(l.table_id).or_default();
        d.0 -= l.rows;
        d.1 -= l.bytes;
        ended.insert(l.table_id);
    }
    for (w, path, st) in added {
        let Some(t) = tables.get_mut(&w.dataset) else { continue };
        let id = ids.next_file_id;
        ids.next_file_id += 1;
        tx.execute(
            "INSERT INTO ducklake_data_file VALUES (?1, ?2, ?3, NULL, NULL, ?4, 0, 'parquet', ?5, ?6, ?7, ?8, ?9, NULL, ?10, NULL)",
            params![
                id,
                t.id,
                ids.snapshot,
                path,
                st.rows,
                w.bytes as i64,
                st.footer_size,
                t.next_row_id,
                t.partition_id,
                t.mapping_id
            ],
        )?;
        t.next_row_id += st.rows;
        super::snapshot::record_arrival(tx, id, w.arrival_ns)?;
        for (k, (_, v)) in crate::layout::partition_values(&w.partition).iter().enumerate() {
            tx.execute(
                "INSERT INTO ducklake_file_partition_value VALUES (?1, ?2, ?3, ?4)",
                params![id, t.id, k as i64, v],
            )?;
        }
        for c in &st.columns {
            tx.execute(
                "INSERT INTO ducklake_file_column_stats VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)",
                params![
                    id,
                    t.id,
                    c.column_id,
                    c.size,
                    c.value_count,
                    c.null_count,
                    c.min,
                    c.max,
                    c.contains_nan.map(i64::from)
                ],
            )?;
            widen(tx, t.id, c, cfg.dataset(&w.dataset).ok())?;
        }
        let d = delta.entry(t.id).or_default();
        d.0 += st.rows;
        d.1 += w.bytes as i64;
        inserted.insert(t.id);
    }
    for t in tables.values() {
        let (rows, bytes) = delta.get(&t.id).copied().unwrap_or_default();
        tx.execute(
            "UPDATE ducklake_table_stats SET record_count = record_count + ?2, next_row_id = ?3,
                    file_size_bytes = file_size_bytes + ?4 WHERE table_id = ?1",
            params![t.id, rows, t.next_row_id, bytes],
        )?;
    }
    changes.extend(inserted.iter().map(|t| format!("inserted_into_table:{t}")));
    changes.extend(ended.iter().map(|t| format!("deleted_from_table:{t}")));
    schema::insert_snapshot(tx, &ids, &changes.join(","))?;
    Ok(ids.snapshot)
}

/// A table column's kept stats: contains_null, contains_nan, min, max.
type TableStats = (i64, Option<i64>, Option<String>, Option<String>);

/// Widen a table's column stats to cover a new file's (never narrowed:
/// older snapshots' files are still inside them). An unknown bound makes
/// the table's unknown for good.
fn widen(
    tx: &Connection,
    table_id: i64,
    c: &ColStats,
    ds: Option<&crate::config::DatasetConfig>,
) -> rusqlite::Result<()> {
    let ty = ds
        .and_then(|ds| schema::table_columns(ds).get(c.column_id as usize - 1).map(|(_, t)| *t))
        .unwrap_or("varchar");
    let has_values = c.value_count > 0;
    let (min, max) = if has_values {
        (c.min.clone(), c.max.clone())
    } else {
        (None, None)
    };
    let old: Option<TableStats> = tx
        .query_row(
            "SELECT contains_null, contains_nan, min_value, max_value FROM ducklake_table_column_stats
             WHERE table_id = ?1 AND column_id = ?2",
            params![table_id, c.column_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((null, nan, omin, omax)) = old else {
        tx.execute(
            "INSERT INTO ducklake_table_column_stats VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
            params![
                table_id,
                c.column_id,
                (c.null_count > 0) as i64,
                c.contains_nan.map(i64::from),
                min,
                max
            ],
        )?;
        return Ok(());
    };
    let null = (null != 0 || c.null_count > 0) as i64;
    let nan = match (nan, c.contains_nan) {
        (Some(a), Some(b)) => Some((a != 0 || b) as i64),
        _ => None,
    };
    let (min, max) = if !has_values {
        (omin, omax)
    } else {
        (pick(ty, omin, min, true), pick(ty, omax, max, false))
    };
    tx.execute(
        "UPDATE ducklake_table_column_stats SET contains_null = ?3, contains_nan = ?4, min_value = ?5, max_value = ?6
         WHERE table_id = ?1 AND column_id = ?2",
        params![table_id, c.column_id, null, nan, min, max],
    )?;
    Ok(())
}

/// The wider of two bounds of type `ty`; unknown (`None`) wins.
fn pick(ty: &str, a: Option<String>, b: Option<String>, lo: bool) -> Option<String> {
    let (a, b) = (a?, b?);
    let a_first = match ty {
        "int64" | "int32" => match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(x), Ok(y)) => x <= y,
            _ => return None,
        },
        "float64" | "float32" => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x <= y,
            _ => return None,
        },
        _ => a <= b,
    };
    Some(if a_first == lo { a } else { b })
}
