//! Job specs: the TOML file a user submits.
//!
//! Owns parsing (with `--set key=value` overrides applied first), checking
//! what can be checked at submit (framework known, argv present, data
//! request valid, names safe), and resolving secrets by name from the
//! secrets file (which must be mode 0600). Values of secrets never leave
//! this module except into a job's environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ByteSize, Config, Span};
use crate::error::{Error, Result};
use crate::layout;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    /// freqtrade, nautilus, vectorbt, hftbacktest or command.
    pub framework: String,
    /// `command` jobs only: which framework this job stands for in the
    /// one-framework-at-a-time rule (default: "command").
    #[serde(default)]
    pub group: Option<String>,
    /// `command` jobs: the program and its arguments.
    #[serde(default)]
    pub argv: Vec<String>,
    /// Values for the framework's command template, e.g. strategy = "SmaCross".
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// The data handed to the job, exported before it starts.
    #[serde(default)]
    pub data: Option<DataNeeds>,
    /// Declared peak memory, e.g. "256MiB".
    #[serde(default)]
    pub memory: Option<ByteSize>,
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Higher runs first within a framework.
    #[serde(default)]
    pub priority: i64,
    /// Re-runs after an interruption or failure.
    #[serde(default)]
    pub retries: u32,
    /// Plain environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Names of secrets from `jobs.secrets_file`, given to the job as
    /// environment variables of the same name.
    #[serde(default)]
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataNeeds {
    pub dataset: String,
    #[serde(default)]
    pub exchange: Option<String>,
    #[serde(default)]
    pub symbols: Vec<String>,
    #[serde(default)]
    pub timeframe: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// Export format; default: the framework profile's `data_format`.
    #[serde(default)]
    pub format: Option<String>,
    /// nautilus: [price, size] decimals of the instrument (default [8, 8]).
    #[serde(default)]
    pub precision: Option<(u32, u32)>,
    /// Refuse the job (exit 65 at submit, a failed export at start) when
    /// the partitions it reads have quality findings of `clean_kinds`.
    #[serde(default)]
    pub require_clean: bool,
    /// The kinds `require_clean` refuses, e.g. ["bad_price", "cadence"]
    /// (default: every fault still in the data).
    #[serde(default)]
    pub clean_kinds: Vec<String>,
    /// Refuse the job (exit 65 at submit, a failed export at start) unless
    /// the data's fingerprint is still this one (`jobs show`'s `data_fingerprint`).
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Read what this lake snapshot named (`jobs show`'s `data_snapshot`)
    /// while `lake.keep_snapshots` keeps it; refused once it is gone.
    #[serde(default)]
    pub snapshot: Option<i64>,
}

impl DataNeeds {
    /// The kinds that refuse the job, when it requires clean data.
    pub fn clean_kinds(&self) -> Option<Vec<crate::quality::Kind>> {
        if !self.require_clean {
            return None;
        }
        if self.clean_kinds.is_empty() {
            return Some(crate::export::quality::default_clean_kinds());
        }
        Some(
            self.clean_kinds
                .iter()
                .filter_map(|k| crate::quality::Kind::parse(k))
                .collect(),
        )
    }

    /// The export that hands the job its data.
    pub fn request(&self, format: crate::export::Format, out: std::path::PathBuf) -> Result<crate::export::Request> {
        Ok(crate::export::Request {
            dataset: self.dataset.clone(),
            exchange: self.exchange.clone(),
            symbols: self.symbols.clone(),
            timeframe: self.timeframe.clone(),
            from: self.from.as_deref().map(crate::export::parse_time).transpose()?,
            to: self.to.as_deref().map(crate::export::parse_time).transpose()?,
            format,
            out,
            precision: self.precision,
            require_clean: self.clean_kinds(),
            snapshot: self.snapshot,
        })
    }
}

impl JobSpec {
    /// Read `path`, apply `sets` (`a.b=value`, value read as TOML, else a
    /// string), and check it against the config.
    pub fn load(cfg: &Config, path: &Path, sets: &[(String, String)]) -> Result<JobSpec> {
        let text = std::fs::read_to_string(path).map_err(Error::io("read", path))?;
        let bad = |key: String, message: String| Error::Spec {
            path: path.to_path_buf(),
            key,
            message,
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(0);
            bad(format!("(syntax, line {line})"), e.message().to_string())
        })?;
        for (k, v) in sets {
            let parts: Vec<String> = k.split('.').map(str::to_string).collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(bad(k.clone(), "empty segment in --set key".into()));
            }
            crate::config::set_dotted(&mut table, &parts, v).map_err(|m| bad(k.clone(), m))?;
        }
        let spec: JobSpec = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let mut key = e.path().to_string();
            let msg = e.inner().message().to_string();
            if let Some(field) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                key = if key == "." {
                    field.into()
                } else {
                    format!("{key}.{field}")
                };
            }
            bad(key, msg)
        })?;
        spec.check(cfg).map_err(|(key, message)| bad(key, message))?;
        Ok(spec)
    }

    fn check(&self, cfg: &Config) -> std::result::Result<(), (String, String)> {
        let e = |k: &str, m: String| Err((k.to_string(), m));
        if self.name.trim().is_empty() {
            return e("name", "must not be empty".into());
        }
        if !cfg.jobs.frameworks.contains_key(&self.framework) {
            let known: Vec<&str> = cfg.jobs.frameworks.keys().map(String::as_str).collect();
            return e(
                "framework",
                format!(
                    "`{}` has no profile under [jobs.frameworks] ({})",
                    self.framework,
                    known.join(", ")
                ),
            );
        }
        if self.framework == "command" {
            if self.argv.is_empty() {
                return e("argv", "a command job needs argv = [\"program\", ...]".into());
            }
        } else if self.group.is_some() {
            return e("group", "only command jobs may set a group".into());
        }
        if let Some(g) = &self.group {
            layout::check_segment("group", g).map_err(|x| ("group".to_string(), x.to_string()))?;
        }
        for k in self.env.keys().chain(&self.secrets) {
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return e("env", format!("`{k}` is not an environment variable name"));
            }
        }
        if let Some(d) = &self.data {
            cfg.dataset(&d.dataset)
                .map_err(|x| ("data.dataset".to_string(), x.to_string()))?;
            if let Some(k) = d.clean_kinds.iter().find(|k| crate::quality::Kind::parse(k).is_none()) {
                return e(
                    "data.clean_kinds",
                    format!("`{k}` is not a quality kind (see `mdkeep quality --help`)"),
                );
            }
            for (k, t) in [("data.from", &d.from), ("data.to", &d.to)] {
                if let Some(t) = t {
                    crate::export::parse_time(t).map_err(|x| (k.to_string(), x.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// The framework this job counts as for the one-at-a-time rule.
    pub fn group(&self) -> String {
        self.group.clone().unwrap_or_else(|| self.framework.clone())
    }

    /// A stable fingerprint of what the job runs, for learned peaks.
    pub fn fingerprint(&self) -> String {
        let mut s = self.clone();
        // Priority, retries and timeout do not change how much memory a run takes.
        s.priority = 0;
        s.retries = 0;
        s.timeout = None;
        s.secrets.clear();
        s.env.clear();
        let text = serde_json::to_string(&s).unwrap_or_default();
        format!("{:016x}", fnv1a(text.as_bytes()))
    }
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf29ce484222325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100000001b3)
    })
}

/// Secret values for `names` from the secrets file, which must not be
/// readable by others. Errors name the file and the secret, never a value.
pub fn resolve_secrets(cfg: &Config, names: &[String]) -> Result<Vec<(String, String)>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let path: PathBuf = cfg.resolve(&cfg.jobs.secrets_file);
    let text = crate::fsutil::read_private(&path).map_err(|message| Error::BadInput {
        path: path.clone(),
        message,
    })?;
    let table: toml::Table = text.parse().map_err(|_| Error::BadInput {
        path: path.clone(),
        // The parser's message may quote a value: say only where.
        message: "not valid TOML (NAME = \"value\" per line)".into(),
    })?;
    names
        .iter()
        .map(|n| match table.get(n) {
            Some(toml::Value::String(v)) => Ok((n.clone(), v.clone())),
            Some(_) => Err(Error::BadInput {
                path: path.clone(),
                message: format!("secret `{n}` is not a string"),
            }),
            None => Err(Error::BadInput {
                path: path.clone(),
                message: format!("no secret named `{n}`"),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::from_str_with_env(crate::config::DEFAULT_CONFIG, "default", Path::new("/tmp"), Vec::new()).unwrap()
    }

    #[test]
    fn set_overrides_and_errors_name_the_key() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("j.toml");
        std::fs::write(&p, "name = \"a\"\nframework = \"command\"\nargv = [\"true\"]\n").unwrap();
        let s = JobSpec::load(&cfg(), &p, &[("memory".into(), "64MiB".into())]).unwrap();
        assert_eq!(s.memory.unwrap().0, 64 << 20);
        let e = JobSpec::load(&cfg(), &p, &[("memroy".into(), "1".into())]).unwrap_err();
        assert!(e.to_string().contains("memroy"), "{e}");
        let e = JobSpec::load(&cfg(), &p, &[("framework".into(), "zipline".into())]).unwrap_err();
        assert!(
            e.to_string().contains("framework") && e.to_string().contains("zipline"),
            "{e}"
        );
    }

    #[test]
    fn secrets_file_must_be_private_and_values_stay_out_of_errors() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let mut c = cfg();
        c.root = d.path().to_path_buf();
        let p = d.path().join("configs/secrets.toml");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, "API_KEY = \"hunter2\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = resolve_secrets(&c, &["API_KEY".into()]).unwrap_err().to_string();
        assert!(e.contains("0600") && !e.contains("hunter2"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(resolve_secrets(&c, &["API_KEY".into()]).unwrap()[0].1, "hunter2");
        let e = resolve_secrets(&c, &["NOPE".into()]).unwrap_err().to_string();
        assert!(e.contains("NOPE") && !e.contains("hunter2"), "{e}");
    }
}
