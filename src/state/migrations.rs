//! Schema history. Append only: never edit an entry that has shipped, add a
//! new one. Entry N (1-based) brings the database to `user_version` N.

pub const MIGRATIONS: &[&str] = &[
    // 1: the catalog of Parquet files, the quarantine ledger, the action history.
    r#"
    CREATE TABLE files (
        id          INTEGER PRIMARY KEY,
        tier        TEXT    NOT NULL,
        relpath     TEXT    NOT NULL,   -- under the tier root
        dataset     TEXT    NOT NULL,
        partition   TEXT    NOT NULL,   -- col=value/col=value, outermost first
        rows        INTEGER NOT NULL,
        bytes       INTEGER NOT NULL,
        min_ts      INTEGER,            -- ns since epoch, NULL when unknown
        max_ts      INTEGER,
        schema_fp   TEXT    NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        drift       TEXT,               -- why the schema differs, NULL when it fits
        misfiled    INTEGER NOT NULL DEFAULT 0,
        scanned_at  INTEGER NOT NULL,
        UNIQUE (tier, relpath)
    );
    CREATE INDEX files_by_partition ON files (dataset, partition, tier);

    CREATE TABLE quarantine (
        id          INTEGER PRIMARY KEY,
        tier        TEXT    NOT NULL,
        relpath     TEXT    NOT NULL,
        moved_to    TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        bytes       INTEGER NOT NULL,
        at          INTEGER NOT NULL
    );

    CREATE TABLE history (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        action      TEXT    NOT NULL,   -- ingest, quarantine, compact, tier, evict, ...
        dataset     TEXT,
        partition   TEXT,
        path        TEXT,
        rows        INTEGER,
        bytes       INTEGER,
        reason      TEXT
    );
    CREATE INDEX history_by_time ON history (at);
    "#,
    // 2: compaction: a per-file "written sorted and deduplicated by mdkeep" flag,
    // the crash journal, pins and trash.
    r#"
    ALTER TABLE files ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE journal (
        id          INTEGER PRIMARY KEY,
        kind        TEXT    NOT NULL,   -- compact, tier, ...
        dataset     TEXT    NOT NULL,
        tier        TEXT    NOT NULL,   -- where inputs live
        out_tier    TEXT    NOT NULL,   -- where outputs go
        series      TEXT    NOT NULL,
        state       TEXT    NOT NULL,   -- writing, committed, done, rolled_back
        pid         INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE journal_inputs (
        journal_id  INTEGER NOT NULL REFERENCES journal (id) ON DELETE CASCADE,
        relpath     TEXT    NOT NULL,
        rows        INTEGER NOT NULL,
        bytes       INTEGER NOT NULL
    );
    CREATE TABLE journal_outputs (
        journal_id  INTEGER NOT NULL REFERENCES journal (id) ON DELETE CASCADE,
        relpath     TEXT    NOT NULL
    );

    CREATE TABLE pins (
        id          INTEGER PRIMARY KEY,
        tier        TEXT    NOT NULL,
        relpath     TEXT    NOT NULL,
        owner       TEXT    NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX pins_by_file ON pins (tier, relpath);

    CREATE TABLE trash (
        id          INTEGER PRIMARY KEY,
        tier        TEXT    NOT NULL,   -- where the file used to live
        relpath     TEXT    NOT NULL,
        path        TEXT    NOT NULL,   -- where it waits now
        bytes       INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        released_at INTEGER             -- when its last pin went; deleted after the grace period
    );
    "#,
    // 3: named locks (one maintenance run at a time, CLI or daemon).
    r#"
    CREATE TABLE locks (
        name         TEXT    PRIMARY KEY,
        pid          INTEGER NOT NULL,
        acquired_at  INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    "#,
    // 4: candles built from trades partitions, verified; retention checks them.
    r#"
    CREATE TABLE rollups (
        dataset      TEXT    NOT NULL,
        partition    TEXT    NOT NULL,
        timeframe    TEXT    NOT NULL,
        into_dataset TEXT    NOT NULL,
        source_rows  INTEGER NOT NULL,   -- cataloged rows of the partition when rolled up
        trades       INTEGER NOT NULL,   -- distinct trades aggregated
        amount_sum   REAL    NOT NULL,
        candles      INTEGER NOT NULL,
        volume_sum   REAL    NOT NULL,
        done_at      INTEGER NOT NULL,
        PRIMARY KEY (dataset, partition, timeframe)
    );
    "#,
    // 5: the backtest job queue and its event log.
    r#"
    CREATE TABLE jobs (
        id               INTEGER PRIMARY KEY,
        name             TEXT    NOT NULL,
        framework        TEXT    NOT NULL,
        grp              TEXT    NOT NULL,   -- framework, or a command job's group
        spec             TEXT    NOT NULL,   -- JSON; secrets by name only
        spec_dir         TEXT    NOT NULL,
        fingerprint      TEXT    NOT NULL,
        priority         INTEGER NOT NULL,
        retries          INTEGER NOT NULL,
        attempts         INTEGER NOT NULL DEFAULT 0,
        state            TEXT    NOT NULL,
        reserved_bytes   INTEGER NOT NULL,
        peak_bytes       INTEGER,
        limit_mechanism  TEXT,
        exit_code        INTEGER,
        pgid             INTEGER,
        worker_pid       INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        timeout_ms       INTEGER NOT NULL,
        message          TEXT,
        dir              TEXT    NOT NULL,
        queued_at        INTEGER NOT NULL,
        started_at       INTEGER,
        finished_at      INTEGER
    );
    CREATE INDEX jobs_by_state ON jobs (state, grp);
    CREATE TABLE job_events (
        id      INTEGER PRIMARY KEY,
        job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        at      INTEGER NOT NULL,
        state   TEXT    NOT NULL,
        message TEXT    NOT NULL
    );
    "#,
    // 6: the daemon's schedules, and memory reserved by maintenance from the jobs' budget.
    r#"
    CREATE TABLE schedules (
        task             TEXT PRIMARY KEY,
        next_run         INTEGER,
        last_start       INTEGER,
        last_end         INTEGER,
        last_result      TEXT,
        last_success     INTEGER,
        last_duration_ms INTEGER,
        last_skip        TEXT,
        failures         INTEGER NOT NULL DEFAULT 0,
        skipped          INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE reservations (
        owner  TEXT PRIMARY KEY,
        pid    INTEGER NOT NULL,
        bytes  INTEGER NOT NULL,
        at     INTEGER NOT NULL
    );
    "#,
    // 7: daily usage per dataset and tier, for the report's growth and forecast.
    r#"
    CREATE TABLE usage_daily (
        day      TEXT    NOT NULL,   -- YYYY-MM-DD (UTC)
        dataset  TEXT    NOT NULL,
        tier     TEXT    NOT NULL,
        files    INTEGER NOT NULL,
        rows     INTEGER NOT NULL,
        bytes    INTEGER NOT NULL,
        PRIMARY KEY (day, dataset, tier)
    );
    "#,
    // 8: a job's Slurm id, when the Slurm runner submitted it.
    r#"
    ALTER TABLE jobs ADD COLUMN slurm_id INTEGER;
    "#,
    // 9: the report's per-file facts, valid while a file's size and mtime hold.
    r#"
    CREATE TABLE report_uncompressed (
        tier         TEXT    NOT NULL,
        relpath      TEXT    NOT NULL,
        bytes        INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        uncompressed INTEGER NOT NULL,
        PRIMARY KEY (tier, relpath)
    );
    CREATE TABLE report_buckets (
        tier      TEXT    NOT NULL,
        relpath   TEXT    NOT NULL,
        bytes     INTEGER NOT NULL,
        mtime_ns  INTEGER NOT NULL,
        cadence   INTEGER NOT NULL,
        buckets   BLOB    NOT NULL,   -- zstd of little-endian i64 deltas
        PRIMARY KEY (tier, relpath)
    );
    "#,
    // 10: who wrote a journal (the data lock's run id, never reused) and
    // each input's identity when it was read, so only that file is retired.
    r#"
    ALTER TABLE journal ADD COLUMN owner TEXT;
    ALTER TABLE journal_inputs ADD COLUMN dev INTEGER;
    ALTER TABLE journal_inputs ADD COLUMN ino INTEGER;
    ALTER TABLE journal_inputs ADD COLUMN mtime_ns INTEGER;
    "#,
    // 11: data quality findings per partition, and which partitions were checked.
    r#"
    CREATE TABLE quality_findings (
        dataset   TEXT    NOT NULL,
        partition TEXT    NOT NULL,
        kind      TEXT    NOT NULL,   -- quality::Kind's serde name
        rows      INTEGER NOT NULL,
        first_ts  INTEGER NOT NULL,   -- ns since the epoch
        example   TEXT    NOT NULL,
        detail    TEXT,
        origin    TEXT    NOT NULL,   -- rewrite, check or read
        at        INTEGER NOT NULL,
        file      TEXT,               -- where the example came from or is now
        PRIMARY KEY (dataset, partition, kind)
    );
    CREATE TABLE quality_checked (
        dataset   TEXT    NOT NULL,
        partition TEXT    NOT NULL,
        rows      INTEGER NOT NULL,
        at        INTEGER NOT NULL,
        PRIMARY KEY (dataset, partition)
    );
    "#,
    // 12: the data a job was handed: its fingerprint, rows and manifest (export::manifest).
    r#"
    ALTER TABLE jobs ADD COLUMN data_fingerprint TEXT;
    ALTER TABLE jobs ADD COLUMN data_rows INTEGER;
    ALTER TABLE jobs ADD COLUMN data_manifest TEXT;
    "#,
    // 13: when a file's rows arrived (its mtime when first cataloged; a
    // rewrite's output carries its inputs' latest), so "newest" survives
    // rewrites; the checksum of what mdkeep wrote, for `verify`.
    r#"
    ALTER TABLE files ADD COLUMN arrival_ns INTEGER;
    UPDATE files SET arrival_ns = mtime_ns;
    -- CRC-32 of a file mdkeep wrote (NULL: a collector's file, or an object),
    -- and when `verify` last read it whole.
    ALTER TABLE files ADD COLUMN checksum INTEGER;
    ALTER TABLE files ADD COLUMN verified_at INTEGER;
    "#,
    // 14: what could not be finished yet (a journal's retire or roll-back, a
    // trash purge), with its reason: retried every run, never blocking others.
    r#"
    CREATE TABLE deferred (
        kind    TEXT    NOT NULL,   -- journal or trash
        id      INTEGER NOT NULL,   -- the journal's or the trash entry's id
        step    TEXT    NOT NULL,   -- retire, roll back, purge
        file    TEXT    NOT NULL,
        reason  TEXT    NOT NULL,
        since   INTEGER NOT NULL,   -- first failure
        at      INTEGER NOT NULL,   -- last attempt
        PRIMARY KEY (kind, id)
    );
    "#,
    // 15: rollups that failed (other than by a bad input, which is
    // quarantined): retention lists the partitions they keep, and why.
    r#"
    CREATE TABLE rollup_failures (
        dataset     TEXT    NOT NULL,
        partition   TEXT    NOT NULL,
        source_rows INTEGER NOT NULL,   -- cataloged rows of the partition when it failed
        attempts    INTEGER NOT NULL,   -- failed runs in a row on those rows
        reason      TEXT    NOT NULL,   -- the last failure's
        first_at    INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        PRIMARY KEY (dataset, partition)
    );
    "#,
    // 16: who holds a pin (`job:<id>` or `run:<run id>`; NULL for a manual
    // pin), and the start times that tell a job's worker, its process group
    // and a reservation's owner from a process that reused the pid.
    r#"
    ALTER TABLE pins ADD COLUMN holder TEXT;
    UPDATE pins SET holder = owner WHERE owner LIKE 'job:%';
    CREATE INDEX pins_by_holder ON pins (holder);
    ALTER TABLE jobs ADD COLUMN worker_run TEXT;
    ALTER TABLE jobs ADD COLUMN pgid_start INTEGER;
    ALTER TABLE reservations ADD COLUMN pid_start INTEGER;
    "#,
    // 17: alerts (crate::alerts::state): each condition's alert, when it
    // started, was last sent and ended; each target's health; marks (how far
    // the one-shot rules have looked).
    r#"
    CREATE TABLE alerts (
        key           TEXT PRIMARY KEY,   -- rule:subject, e.g. job:12, store:archive
        rule          TEXT    NOT NULL,
        subject       TEXT    NOT NULL,
        message       TEXT    NOT NULL,   -- the latest text of the condition
        since         INTEGER NOT NULL,   -- ns: when the condition was first seen
        once          INTEGER NOT NULL DEFAULT 0,  -- one-shot: never repeated, never "resolved"
        fired_at      INTEGER,            -- first delivered; NULL while held or undelivered
        last_sent     INTEGER,
        sends         INTEGER NOT NULL DEFAULT 0,
        resolved_at   INTEGER,            -- the condition ended
        resolved_sent INTEGER             -- "resolved" delivered (or nothing to send)
    );
    CREATE INDEX alerts_open ON alerts (resolved_at);
    CREATE TABLE alert_targets (
        target       TEXT PRIMARY KEY,
        failures     INTEGER NOT NULL DEFAULT 0,   -- consecutive failed deliveries
        last_error   TEXT,                         -- never a URL or a token
        last_ok      INTEGER,
        last_attempt INTEGER
    );
    CREATE TABLE alert_marks (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    "#,
    // 18: the lake snapshot a job's export read (`data.snapshot`, `jobs rerun`).
    r#"
    ALTER TABLE jobs ADD COLUMN data_snapshot INTEGER;
    "#,
];
