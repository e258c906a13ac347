//! Object-storage tiers: a tier whose `root` is an `s3://bucket/prefix` URL.
//!
//! Owns every conversation with an object store: building clients (with
//! credentials from the AWS environment or a secrets file, never from the
//! config and never logged), retries with backoff, ranged reads
//! ([`read::AsyncObject`]), create-only uploads ([`write::StoreWriter`]),
//! listings, deletes and a reachability probe.
//!
//! Paths under a store tier are kept as `PathBuf`s spelled as URLs
//! (`s3://bucket/prefix/trades/.../c12-0001.parquet`), so the catalog,
//! journal and layout code is the same for both kinds of tier; whatever
//! opens, stats or removes a file asks [`is_remote`] and comes here. It does
//! not decide what moves to the store (that is `tiering`).
//!
//! The library is blocking: store calls run on a small private tokio
//! runtime and are waited for with `block_on`.

pub mod read;
pub mod write;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};

pub use read::{fetched_bytes, AsyncObject, Batches};
pub use write::StoreWriter;

pub use crate::config::s3::{is_remote, parse_url, S3Config, SCHEME};

/// One store tier's client.
pub struct Store {
    /// The tier's root URL, `s3://bucket/prefix`.
    pub url: String,
    pub tier: String,
    prefix: String,
    pub(crate) inner: Arc<dyn ObjectStore>,
    /// Same server, no retries and short timeouts: for probes.
    quick: Arc<dyn ObjectStore>,
    pub(crate) part_size: usize,
    pub(crate) concurrency: usize,
}

impl std::fmt::Debug for Store {
    // Deliberately not the builder's Debug: that one would print the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.url)
    }
}

#[derive(Deserialize)]
struct Secrets {
    aws_access_key_id: String,
    aws_secret_access_key: String,
    #[serde(default)]
    aws_session_token: Option<String>,
}

impl Store {
    fn build(cfg: &Config, tier: &str, url: &str, s3: &S3Config) -> Result<Store> {
        let key = |k: &str| format!("tiers.{tier}.{k}");
        let (bucket, prefix) = parse_url(url).map_err(|m| Error::Config {
            source_name: cfg.source.clone(),
            key: key("root"),
            message: m,
        })?;
        let creds = credentials(cfg, tier, s3)?;
        let make = |retry: RetryConfig, opts: ClientOptions| -> Result<Arc<dyn ObjectStore>> {
            let mut b = AmazonS3Builder::new()
                .with_bucket_name(&bucket)
                .with_region(&s3.region)
                .with_access_key_id(&creds.0)
                .with_secret_access_key(&creds.1)
                .with_allow_http(s3.allow_http)
                .with_virtual_hosted_style_request(!s3.path_style)
                .with_retry(retry)
                .with_client_options(opts.with_allow_http(s3.allow_http));
            if let Some(t) = &creds.2 {
                b = b.with_token(t);
            }
            if let Some(e) = &s3.endpoint {
                b = b.with_endpoint(e);
            }
            // The builder's error names a setting, never a key's value.
            Ok(Arc::new(b.build().map_err(|e| Error::Config {
                source_name: cfg.source.clone(),
                key: key("s3"),
                message: e.to_string(),
            })?))
        };
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(10),
                base: 2.0,
            },
            max_retries: s3.max_retries,
            retry_timeout: s3.retry_timeout.0,
        };
        let inner = make(
            retry,
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(120)),
        )?;
        let quick = make(
            RetryConfig {
                max_retries: 0,
                ..Default::default()
            },
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(2))
                .with_timeout(Duration::from_secs(5)),
        )?;
        Ok(Store {
            url: url.trim_end_matches('/').to_string(),
            tier: tier.to_string(),
            prefix,
            inner,
            quick,
            part_size: (s3.part_size.0 as usize).max(5 << 20),
            concurrency: s3.upload_concurrency.max(1),
        })
    }

    /// The object key of a path under this store's root.
    pub fn key(&self, path: &Path) -> Result<ObjectPath> {
        let s = path.to_string_lossy();
        let rel = s
            .strip_prefix(&self.url)
            .ok_or_else(|| Error::Invalid(format!("{s} is not under {}", self.url)))?;
        self.key_of(rel)
    }

    /// The key of `rel` (relative to the root) under the bucket's prefix.
    fn key_of(&self, rel: &str) -> Result<ObjectPath> {
        let full = [self.prefix.as_str(), rel.trim_matches('/')]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        ObjectPath::parse(&full).map_err(|e| Error::Invalid(format!("object key `{full}`: {e}")))
    }

    /// Every object under `rel` (relative to the root): (relpath, size, mtime ns).
    pub fn list(&self, rel: &str) -> Result<Vec<(String, u64, i64)>> {
        let base = self.key_of(rel)?;
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let metas: Vec<object_store::ObjectMeta> =
            block_on(self.inner.list(Some(&base)).try_collect()).map_err(self.err("list", &base))?;
        Ok(metas
            .into_iter()
            .map(|m| {
                let k = m.location.to_string();
                let rel = k.strip_prefix(&strip).unwrap_or(&k).to_string();
                (rel, m.size, m.last_modified.timestamp_nanos_opt().unwrap_or(0))
            })
            .collect())
    }

    /// Size of an object, or None when there is none.
    pub fn size(&self, path: &Path) -> Result<Option<u64>> {
        let key = self.key(path)?;
        match block_on(self.inner.head(&key)) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("stat", &key)(e)),
        }
    }

    /// Delete an object; one that is already gone is fine.
    pub fn delete(&self, path: &Path) -> Result<()> {
        let key = self.key(path)?;
        match block_on(self.inner.delete(&key)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", &key)(e)),
        }
    }

    /// Can the store be reached right now (one quick listing, no retries)?
    pub fn probe(&self) -> std::result::Result<(), String> {
        let base = self.key_of("").unwrap_or_default();
        block_on(self.quick.list_with_delimiter(Some(&base)))
            .map(|_| ())
            .map_err(|e| short(&e))
    }

    pub(crate) fn err<'a>(&'a self, what: &'a str, key: &'a ObjectPath) -> impl Fn(object_store::Error) -> Error + 'a {
        move |e| Error::Store {
            url: format!("{}{}/{}", SCHEME, self.bucket_of_url(), key),
            message: format!("{what}: {}", short(&e)),
        }
    }

    fn bucket_of_url(&self) -> &str {
        let rest = &self.url[SCHEME.len()..];
        rest.split('/').next().unwrap_or(rest)
    }
}

