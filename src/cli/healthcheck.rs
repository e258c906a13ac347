//! `mdkeep healthcheck`: the container's HEALTHCHECK, with no curl in the image.

use std::io::{Read, Write};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's /healthz (plain http).
    #[arg(long, default_value = "http://127.0.0.1:7878/healthz")]
    url: String,
}

pub fn run(a: &Args) -> anyhow::Result<i32> {
    let rest = a
        .url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--url must start with http://"))?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host}: no address"))?;
    let mut c = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    c.set_read_timeout(Some(Duration::from_secs(3)))?;
    write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    c.read_to_string(&mut text)?;
    let ok = text.split_whitespace().nth(1) == Some("200");
    if !ok {
        eprintln!("unhealthy: {}", text.lines().next().unwrap_or("no answer"));
    }
    Ok(if ok { 0 } else { 1 })
}
