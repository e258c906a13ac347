//! Scheduler tests on tokio's paused clock: overlap, missed runs, and the
//! loop's timing; the cron arithmetic itself is tested in `cron`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::shutdown::Shutdown;
use chrono::{DateTime, Utc};

use super::driver::{drive, Clock, Event, RunFuture};
use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn one(task: &str, expr: &str) -> Vec<(String, CronExpr)> {
    vec![(task.to_string(), CronExpr::parse(expr, None).unwrap())]
}

/// Drive `specs` for `secs` seconds of paused time; each run takes `run_for`.
async fn drive_for(
    specs: Vec<(String, CronExpr)>,
    persisted: BTreeMap<String, DateTime<Utc>>,
    start: DateTime<Utc>,
    deadline: Duration,
    run_for: Duration,
    secs: u64,
) -> Vec<Event> {
    let clock = Clock::starting_at(start);
    let (sched, initial) = Scheduler::new(specs, &persisted, clock.now(), deadline);
    let events = Arc::new(Mutex::new(Vec::new()));
    let shutdown = Shutdown::new();
    let ev = events.clone();
    let run = move |_: &str| -> RunFuture {
        Box::pin(async move {
            tokio::time::sleep(run_for).await;
            Ok("ok".to_string())
        })
    };
    let h = tokio::spawn(drive(
        sched,
        initial,
        clock,
        run,
        move |e| ev.lock().unwrap().push(e),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    shutdown.drain();
    h.await.unwrap();
    let out = events.lock().unwrap().clone();
    out
}

fn starts(ev: &[Event]) -> Vec<DateTime<Utc>> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Started { at, .. } => Some(*at),
            _ => None,
        })
        .collect()
}

fn skips(ev: &[Event], why_prefix: &str) -> usize {
    ev.iter()
        .filter(|e| matches!(e, Event::Skipped { why, .. } if why.starts_with(why_prefix)))
        .count()
}

#[tokio::test(start_paused = true)]
async fn runs_on_time_every_second_with_a_six_field_expression() {
    let t0 = utc("2024-01-01T00:00:00.500Z");
    let ev = drive_for(
        one("scan", "* * * * * *"),
        BTreeMap::new(),
        t0,
        Duration::ZERO,
        Duration::from_millis(100),
        5,
    )
    .await;
    let s = starts(&ev);
    assert_eq!(s.len(), 5, "{ev:?}");
    for (i, t) in s.iter().enumerate() {
        let want = utc("2024-01-01T00:00:01Z") + chrono::Duration::seconds(i as i64);
        assert!(
            (*t - want).num_milliseconds().abs() < 5,
            "run {i} at {t}, wanted {want}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_still_going_when_due_again_is_skipped_and_recorded() {
    let t0 = utc("2024-01-01T00:00:00Z");
    let ev = drive_for(
        one("compact", "* * * * * *"),
        BTreeMap::new(),
        t0,
        Duration::ZERO,
        Duration::from_millis(2500),
        10,
    )
    .await;
    let s = starts(&ev);
    // Started at 1 s, busy until 3.5 s; 2 and 3 are skipped; started at 4; ...
    assert!(s.len() >= 3 && s.len() <= 4, "{s:?}");
    for w in s.windows(2) {
        assert!(
            w[1] - w[0] >= chrono::Duration::milliseconds(2500),
            "runs overlapped: {s:?}"
        );
    }
    assert!(skips(&ev, "overlap") >= 5, "{ev:?}");
    // Every start was followed by its finish before the next start.
    let finished = ev.iter().filter(|e| matches!(e, Event::Finished { .. })).count();
    assert_eq!(finished, s.len());
}

#[tokio::test(start_paused = true)]
async fn a_missed_run_within_the_deadline_starts_once_not_a_burst() {
    // Hourly; the daemon was down from 07:00 to 10:20: 07:00, 08:00, 09:00 and
    // 10:00 were missed. Only the latest, 10:00, runs, once, at start.
    let now = utc("2024-01-01T10:20:00Z");
    let persisted = BTreeMap::from([("maintain".to_string(), utc("2024-01-01T07:00:00Z"))]);
    let ev = drive_for(
        one("maintain", "0 * * * *"),
        persisted,
        now,
        Duration::from_secs(3600),
        Duration::from_secs(1),
        60,
    )
    .await;
    let started: Vec<&Event> = ev.iter().filter(|e| matches!(e, Event::Started { .. })).collect();
    assert_eq!(started.len(), 1, "{ev:?}");
    match started[0] {
        Event::Started { scheduled, at, .. } => {
            assert_eq!(*scheduled, utc("2024-01-01T10:00:00Z"));
            assert!((*at - now).num_milliseconds().abs() < 5);
        }
        _ => unreachable!(),
    }
    // And the next one is the regular 11:00.
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Next { next: Some(n), .. } if *n == utc("2024-01-01T11:00:00Z"))));
}

