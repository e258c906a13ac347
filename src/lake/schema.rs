//! The DuckLake 1.0 tables, exactly as DuckDB 1.5.5's `ducklake` extension
//! creates them in a SQLite catalog, and the DDL side of the lake: a new
//! lake (metadata, schema `main`) and one table per dataset.
//!
//! Owns the catalog ids (`next_catalog_id`, `next_file_id`) a snapshot
//! carries and how a dataset becomes a table: its Hive partition keys
//! (VARCHAR) then its columns, partitioned by the keys (identity), files
//! mapped by name (`ducklake_name_mapping`).

use rusqlite::{params, Connection, OptionalExtension};

use crate::config::{ColumnType, DatasetConfig};

/// The DuckLake spec version written; mdkeep never migrates a lake.
pub const VERSION: &str = "1.0";

/// Every table of the spec, as DuckDB creates them (types and all).
const DDL: &str = r#"
CREATE TABLE ducklake_metadata("key" VARCHAR NOT NULL, "value" VARCHAR NOT NULL, "scope" VARCHAR, scope_id BIGINT);
CREATE TABLE ducklake_snapshot(snapshot_id BIGINT PRIMARY KEY, snapshot_time VARCHAR, schema_version BIGINT, next_catalog_id BIGINT, next_file_id BIGINT);
CREATE TABLE ducklake_snapshot_changes(snapshot_id BIGINT PRIMARY KEY, changes_made VARCHAR, author VARCHAR, commit_message VARCHAR, commit_extra_info VARCHAR);
CREATE TABLE ducklake_schema(schema_id BIGINT PRIMARY KEY, schema_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_table(table_id BIGINT, table_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, table_name VARCHAR, path VARCHAR, path_is_relative BIGINT);
CREATE TABLE ducklake_view(view_id BIGINT, view_uuid VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT, schema_id BIGINT, view_name VARCHAR, dialect VARCHAR, "sql" VARCHAR, column_aliases VARCHAR);
CREATE TABLE ducklake_tag(object_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_column_tag(table_id BIGINT, column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, "key" VARCHAR, "value" VARCHAR);
CREATE TABLE ducklake_data_file(data_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, file_order BIGINT, path VARCHAR, path_is_relative BIGINT, file_format VARCHAR, record_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, row_id_start BIGINT, partition_id BIGINT, encryption_key VARCHAR, mapping_id BIGINT, partial_max BIGINT);
CREATE TABLE ducklake_file_column_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_file_variant_stats(data_file_id BIGINT, table_id BIGINT, column_id BIGINT, variant_path VARCHAR, shredded_type VARCHAR, column_size_bytes BIGINT, value_count BIGINT, null_count BIGINT, min_value VARCHAR, max_value VARCHAR, contains_nan BIGINT, extra_stats VARCHAR);
CREATE TABLE ducklake_delete_file(delete_file_id BIGINT PRIMARY KEY, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, format VARCHAR, delete_count BIGINT, file_size_bytes BIGINT, footer_size BIGINT, encryption_key VARCHAR, partial_max BIGINT);
CREATE TABLE ducklake_column(column_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT, table_id BIGINT, column_order BIGINT, column_name VARCHAR, column_type VARCHAR, initial_default VARCHAR, default_value VARCHAR, nulls_allowed BIGINT, parent_column BIGINT, default_value_type VARCHAR, default_value_dialect VARCHAR);
CREATE TABLE ducklake_table_stats(table_id BIGINT, record_count BIGINT, next_row_id BIGINT, file_size_bytes BIGINT);
CREATE TABLE ducklake_table_column_stats(table_id BIGINT, column_id BIGINT, contains_null BIGINT, contains_nan BIGINT, min_value VARCHAR, max_value VARCHAR, extra_stats VARCHAR);
CREATE TABLE ducklake_partition_info(partition_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_partition_column(partition_id BIGINT, table_id BIGINT, partition_key_index BIGINT, column_id BIGINT, "transform" VARCHAR);
CREATE TABLE ducklake_file_partition_value(data_file_id BIGINT, table_id BIGINT, partition_key_index BIGINT, partition_value VARCHAR);
CREATE TABLE ducklake_files_scheduled_for_deletion(data_file_id BIGINT, path VARCHAR, path_is_relative BIGINT, schedule_start VARCHAR);
CREATE TABLE ducklake_inlined_data_tables(table_id BIGINT, table_name VARCHAR, schema_version BIGINT);
CREATE TABLE ducklake_column_mapping(mapping_id BIGINT, table_id BIGINT, "type" VARCHAR);
CREATE TABLE ducklake_name_mapping(mapping_id BIGINT, column_id BIGINT, source_name VARCHAR, target_field_id BIGINT, parent_column BIGINT, is_partition BIGINT);
CREATE TABLE ducklake_schema_versions(begin_snapshot BIGINT, schema_version BIGINT, table_id BIGINT);
CREATE TABLE ducklake_macro(schema_id BIGINT, macro_id BIGINT, macro_name VARCHAR, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_macro_impl(macro_id BIGINT, impl_id BIGINT, dialect VARCHAR, "sql" VARCHAR, "type" VARCHAR);
CREATE TABLE ducklake_macro_parameters(macro_id BIGINT, impl_id BIGINT, column_id BIGINT, parameter_name VARCHAR, parameter_type VARCHAR, default_value VARCHAR, default_value_type VARCHAR);
CREATE TABLE ducklake_sort_info(sort_id BIGINT, table_id BIGINT, begin_snapshot BIGINT, end_snapshot BIGINT);
CREATE TABLE ducklake_sort_expression(sort_id BIGINT, table_id BIGINT, sort_key_index BIGINT, expression VARCHAR, dialect VARCHAR, sort_direction VARCHAR, null_order VARCHAR);
-- Indexes the spec allows; they make mdkeep's diff and expiry cheap.
CREATE INDEX mdkeep_data_file_live ON ducklake_data_file(end_snapshot, table_id);
CREATE INDEX mdkeep_data_file_path ON ducklake_data_file(path);
CREATE INDEX mdkeep_file_stats ON ducklake_file_column_stats(data_file_id);
CREATE INDEX mdkeep_file_partition ON ducklake_file_partition_value(data_file_id);
"#;

/// The ids the latest snapshot carries forward.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub snapshot: i64,
    pub schema_version: i64,
    pub next_catalog_id: i64,
    pub next_file_id: i64,
}

/// The newest snapshot's ids; `None` in a lake with no snapshot.
pub fn latest(conn: &Connection) -> rusqlite::Result<Option<Ids>> {
    conn.query_row(
        "SELECT snapshot_id, schema_version, next_catalog_id, next_file_id FROM ducklake_snapshot
         ORDER BY snapshot_id DESC LIMIT 1",
        [],
        |r| {
            Ok(Ids {
                snapshot: r.get(0)?,
                schema_version: r.get(1)?,
                next_catalog_id: r.get(2)?,
                next_file_id: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Record snapshot `ids.snapshot` with what it changed.
pub fn insert_snapshot(conn: &Connection, ids: &Ids, changes: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO ducklake_snapshot VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            ids.snapshot,
            snapshot_time(crate::time::now_ns()),
            ids.schema_version,
            ids.next_catalog_id,
            ids.next_file_id
        ],
    )?;
    conn.execute(
        "INSERT INTO ducklake_snapshot_changes VALUES (?1, ?2, NULL, 'mdkeep', NULL)",
        params![ids.snapshot, changes],
    )?;
    Ok(())
}

/// A snapshot time as DuckDB writes it (fixed width, so it sorts as text).
pub fn snapshot_time(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// Create an empty lake: the tables, its metadata and snapshot 0 with schema `main`.
pub fn create(conn: &Connection, data_path: &str) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)?;
    let meta = [
        ("version", VERSION.to_string()),
        ("created_by", format!("mdkeep {}", env!("CARGO_PKG_VERSION"))),
        ("data_path", data_path.to_string()),
        ("encrypted", "false".to_string()),
    ];
    for (k, v) in meta {
        conn.execute(
            "INSERT INTO ducklake_metadata (key, value) VALUES (?1, ?2)",
            params![k, v],
        )?;
    }
    conn.execute(
        "INSERT INTO ducklake_schema VALUES (0, ?1, 0, NULL, 'main', 'main/', 1)",
        [uuid()],
    )?;
    let ids = Ids {
        snapshot: 0,
        schema_version: 0,
        next_catalog_id: 1,
        next_file_id: 0,
    };
    insert_snapshot(conn, &ids, "created_schema:\"main\"")
}

/// A dataset's table columns: the partition keys, then its own columns.
pub fn table_columns(ds: &DatasetConfig) -> Vec<(String, &'static str)> {
    let mut cols: Vec<(String, &'static str)> = partition_keys(ds).into_iter().map(|k| (k, "varchar")).collect();
    cols.extend(ds.columns.iter().map(|c| (c.name.clone(), type_name(c.ty))));
    cols
}

/// The Hive partition columns of a dataset, outermost first.
pub fn partition_keys(ds: &DatasetConfig) -> Vec<String> {
    let mut keys = ds.partition_by.clone();
    keys.push(ds.time_partition.clone());
    keys
}

/// The DuckLake type of a config column. mdkeep writes UTC timestamps,
/// which DuckDB reads as `timestamptz`.
pub fn type_name(t: ColumnType) -> &'static str {
    match t {
        ColumnType::Timestamp(_) => "timestamptz",
        ColumnType::Int64 => "int64",
        ColumnType::Int32 => "int32",
        ColumnType::Float64 => "float64",
        ColumnType::Float32 => "float32",
        ColumnType::Utf8 => "varchar",
        ColumnType::Bool => "boolean",
    }
}

/// Create `ds`'s table in snapshot `ids.snapshot` (ids advance). Returns
/// the `created_table` change.
pub fn create_table(conn: &Connection, ids: &mut Ids, ds: &DatasetConfig) -> rusqlite::Result<String> {
    let s = ids.snapshot;
    let table_id = ids.next_catalog_id;
    let partition_id = table_id + 1;
    ids.next_catalog_id += 2;
    let mapping_id = ids.next_file_id;
    ids.next_file_id += 1;
    conn.execute(
        "INSERT INTO ducklake_table VALUES (?1, ?2, ?3, NULL, 0, ?4, ?5, 1)",
        params![table_id, uuid(), s, ds.name, format!("{}/", ds.name)],
    )?;
    let cols = table_columns(ds);
    let keys = partition_keys(ds).len();
    for (i, (name, ty)) in cols.iter().enumerate() {
        let id = i as i64 + 1;
        conn.execute(
            "INSERT INTO ducklake_column VALUES (?1, ?2, NULL, ?3, ?1, ?4, ?5, NULL, 'NULL', 1, NULL, 'literal', 'duckdb')",
            params![id, s, table_id, name, ty],
        )?;
    }
    conn.execute(
        "INSERT INTO ducklake_partition_info VALUES (?1, ?2, ?3, NULL)",
        params![partition_id, table_id, s],
    )?;
    for k in 0..keys {
        conn.execute(
            "INSERT INTO ducklake_partition_column VALUES (?1, ?2, ?3, ?4, 'identity')",
            params![partition_id, table_id, k as i64, k as i64 + 1],
        )?;
    }
    conn.execute(
        "INSERT INTO ducklake_column_mapping VALUES (?1, ?2, 'map_by_name')",
        params![mapping_id, table_id],
    )?;
    // The file's own columns first, then the partition keys its path gives.
    let order = (keys..cols.len()).chain(0..keys);
    for (n, i) in order.enumerate() {
        conn.execute(
            "INSERT INTO ducklake_name_mapping VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
            params![mapping_id, n as i64, cols[i].0, i as i64 + 1, (i < keys) as i64],
        )?;
    }
    conn.execute("INSERT INTO ducklake_table_stats VALUES (?1, 0, 0, 0)", [table_id])?;
    conn.execute(
        "INSERT INTO ducklake_schema_versions VALUES (?1, ?2, ?3)",
        params![s, ids.schema_version, table_id],
    )?;
    Ok(format!("created_table:\"main\".\"{}\"", ds.name))
}

/// A random UUID (version 4), from the kernel's generator.
pub fn uuid() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        let t = crate::time::now_ns() as u128 ^ ((std::process::id() as u128) << 64);
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
