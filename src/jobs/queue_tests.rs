//! The queue's lifecycle rules, on a real state database.

use super::*;

/// A state database `db` in `d` with one queued command job; its id.
fn one_job(d: &std::path::Path, db: &str) -> (Db, i64) {
    let cfg = crate::config::Config::load(d, None, std::iter::empty()).unwrap();
    let p = d.join("j.toml");
    std::fs::write(&p, "name = \"a\"\nframework = \"command\"\nargv = [\"true\"]\n").unwrap();
    let spec = JobSpec::load(&cfg, &p, &[]).unwrap();
    let db = Db::open(&d.join(db)).unwrap();
    let new = NewJob {
        spec: &spec,
        spec_dir: ".",
        reserved_bytes: 1 << 20,
        timeout_ms: 60_000,
        jobs_dir: &d.join("jobs"),
    };
    let id = submit(&db, &new).unwrap();
    (db, id)
}

#[test]
fn a_cancel_decided_from_a_stale_read_is_refused_and_cannot_start_a_second_run() {
    let d = tempfile::tempdir().unwrap();
    let (mut db, id) = one_job(d.path(), "state.db");
    let stale = get(&db, id).unwrap();
    assert_eq!(stale.life.state(), "queued");
    // The worker claims it between cancel's read and its write.
    assert_eq!(claim(&mut db, id, 1 << 20, "watchdog", "r1").unwrap(), Some(1));
    assert_eq!(
        request_cancel(&db, &stale).unwrap(),
        None,
        "the stale cancel changed nothing"
    );
    assert_eq!(get(&db, id).unwrap().life.state(), "running");
    assert!(retry(&db, id).is_err(), "a running job is not queued again");
    // Cancel reads again and asks the worker to stop the run.
    assert_eq!(cancel(&db, id).unwrap(), "running");
    assert!(get(&db, id).unwrap().cancel_requested);
    // A finish decided while queued does not overwrite the run either.
    let f = Finish {
        outcome: Outcome::Failed,
        exit_code: None,
        peak_bytes: None,
        message: "refused".into(),
    };
    assert!(!finish(&db, id, "queued", &f, None).unwrap());
    assert_eq!(get(&db, id).unwrap().life.state(), "running");
    // Its worker's finish is the one that counts; then a retry may queue it.
    assert!(finish(&db, id, "running", &f, None).unwrap());
    retry(&db, id).unwrap();
    assert_eq!(get(&db, id).unwrap().life.state(), "queued");
}

#[test]
fn a_new_state_database_never_hands_out_an_old_folder() {
    let d = tempfile::tempdir().unwrap();
    let (db, id) = one_job(d.path(), "a.db");
    let dir = get(&db, id).unwrap().dir;
    let name = std::path::Path::new(&dir)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(name.starts_with(&format!("{id}-")) && name.len() > 3, "{name}");
    std::fs::create_dir_all(&dir).unwrap();
    // A new state database starts at id 1 again, with a new folder.
    let (db2, id2) = one_job(d.path(), "b.db");
    assert_eq!(id2, id);
    assert_ne!(get(&db2, id2).unwrap().dir, dir);
}

#[test]
fn a_runs_end_in_any_state_releases_its_jobs_pins() {
    let d = tempfile::tempdir().unwrap();
    let (mut db, id) = one_job(d.path(), "state.db");
    use crate::engine::pins;
    for outcome in [Outcome::Interrupted, Outcome::Cancelled] {
        claim(&mut db, id, 1 << 20, "watchdog", "r1").unwrap().unwrap();
        pins::pin(&db.conn, "processed", "x.parquet", &pins::PinOwner::job(id)).unwrap();
        pins::pin(&db.conn, "processed", "y.parquet", &pins::PinOwner::manual("me")).unwrap();
        let f = Finish {
            outcome,
            exit_code: None,
            peak_bytes: None,
            message: "ended".into(),
        };
        assert!(finish(&db, id, "running", &f, None).unwrap());
        let left: Vec<String> = pins::list_pins(&db).unwrap().into_iter().map(|p| p.owner).collect();
        assert!(left.iter().all(|o| o == "me"), "{left:?}");
        retry(&db, id).unwrap();
    }
}
