//! `[tiers.<name>.s3]` and the `s3://bucket/prefix` URLs of store tiers.
//!
//! Owns the declarations only (how to reach an S3-compatible server) and
//! the URL rules: what is remote, and which bucket and prefix a URL names.
//! Talking to a store is `crate::store`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ByteSize, Span};

pub const SCHEME: &str = "s3://";

/// `[tiers.<name>.s3]`: how to reach an S3-compatible server. Credentials are
/// not here on purpose: they come from `AWS_ACCESS_KEY_ID` /
/// `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`) or from `secrets_file`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `http://nas.local:9000`; unset means AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`), which most NAS servers need.
    #[serde(default)]
    pub path_style: bool,
    /// Allow plain `http://` endpoints (a LAN NAS).
    #[serde(default)]
    pub allow_http: bool,
    /// A TOML file with `aws_access_key_id`, `aws_secret_access_key` and
    /// optionally `aws_session_token`; it wins over the environment.
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
    /// Retries of a failed request (network errors, 5xx, throttling).
    #[serde(default = "default_retries")]
    pub max_retries: usize,
    /// No retry starts later than this after the first attempt.
    #[serde(default = "default_retry_timeout")]
    pub retry_timeout: Span,
    /// Multipart part size; memory per upload is about this × `upload_concurrency`.
    #[serde(default = "default_part_size")]
    pub part_size: ByteSize,
    #[serde(default = "default_concurrency")]
    pub upload_concurrency: usize,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn default_retries() -> usize {
    6
}
fn default_retry_timeout() -> Span {
    Span(Duration::from_secs(60))
}
fn default_part_size() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_concurrency() -> usize {
    2
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: default_region(),
            path_style: false,
            allow_http: false,
            secrets_file: None,
            max_retries: default_retries(),
            retry_timeout: default_retry_timeout(),
            part_size: default_part_size(),
            upload_concurrency: default_concurrency(),
        }
    }
}

/// Whether a path is under an object-store tier.
pub fn is_remote(p: &Path) -> bool {
    p.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// `s3://bucket/prefix` → (bucket, prefix), refusing what could escape.
pub fn parse_url(url: &str) -> std::result::Result<(String, String), String> {
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| format!("`{url}` is not an s3:// URL"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let ok_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if !ok_bucket {
        return Err(format!("`{bucket}` is not a bucket name (3-63 of a-z, 0-9, '-', '.')"));
    }
    let prefix = prefix.trim_end_matches('/');
    for seg in prefix.split('/').filter(|s| !s.is_empty()) {
        crate::names::check_segment("prefix", seg).map_err(|e| e.to_string())?;
    }
    Ok((bucket.to_string(), prefix.to_string()))
}