#[tokio::test(start_paused = true)]
async fn a_missed_run_past_its_deadline_does_not_start() {
    // Daily at 03:00; down until 10:00; deadline 1 h: 03:00 is 7 h late.
    let now = utc("2024-01-01T10:00:00Z");
    let persisted = BTreeMap::from([("retention".to_string(), utc("2024-01-01T03:00:00Z"))]);
    let ev = drive_for(
        one("retention", "0 3 * * *"),
        persisted.clone(),
        now,
        Duration::from_secs(3600),
        Duration::from_secs(1),
        60,
    )
    .await;
    assert!(starts(&ev).is_empty(), "{ev:?}");
    assert_eq!(skips(&ev, "missed"), 1);
    // With an 8 h deadline the same run starts, once.
    let ev = drive_for(
        one("retention", "0 3 * * *"),
        persisted,
        now,
        Duration::from_secs(8 * 3600),
        Duration::from_secs(1),
        60,
    )
    .await;
    assert_eq!(starts(&ev).len(), 1, "{ev:?}");
}

#[tokio::test(start_paused = true)]
async fn weekday_one_is_monday_on_the_loop_too() {
    // Sunday 2024-01-07 23:59:58; "0 0 * * 1" is Monday 00:00, two seconds on.
    let t0 = utc("2024-01-07T23:59:58Z");
    let ev = drive_for(
        one("report", "0 0 * * 1"),
        BTreeMap::new(),
        t0,
        Duration::ZERO,
        Duration::ZERO,
        5,
    )
    .await;
    let s = starts(&ev);
    assert_eq!(s, vec![utc("2024-01-08T00:00:00Z")], "{ev:?}");
}

#[test]
fn a_due_task_moves_past_now_after_a_late_wake_up() {
    // Asleep for a minute (a suspended laptop): one run, not sixty.
    let t0 = utc("2024-01-01T00:00:00Z");
    let (mut s, _) = Scheduler::new(one("scan", "* * * * * *"), &BTreeMap::new(), t0, Duration::ZERO);
    let d = s.due(t0 + chrono::Duration::seconds(60));
    assert_eq!(d.len(), 1);
    assert_eq!(s.next_run("scan"), Some(t0 + chrono::Duration::seconds(61)));
}

#[tokio::test(start_paused = true)]
async fn berlin_dst_days_on_the_loop() {
    let berlin = |e: &str| {
        vec![(
            "maintain".to_string(),
            CronExpr::parse(e, Some("Europe/Berlin")).unwrap(),
        )]
    };
    // Spring forward, 2024-03-31: 02:30 does not exist; 01:30 CET and 03:30 CEST
    // are one real hour apart.
    let ev = drive_for(
        berlin("30 * * * *"),
        BTreeMap::new(),
        utc("2024-03-31T00:00:00Z"),
        Duration::ZERO,
        Duration::ZERO,
        3 * 3600,
    )
    .await;
    assert_eq!(
        starts(&ev),
        vec![
            utc("2024-03-31T00:30:00Z"),
            utc("2024-03-31T01:30:00Z"),
            utc("2024-03-31T02:30:00Z")
        ]
    );
    // Fall back, 2024-10-27: the daily 02:30 runs once, at 02:30 CEST.
    let ev = drive_for(
        berlin("30 2 * * *"),
        BTreeMap::new(),
        utc("2024-10-26T22:00:00Z"),
        Duration::ZERO,
        Duration::ZERO,
        6 * 3600,
    )
    .await;
    assert_eq!(starts(&ev), vec![utc("2024-10-27T00:30:00Z")]);
}
