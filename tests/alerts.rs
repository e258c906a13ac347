//! Alerts end to end: a local HTTP receiver for the webhook, ntfy and
//! Telegram targets (and a command target), `alerts test`, rules driven by
//! `alerts check` and by the daemon (a maintain failing against a closed
//! store, a job killed at its limit, a forecast under its threshold), a
//! restart while firing, and a receiver that hangs.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::s3::S3Server;
use common::{stop, wait_for, Sandbox};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Fail,
    Hang,
}

#[derive(Clone, Debug)]
struct Req {
    head: String,
    body: String,
}

/// A local HTTP receiver: records each request, answers as `mode` says.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Req>>>,
}

impl Receiver {
    fn start(mode: Mode) -> Receiver {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let g = g.clone();
                std::thread::spawn(move || serve(&mut c, mode, &g));
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.got.lock().unwrap().clone()
    }

    /// The JSON bodies of the webhook's requests.
    fn bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect()
    }

    /// Webhook bodies of `rule` in `state`.
    fn of(&self, rule: &str, state: &str) -> Vec<Value> {
        self.bodies()
            .into_iter()
            .filter(|b| b["rule"] == rule && b["state"] == state)
            .collect()
    }
}

fn serve(c: &mut TcpStream, mode: Mode, got: &Mutex<Vec<Req>>) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    got.lock().unwrap().push(Req { head, body });
    let answer: &[u8] = match mode {
        Mode::Ok => b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Mode::Fail => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        Mode::Hang => {
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
    };
    let _ = c.write_all(answer);
}

/// `MDKEEP__ALERTS__TARGETS` with one webhook on `r`.
fn webhook(r: &Receiver) -> String {
    format!("[{{kind = \"webhook\", url = \"{}\"}}]", r.url("/hook"))
}

fn json_out(s: &Sandbox, env: &[(&str, &str)], args: &[&str]) -> (i32, Value) {
    let o = s.cmd(args).envs(env.iter().copied()).output().unwrap();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code().unwrap_or(-1), v)
}

const TOKEN: &str = "123456:tok-Secret-never-logged";