/// The keys of store tier `tier`: from its secrets file (0600, TOML), else
/// from the AWS environment variables. Errors name the key to fix, never a
/// value.
fn credentials(cfg: &Config, tier: &str, s3: &S3Config) -> Result<(String, String, Option<String>)> {
    let key = |k: &str| format!("tiers.{tier}.{k}");
    Ok(match &s3.secrets_file {
        Some(p) => {
            let p = cfg.resolve(p);
            let text = crate::fsutil::read_private(&p).map_err(|message| Error::Config {
                source_name: cfg.source.clone(),
                key: key("s3.secrets_file"),
                message,
            })?;
            // The parse error could quote the file's text: say only where.
            let s: Secrets = toml::from_str(&text).map_err(|_| Error::Config {
                source_name: cfg.source.clone(),
                key: key("s3.secrets_file"),
                message: format!(
                    "{} must hold aws_access_key_id and aws_secret_access_key (TOML strings)",
                    p.display()
                ),
            })?;
            (s.aws_access_key_id, s.aws_secret_access_key, s.aws_session_token)
        }
        None => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(a), Some(s)) => (a, s, env("AWS_SESSION_TOKEN")),
                _ => {
                    return Err(Error::Config {
                source_name: cfg.source.clone(),
                        key: key("s3.secrets_file"),
                        message: "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or point secrets_file at a file holding them".into(),
                    })
                }
            }
        }
    })
}

/// An object-store error in one line: the first cause that says something.
fn short(e: &object_store::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s = format!("{s}: {t}");
        }
        src = inner.source();
    }
    s
}

/// The clients of one config's store tiers, built once at start-up
/// ([`Stores::build`]) and then installed for the process
/// ([`Stores::install`]): the entry point (the CLI, the daemon, the demo)
/// builds them right after loading the config, and from then on every path
/// spelled as a store URL resolves to its client ([`Stores::for_path`]),
/// however deep in the engine it is opened. Nothing is built lazily and
/// nothing changes after the install.
#[derive(Debug, Default)]
pub struct Stores {
    tiers: Vec<Client>,
}

