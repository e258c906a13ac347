use super::*;

const MIN: i64 = 60_000_000_000;

fn db() -> (tempfile::TempDir, Db) {
    let d = tempfile::tempdir().unwrap();
    let db = Db::open(&d.path().join("state/state.db")).unwrap();
    (d, db)
}

fn cond(key: &str) -> Condition {
    Condition::new(key.into(), rules::MAINTAIN, key.into(), format!("{key} is broken"))
}

fn states(ns: &[Notice]) -> Vec<(String, AlertState)> {
    ns.iter().map(|n| (n.key.clone(), n.state)).collect()
}

/// Reconcile, then record every notice as delivered.
fn step(db: &Db, conds: &[Condition], now: i64) -> Vec<(String, AlertState)> {
    let out = reconcile(db, conds, &[rules::MAINTAIN], Duration::from_secs(12 * 3600), now).unwrap();
    for n in &out {
        match n.state {
            AlertState::Resolved => state::sent_resolved(db, &n.key, now).unwrap(),
            _ => state::sent_firing(db, &n.key, now).unwrap(),
        }
    }
    states(&out)
}

#[test]
fn an_alert_fires_once_repeats_after_the_interval_and_resolves_once() {
    let (_d, db) = db();
    let t0 = 1_000 * MIN;
    let c = [cond("maintain")];
    assert_eq!(step(&db, &c, t0), [("maintain".to_string(), AlertState::Firing)]);
    assert!(step(&db, &c, t0 + 5 * MIN).is_empty(), "held: nothing twice");
    assert_eq!(
        step(&db, &c, t0 + 12 * 60 * MIN),
        [("maintain".to_string(), AlertState::Firing)],
        "repeated after alerts.repeat"
    );
    assert_eq!(
        step(&db, &[], t0 + 13 * 60 * MIN),
        [("maintain".to_string(), AlertState::Resolved)]
    );
    assert!(step(&db, &[], t0 + 14 * 60 * MIN).is_empty(), "resolved once");
    assert_eq!(
        step(&db, &c, t0 + 15 * 60 * MIN),
        [("maintain".to_string(), AlertState::Firing)],
        "back again"
    );
}

#[test]
fn a_held_condition_fires_after_its_hold_and_one_shots_never_repeat() {
    let (_d, db) = db();
    let t0 = 1_000 * MIN;
    let mut store = cond("store:archive");
    store.hold = Duration::from_secs(15 * 60);
    assert!(step(&db, std::slice::from_ref(&store), t0).is_empty());
    assert!(step(&db, std::slice::from_ref(&store), t0 + 10 * MIN).is_empty());
    assert_eq!(step(&db, std::slice::from_ref(&store), t0 + 16 * MIN).len(), 1);
    // Ended before its hold: forgotten, nothing to resolve.
    let mut blip = cond("store:blip");
    blip.hold = Duration::from_secs(15 * 60);
    step(&db, std::slice::from_ref(&blip), t0);
    assert!(step(&db, &[], t0 + MIN).iter().all(|(k, _)| k != "store:blip"));
    let mut job = cond("job:7");
    job.once = true;
    job.repeat = false;
    let j = std::slice::from_ref(&job);
    assert_eq!(step(&db, j, t0), [("job:7".to_string(), AlertState::Firing)]);
    assert!(step(&db, j, t0 + 24 * 60 * MIN).is_empty(), "a one-shot is sent once");
    assert!(step(&db, &[], t0 + 25 * 60 * MIN).iter().all(|(k, _)| k != "job:7"));
}

#[test]
fn an_undelivered_alert_is_tried_again_and_a_rule_out_of_scope_is_left_alone() {
    let (_d, db) = db();
    let t0 = 1_000 * MIN;
    let c = [cond("maintain")];
    let repeat = Duration::from_secs(12 * 3600);
    // Not recorded as sent: due again next time.
    assert_eq!(reconcile(&db, &c, &[rules::MAINTAIN], repeat, t0).unwrap().len(), 1);
    assert_eq!(
        reconcile(&db, &c, &[rules::MAINTAIN], repeat, t0 + MIN).unwrap().len(),
        1
    );
    state::sent_firing(&db, "maintain", t0 + MIN).unwrap();
    // Not evaluated this time: neither resolved nor repeated.
    assert!(reconcile(&db, &[], &[], repeat, t0 + 2 * MIN).unwrap().is_empty());
    assert_eq!(state::list(&db, 0).unwrap()[0].state, "firing");
}
