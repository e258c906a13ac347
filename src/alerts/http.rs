//! A tiny HTTP/1.1 POST for the alert targets, with a timeout.
//!
//! Owns sending one request and reading the status line. The project's
//! only HTTP crates are server-side (axum, hyper's server), so `http://` is
//! spoken here over `std::net::TcpStream` with connect, read and write
//! timeouts. `https://` (ntfy.sh, Telegram's Bot API) needs TLS, which this
//! build has no client for: it goes through `curl`, which is given the
//! address, the headers and the body on its stdin (`--config -`), never on
//! its command line, where other users of the box could read a token.
//!
//! Errors never contain the URL (a Telegram URL holds the bot token): only
//! the host for a connection failure, else the status or the cause.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// POST `body` to `url` with `headers`; `Ok` on a 2xx answer within `timeout`.
pub fn post(url: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("http://") {
        plain(rest, headers, body, timeout)
    } else if url.starts_with("https://") {
        curl(url, headers, body, timeout)
    } else {
        Err("the address must start with http:// or https://".into())
    }
}

/// `host[:port]/path` → (host, port, path).
fn split(rest: &str) -> Result<(String, u16, String), String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err("user:password@ in the address is not supported".into());
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse::<u16>() {
            Ok(port) => (h.to_string(), port),
            Err(_) => (authority.to_string(), 80),
        },
        _ => (authority.to_string(), 80),
    };
    if host.is_empty() {
        return Err("the address has no host".into());
    }
    Ok((host, port, path))
}

fn plain(rest: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration) -> Result<(), String> {
    let (host, port, path) = split(rest)?;
    let deadline = Instant::now() + timeout;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let mut last = format!("cannot resolve {host}");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, left(deadline)?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {host}:{port}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: mdkeep/{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {}\r\n", header_value(v)));
    }
    req.push_str("\r\n");
    let io = |e: std::io::Error| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            format!("no answer from {host}:{port} within {}s", timeout.as_secs_f64())
        } else {
            format!("{host}:{port}: {e}")
        }
    };
    s.set_write_timeout(Some(left(deadline)?)).map_err(io)?;
    s.write_all(req.as_bytes()).map_err(io)?;
    s.write_all(body).map_err(io)?;
    s.flush().map_err(io)?;
    // The status line is all that matters; read until it is complete.
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(2).any(|w| w == b"\r\n") && got.len() < 8192 {
        s.set_read_timeout(Some(left(deadline)?)).map_err(io)?;
        match s.read(&mut buf).map_err(io)? {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&got);
    let line = head.lines().next().unwrap_or("");
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{host}:{port} did not answer HTTP"))?;
    if (200..300).contains(&code) {
        Ok(())
    } else {
        Err(format!("{host}:{port} answered {code}"))
    }
}

/// The time left before `deadline` (an error once it has passed).
fn left(deadline: Instant) -> Result<Duration, String> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err("timed out".into())
    } else {
        Ok(d)
    }
}

/// A header value on one line, ASCII only (ntfy reads UTF-8 titles
/// poorly through some proxies; nothing is lost but accents).
fn header_value(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' })
        .collect()
}

/// A string for curl's config file: quoted, with its escapes.
fn quoted(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// https through curl: everything on its stdin, a hard time limit.
fn curl(url: &str, headers: &[(&str, String)], body: &[u8], timeout: Duration) -> Result<(), String> {
    let host = url
        .trim_start_matches("https://")
        .split(['/', '?'])
        .next()
        .unwrap_or("")
        .to_string();
    let mut conf = format!(
        "url = {}\nrequest = \"POST\"\nsilent\nshow-error\nfail\noutput = \"/dev/null\"\nmax-time = {}\nconnect-timeout = {}\n",
        quoted(url),
        timeout.as_secs().max(1),
        timeout.as_secs().max(1)
    );
    for (k, v) in headers {
        conf.push_str(&format!("header = {}\n", quoted(&format!("{k}: {}", header_value(v)))));
    }
    conf.push_str(&format!("data-binary = {}\n", quoted(&String::from_utf8_lossy(body))));
    let out = run_fed(
        Command::new("curl").args(["--config", "-"]),
        conf.as_bytes(),
        timeout + Duration::from_secs(2),
        "https needs curl, which could not be run",
    )?;
    if out.0.success() {
        return Ok(());
    }
    // curl's message may hold the URL; say only the host and its code.
    Err(format!(
        "{host}: curl failed (exit {})",
        out.0.code().map_or("signal".into(), |c| c.to_string())
    ))
}

/// Run `cmd` in the jobs' clean environment with `input` on its stdin (one
/// that does not read it is not a failure), at most `limit`; its status and
/// stderr. When it cannot start, the error is `cannot: <why>`.
pub fn run_fed(
    cmd: &mut Command,
    input: &[u8],
    limit: Duration,
    cannot: &str,
) -> Result<(std::process::ExitStatus, String), String> {
    let mut child = cmd
        .env_clear()
        .envs(crate::jobs::launch::inherited_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cannot}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    wait_with_timeout(child, limit)
}

/// Wait for `child` at most `limit`, killing it past that; its status and stderr.
fn wait_with_timeout(
    mut child: std::process::Child,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Ok((status, err));
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s (killed)", limit.as_secs_f64()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_splits_into_host_port_and_path() {
        assert_eq!(split("h:8080/a/b?c=1").unwrap(), ("h".into(), 8080, "/a/b?c=1".into()));
        assert_eq!(split("h").unwrap(), ("h".into(), 80, "/".into()));
        assert!(split("u:p@h/x").is_err());
    }

    #[test]
    fn a_refused_connection_names_the_host_not_the_path() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = post(
            &format!("http://127.0.0.1:{port}/botSECRET/sendMessage"),
            &[],
            b"{}",
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(e.contains("127.0.0.1"), "{e}");
    }
}