/// One store tier's client, or why it could not be built (no credentials).
#[derive(Debug)]
struct Client {
    tier: String,
    /// The root URL without a trailing slash.
    url: String,
    store: std::result::Result<Arc<Store>, Error>,
}

impl Client {
    fn get(&self) -> Result<Arc<Store>> {
        match &self.store {
            Ok(s) => Ok(s.clone()),
            // A config error keeps its key (and its exit code); any other
            // says which store it concerns.
            Err(Error::Config {
                source_name,
                key,
                message,
            }) => Err(Error::Config {
                source_name: source_name.clone(),
                key: key.clone(),
                message: message.clone(),
            }),
            Err(e) => Err(Error::Store {
                url: self.url.clone(),
                message: e.to_string(),
            }),
        }
    }
}

static INSTALLED: OnceLock<Stores> = OnceLock::new();

impl Stores {
    /// Build the client of every store tier of `cfg`. A client that cannot
    /// be built keeps its reason, given when the tier is used.
    pub fn build(cfg: &Config) -> Stores {
        let tiers = cfg
            .store_tiers()
            .into_iter()
            .map(|tier| {
                let t = &cfg.tiers[&tier];
                let url = t.root.to_string_lossy().trim_end_matches('/').to_string();
                let store = Store::build(cfg, &tier, &url, &t.s3.clone().unwrap_or_default()).map(Arc::new);
                Client { tier, url, store }
            })
            .collect();
        Stores { tiers }
    }

    /// Make these the stores of the process and return them. The process
    /// serves one config: a second install keeps the first stores.
    pub fn install(self) -> &'static Stores {
        INSTALLED.get_or_init(|| self)
    }

    /// The client of store tier `tier`.
    pub fn tier(&self, tier: &str) -> Result<Arc<Store>> {
        match self.tiers.iter().find(|c| c.tier == tier) {
            Some(c) => c.get(),
            None => Err(Error::Invalid(format!(
                "`{tier}` is not a store tier of the loaded config (declared under [tiers] with an s3:// root)"
            ))),
        }
    }

    /// The client whose root holds `path`.
    pub fn for_path(&self, path: &Path) -> Result<Arc<Store>> {
        let s = path.to_string_lossy();
        let under = |url: &str| s.strip_prefix(url).is_some_and(|r| r.is_empty() || r.starts_with('/'));
        match self.tiers.iter().filter(|c| under(&c.url)).max_by_key(|c| c.url.len()) {
            Some(c) => match &c.store {
                Ok(st) => Ok(st.clone()),
                Err(e) => Err(Error::Store {
                    url: c.url.clone(),
                    message: e.to_string(),
                }),
            },
            None => Err(Error::Invalid(format!("{s}: no store tier is configured for this URL"))),
        }
    }
}

/// The stores installed for this process (none before an install).
pub fn stores() -> &'static Stores {
    static NONE: Stores = Stores { tiers: Vec::new() };
    INSTALLED.get().unwrap_or(&NONE)
}

/// The client whose root holds `path`, among the installed stores.
pub fn for_path(path: &Path) -> Result<Arc<Store>> {
    stores().for_path(path)
}

/// Remove a local file or an object (absent is fine).
pub fn remove(path: &Path) -> Result<()> {
    if is_remote(path) {
        for_path(path)?.delete(path)
    } else if path.exists() {
        std::fs::remove_file(path).map_err(Error::io("remove", path))
    } else {
        Ok(())
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mdkeep-store")
            .enable_all()
            .build()
            .expect("a tokio runtime for object-store calls")
    })
}

/// Wait for a store future from blocking code.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            parse_url("s3://market-cold/processed/").unwrap(),
            ("market-cold".into(), "processed".into())
        );
        assert_eq!(parse_url("s3://bkt").unwrap(), ("bkt".into(), "".into()));
        assert!(parse_url("s3://Bad_Bucket/x").is_err());
        assert!(parse_url("s3://bkt/../x").is_err());
        assert!(parse_url("/local/path").is_err());
        assert!(is_remote(Path::new("s3://bkt/x/y.parquet")));
        assert!(!is_remote(Path::new("data/processed")));
    }
}