#[test]
fn alerts_test_reaches_webhook_ntfy_telegram_and_command_and_fails_on_500() {
    let s = Sandbox::new();
    let ok = Receiver::start(Mode::Ok);
    let bad = Receiver::start(Mode::Fail);
    let token = s.root().join("configs/telegram-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = s.root().join("command-alert.json");
    let targets = format!(
        "[{{kind = \"webhook\", url = \"{}\"}}, {{kind = \"ntfy\", url = \"{}\"}}, \
          {{kind = \"telegram\", chat_id = 42, token_file = \"configs/telegram-token\", api = \"{}\"}}, \
          {{kind = \"command\", name = \"mail\", argv = [\"sh\", \"-c\", \"cat > '{}'; env > '{}.env'\"]}}, \
          {{kind = \"webhook\", name = \"broken\", url = \"{}\"}}]",
        ok.url("/hook"),
        ok.url("/mdkeep-topic"),
        ok.url(""),
        out.display(),
        out.display(),
        bad.url("/hook"),
    );
    let env = [
        ("MDKEEP__ALERTS__TARGETS", targets.as_str()),
        ("MDKEEP__ALERTS__HOST", "jetson"),
        ("MDKEEP__ALERTS__ATTEMPTS", "2"),
        ("SOME_SECRET_VAR", "leak"),
    ];
    // One target alone.
    let (code, one) = json_out(&s, &env, &["alerts", "test", "mail", "--json"]);
    assert_eq!(code, 0, "{one}");
    assert_eq!(one.as_array().unwrap().len(), 1, "{one}");
    let sent: Value = serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(sent["state"], "test", "{sent}");
    assert_eq!(sent["host"], "jetson", "{sent}");
    for k in ["host", "rule", "subject", "state", "since", "message", "dashboard"] {
        assert!(sent.get(k).is_some(), "{k} in {sent}");
    }
    let cmd_env = std::fs::read_to_string(format!("{}.env", out.display())).unwrap();
    assert!(
        !cmd_env.contains("SOME_SECRET_VAR"),
        "the jobs' clean environment: {cmd_env}"
    );

    // Every target: the broken one fails, so the command exits nonzero.
    let o = s.cmd(&["alerts", "test"]).envs(env.iter().copied()).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("broken") && text.contains("500"), "{text}");
    assert!(!text.contains("tok-Secret"), "the token reached the output: {text}");
    let reqs = ok.requests();
    let hook = reqs
        .iter()
        .find(|r| r.head.starts_with("POST /hook "))
        .expect("webhook");
    let body: Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(body["state"], "test");
    let ntfy = reqs
        .iter()
        .find(|r| r.head.starts_with("POST /mdkeep-topic "))
        .expect("ntfy");
    assert!(ntfy.head.contains("Title: mdkeep on jetson"), "{}", ntfy.head);
    assert!(ntfy.head.contains("Priority: "), "{}", ntfy.head);
    assert!(ntfy.body.starts_with("mdkeep on jetson: "), "{}", ntfy.body);
    let tg = reqs
        .iter()
        .find(|r| r.head.starts_with(&format!("POST /bot{TOKEN}/sendMessage ")))
        .expect("telegram");
    let tgb: Value = serde_json::from_str(&tg.body).unwrap();
    assert_eq!(tgb["chat_id"], 42, "{tgb}");
    assert!(tgb["text"].as_str().unwrap().starts_with("mdkeep on jetson: "));
    assert_eq!(bad.requests().len(), 2, "two attempts at the broken target");
    let (_, ls) = json_out(&s, &env, &["alerts", "ls", "--json"]);
    let broken = ls["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "broken")
        .cloned()
        .unwrap();
    assert_eq!(broken["failures"], 1, "{ls}");
    assert!(!ls.to_string().contains("tok-Secret"));
}

#[test]
fn a_forecast_under_the_threshold_alerts_once_and_resolves_once() {
    let s = Sandbox::new();
    s.gen(1, 1, 2, 100);
    s.settled(&["scan"]);
    let r = Receiver::start(Mode::Ok);
    let hook = webhook(&r);
    // A floor no disk meets: free space "runs out" now.
    let full = [
        ("MDKEEP__ALERTS__TARGETS", hook.as_str()),
        ("MDKEEP__QUOTA__MIN_FREE", "900TiB"),
    ];
    let (code, c) = json_out(&s, &full, &["alerts", "check", "--json"]);
    assert_eq!(code, 0, "{c}");
    assert_eq!(r.of("disk_full_days", "firing").len(), 1, "{:?}", r.bodies());
    let msg = r.of("disk_full_days", "firing")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("Next:"), "{msg}");
    json_out(&s, &full, &["alerts", "check", "--json"]);
    assert_eq!(r.of("disk_full_days", "firing").len(), 1, "sent once while it holds");
    let (_, ls) = json_out(&s, &full, &["alerts", "ls", "--json"]);
    assert!(
        ls["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["rule"] == "disk_full_days" && a["state"] == "firing"),
        "{ls}"
    );
    let fine = [("MDKEEP__ALERTS__TARGETS", hook.as_str())];
    json_out(&s, &fine, &["alerts", "check", "--json"]);
    json_out(&s, &fine, &["alerts", "check", "--json"]);
    assert_eq!(r.of("disk_full_days", "resolved").len(), 1, "{:?}", r.bodies());
}

/// The daemon with alerts checked every second and `more` on top.
fn daemon(s: &Sandbox, port: u16, more: &[(&str, &str)]) -> std::process::Child {
    let mut env = vec![("MDKEEP__ALERTS__INTERVAL", "1s"), ("MDKEEP__ALERTS__TIMEOUT", "2s")];
    env.extend_from_slice(more);
    s.daemon(port, &env, Stdio::null())
}

#[test]
fn maintain_failing_three_times_alerts_once_survives_a_restart_and_resolves_once() {
    let mut srv = S3Server::start();
    let s = Sandbox::new();
    s.gen(1, 3, 2, 200);
    s.ok(&["scan"]);
    srv.stop();
    let r = Receiver::start(Mode::Ok);
    let hook = webhook(&r);
    let store: Vec<(String, String)> = srv.env("36h");
    let mut env: Vec<(&str, &str)> = store.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("MDKEEP__ALERTS__TARGETS", hook.as_str()),
        ("MDKEEP__ALERTS__RULES__STORE_UNREACHABLE", "false"),
        ("MDKEEP__SCHEDULE__MAINTAIN__ENABLED", "true"),
        ("MDKEEP__SCHEDULE__MAINTAIN__CRON", "*/2 * * * * *"),
    ]);
    let port = common::free_port();
    let d = daemon(&s, port, &env);
    wait_for("the maintain alert", Duration::from_secs(120), || {
        !r.of("maintain_failures", "firing").is_empty()
    });
    let fired = r.of("maintain_failures", "firing");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(
        fired[0]["message"].as_str().unwrap().contains("3 runs in a row"),
        "{fired:?}"
    );
    let st = common::http_get(port, "/status").unwrap().1;
    assert!(st.contains("maintain_failures"), "/status: {st}");
    // Restart while it fires: nothing is sent twice.
    stop(d);
    let d = daemon(&s, port, &env);
    let failures = |s: &Sandbox| -> i64 {
        let ls = s.json(&["schedule", "ls"]);
        ls.as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"] == "maintain")
            .and_then(|t| t["failures"].as_i64())
            .unwrap_or(0)
    };
    let before = failures(&s);
    wait_for("two more failed runs", Duration::from_secs(90), || {
        failures(&s) >= before + 2
    });
    assert_eq!(r.of("maintain_failures", "firing").len(), 1, "{:?}", r.bodies());
    // The store comes back: one "resolved".
    srv.resume();
    wait_for("the resolved message", Duration::from_secs(120), || {
        !r.of("maintain_failures", "resolved").is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    stop(d);
    assert_eq!(r.of("maintain_failures", "firing").len(), 1);
    assert_eq!(r.of("maintain_failures", "resolved").len(), 1, "{:?}", r.bodies());
}

#[test]
fn a_job_killed_at_its_limit_alerts_once_naming_it_and_its_peak() {
    let s = Sandbox::new();
    let r = Receiver::start(Mode::Ok);
    let hook = webhook(&r);
    let port = common::free_port();
    let d = daemon(
        &s,
        port,
        &[
            ("MDKEEP__ALERTS__TARGETS", hook.as_str()),
            ("MDKEEP__JOBS__LIMIT", "watchdog"),
        ],
    );
    let spec = s.root().join("jobs/big.toml");
    std::fs::create_dir_all(spec.parent().unwrap()).unwrap();
    std::fs::write(
        &spec,
        format!(
            "name = \"big\"\nframework = \"command\"\nmemory = \"64MiB\"\nargv = [\"{}\", \"hog\", \"--mb\", \"400\", \"--step-mb\", \"8\", \"--step-ms\", \"5\", \"--hold-ms\", \"5000\"]\n",
            env!("CARGO_BIN_EXE_mdkeep")
        ),
    )
    .unwrap();
    let id = s.json(&["jobs", "submit", spec.to_str().unwrap()])["id"]
        .as_i64()
        .unwrap();
    wait_for("the job alert", Duration::from_secs(90), || {
        !r.of("jobs", "firing").is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    stop(d);
    let got = r.of("jobs", "firing");
    assert_eq!(got.len(), 1, "{got:?}");
    let m = got[0]["message"].as_str().unwrap();
    assert!(
        m.contains(&format!("job {id} `big`")) && m.contains("peak") && m.contains("OOM"),
        "{m}"
    );
    assert_eq!(s.json(&["jobs", "show", &id.to_string()])["state"], "oom_killed");
}

/// The scan task's durations (ms) over `runs` runs of a daemon with `env`.
fn scan_durations(s: &Sandbox, env: &[(&str, &str)], runs: usize) -> Vec<i64> {
    let port = common::free_port();
    let mut e = vec![("MDKEEP__SCHEDULE__SCAN__CRON", "* * * * * *")];
    e.extend_from_slice(env);
    let d = daemon(s, port, &e);
    let mut seen: Vec<(String, i64)> = Vec::new();
    let start = Instant::now();
    while seen.len() < runs && start.elapsed() < Duration::from_secs(60) {
        let ls = s.json(&["schedule", "ls"]);
        if let Some(t) = ls.as_array().unwrap().iter().find(|t| t["task"] == "scan") {
            if let (Some(end), Some(ms)) = (t["last_end"].as_str(), t["last_duration_ms"].as_i64()) {
                if seen.last().is_none_or(|(e, _)| e != end) {
                    seen.push((end.to_string(), ms));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    stop(d);
    seen.into_iter().map(|(_, ms)| ms).collect()
}

#[test]
fn a_receiver_that_hangs_or_fails_does_not_delay_tasks() {
    let s = Sandbox::new();
    s.gen(1, 1, 2, 100);
    let quiet = scan_durations(&s, &[], 4);
    for mode in [Mode::Hang, Mode::Fail] {
        let r = Receiver::start(mode);
        let hook = webhook(&r);
        // Always firing: the floor no disk meets.
        let env = [
            ("MDKEEP__ALERTS__TARGETS", hook.as_str()),
            ("MDKEEP__QUOTA__MIN_FREE", "900TiB"),
        ];
        let busy = scan_durations(&s, &env, 4);
        assert!(!r.requests().is_empty(), "the receiver was reached");
        assert!(busy.len() >= 4, "tasks kept running: {busy:?}");
        let worst = |v: &[i64]| v.iter().copied().max().unwrap_or(0);
        eprintln!("scan ms without a target: {quiet:?}; with a bad one: {busy:?}");
        assert!(
            worst(&busy) < worst(&quiet) + 1500,
            "a bad target slowed the scan: {busy:?} vs {quiet:?}"
        );
    }
}
