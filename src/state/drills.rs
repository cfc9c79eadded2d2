//! Open ad-hoc drills on disk (`[admin] state_dir`): the whole set is rewritten atomically
//! after every change and read back at start, so a restart keeps them. A file that cannot be
//! read back is set aside and logged, never fatal.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, EnvLookup, is_valid_service};
use crate::schedule::{Source, Window};

/// Environment variable that overrides `[admin] state_dir` for one process: replicas that
/// share a config file (one ConfigMap) must not share a state directory.
pub const STATE_DIR_ENV: &str = "WEBCOLLECT_SHIM_STATE_DIR";

/// The file in the state directory.
pub const FILE: &str = "drills.json";
const TEMP: &str = "drills.json.tmp";
/// A set-aside file is renamed to `drills.json.corrupt` (then `.corrupt.1`, `.corrupt.2`, …).
const CORRUPT: &str = "drills.json.corrupt";
const FORMAT: u32 = 1;

/// Where one process keeps its open drills.
#[derive(Debug, Clone)]
pub struct DrillStore {
    dir: PathBuf,
}

/// The drills could not be written (they stay open in memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct SaveError {
    path: PathBuf,
    #[source]
    source: io::Error,
}

/// Why a drills file was set aside.
#[derive(Debug, thiserror::Error)]
enum Corrupt {
    #[error("not a drills file")]
    Json(#[from] serde_json::Error),
    #[error("unknown format {0} (this version writes {FORMAT})")]
    Format(u32),
    #[error("drill {id:?}: {problem}")]
    Drill { id: String, problem: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    format: u32,
    drills: Vec<StoredDrill>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredDrill {
    id: String,
    title: String,
    start: String,
    end: String,
    services: Vec<String>,
}

impl DrillStore {
    /// A store in `dir` (created on first use).
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store a process uses: [`STATE_DIR_ENV`] when set, else `[admin] state_dir`, else
    /// none (drills live in memory only).
    #[must_use]
    pub fn for_config(config: &Config, env: &EnvLookup) -> Option<Self> {
        env(STATE_DIR_ENV)
            .filter(|dir| !dir.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| config.admin.state_dir.clone())
            .map(Self::new)
    }

    /// The state directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The drills still open at `now`. A missing file is an empty set; an unreadable or
    /// invalid one is renamed aside and logged, and the shim starts without drills.
    #[must_use]
    pub fn load(&self, now: DateTime<Utc>) -> Vec<Window> {
        if let Err(err) = fs::create_dir_all(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %err, "Cannot create the state directory; open drills will not survive a restart.");
        }
        let text = match fs::read(self.path()) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(err) => {
                tracing::error!(path = %self.path().display(), error = %err, "Cannot read the open drills; starting without them.");
                return Vec::new();
            }
        };
        match parse(&text) {
            Ok(drills) => {
                let total = drills.len();
                let open: Vec<Window> = drills.into_iter().filter(|w| w.end > now).collect();
                if total > 0 {
                    tracing::info!(
                        open = open.len(),
                        expired = total - open.len(),
                        dir = %self.dir.display(),
                        "Open drills restored."
                    );
                }
                open
            }
            Err(problem) => {
                let set_aside = match self.set_aside() {
                    Ok(path) => path.display().to_string(),
                    Err(err) => format!("failed: {err}"),
                };
                tracing::error!(
                    path = %self.path().display(),
                    problem = %crate::error::Chain(&problem),
                    %set_aside,
                    "Drills file is invalid; starting without its drills."
                );
                Vec::new()
            }
        }
    }

    /// Replaces the stored set with `drills`: write a temporary file, fsync it, rename it
    /// over the old one, fsync the directory. A crash at any point leaves either the old or
    /// the new set, never a mix.
    ///
    /// # Errors
    /// When any step fails; the previous file is then still in place.
    pub fn save(&self, drills: &[Window]) -> Result<(), SaveError> {
        let doc = OnDisk {
            format: FORMAT,
            drills: drills.iter().map(StoredDrill::from).collect(),
        };
        let temp = self.dir.join(TEMP);
        let write = || -> io::Result<()> {
            let mut bytes = serde_json::to_vec_pretty(&doc)?;
            bytes.push(b'\n');
            fs::create_dir_all(&self.dir)?;
            let mut file = File::create(&temp)?;
            file.write_all(&bytes)?;
            // The data is on disk before the name points at it...
            file.sync_all()?;
            fs::rename(&temp, self.path())?;
            // ...and the rename itself survives a power cut.
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| SaveError {
            path: self.path(),
            source,
        })
    }

    /// Renames the drills file to the first free `drills.json.corrupt[.N]`.
    fn set_aside(&self) -> io::Result<PathBuf> {
        let mut target = self.dir.join(CORRUPT);
        let mut n = 0;
        while target.try_exists()? {
            n += 1;
            target = self.dir.join(format!("{CORRUPT}.{n}"));
        }
        fs::rename(self.path(), &target)?;
        Ok(target)
    }
}

/// The number after which `drill-N` ids continue, so a restart never generates an id that a
/// restored drill already has.
#[must_use]
pub fn next_generated_id(drills: &[Window]) -> u64 {
    drills
        .iter()
        .filter_map(|w| w.id.strip_prefix("drill-")?.parse::<u64>().ok())
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

impl From<&Window> for StoredDrill {
    fn from(w: &Window) -> Self {
        Self {
            id: w.id.clone(),
            title: w.title.clone(),
            start: w.start.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            end: w.end.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            services: w.services.clone(),
        }
    }
}

/// The file's drills, checked as strictly as the admin API checks a new drill.
fn parse(text: &[u8]) -> Result<Vec<Window>, Corrupt> {
    let doc: OnDisk = serde_json::from_slice(text)?;
    if doc.format != FORMAT {
        return Err(Corrupt::Format(doc.format));
    }
    let mut out: Vec<Window> = Vec::with_capacity(doc.drills.len());
    for d in doc.drills {
        let bad = |problem: &str| Corrupt::Drill {
            id: d.id.clone(),
            problem: problem.to_string(),
        };
        let time = |text: &str| DateTime::parse_from_rfc3339(text).map(|t| t.to_utc());
        let (Ok(start), Ok(end)) = (time(&d.start), time(&d.end)) else {
            return Err(bad("`start` and `end` must be RFC 3339 times"));
        };
        if d.id.is_empty() || d.id.contains('/') {
            return Err(bad("the id must be non-empty without '/'"));
        }
        if end <= start {
            return Err(bad("it ends before it starts"));
        }
        if d.services.is_empty() || !d.services.iter().all(|s| is_valid_service(s)) {
            return Err(bad("`services` must list valid service names"));
        }
        if out.iter().any(|w| w.id == d.id) {
            return Err(bad("the id appears twice"));
        }
        out.push(Window {
            id: d.id,
            title: d.title,
            start,
            end,
            services: d.services,
            source: Source::Drill,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn drill(id: &str, start: &str, end: &str) -> Window {
        Window {
            id: id.into(),
            title: format!("ad-hoc drill {id}"),
            start: t(start),
            end: t(end),
            services: vec!["webcollect.api".into()],
            source: Source::Drill,
        }
    }

    fn temp_store(name: &str) -> DrillStore {
        let dir = std::env::temp_dir().join(format!(
            "webcollect-shim-store-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        DrillStore::new(dir)
    }

    #[test]
    fn saved_drills_come_back_and_expired_ones_are_dropped() {
        let store = temp_store("roundtrip");
        let open = drill(
            "drill-7",
            "2020-04-20T02:00:00.123456789+09:00",
            "2020-04-20T03:00:00+09:00",
        );
        let old = drill(
            "old",
            "2020-04-20T01:00:00+09:00",
            "2020-04-20T02:00:00+09:00",
        );
        store.save(&[open.clone(), old.clone()]).unwrap();
        assert_eq!(
            store.load(t("2020-04-20T01:30:00+09:00")),
            [open.clone(), old]
        );
        // At the end of `old` it has expired (windows are half-open).
        assert_eq!(
            store.load(t("2020-04-20T02:00:00+09:00")),
            std::slice::from_ref(&open)
        );
        assert!(!store.dir().join(TEMP).exists());
        assert_eq!(next_generated_id(&[open]), 8);
        assert_eq!(next_generated_id(&[]), 1);
        fs::remove_dir_all(store.dir()).unwrap();
    }

    #[test]
    fn a_missing_directory_is_created_and_a_missing_file_is_no_drills() {
        let store = temp_store("missing");
        assert!(store.load(t("2020-04-20T01:30:00+09:00")).is_empty());
        assert!(store.dir().is_dir());
        fs::remove_dir_all(store.dir()).unwrap();
    }

    #[test]
    fn an_invalid_file_is_set_aside_not_fatal() {
        let store = temp_store("corrupt");
        let now = t("2020-04-20T01:30:00+09:00");
        let cases = [
            "{\"format\": 1, \"drills\": [",
            "{\"format\": 2, \"drills\": []}",
            "{\"format\": 1, \"drills\": [{\"id\": \"a\", \"title\": \"a\", \"start\": \"2020-04-20T03:00:00Z\", \"end\": \"2020-04-20T02:00:00Z\", \"services\": [\"webcollect\"]}]}",
            "{\"format\": 1, \"drills\": [{\"id\": \"a\", \"title\": \"a\", \"start\": \"x\", \"end\": \"2020-04-20T02:00:00Z\", \"services\": [\"webcollect\"]}]}",
            "{\"format\": 1, \"drills\": [{\"id\": \"a\", \"title\": \"a\", \"start\": \"2020-04-20T01:00:00Z\", \"end\": \"2020-04-20T02:00:00Z\", \"services\": [\"a..b\"]}]}",
        ];
        fs::create_dir_all(store.dir()).unwrap();
        for (i, text) in cases.iter().enumerate() {
            fs::write(store.path(), text).unwrap();
            assert!(store.load(now).is_empty(), "{text}");
            assert!(!store.path().exists(), "{text} was not set aside");
            let aside = if i == 0 {
                store.dir().join(CORRUPT)
            } else {
                store.dir().join(format!("{CORRUPT}.{i}"))
            };
            assert_eq!(fs::read_to_string(&aside).unwrap(), *text);
        }
        // The next save works as usual.
        let d = drill(
            "a",
            "2020-04-20T01:00:00+09:00",
            "2020-04-20T02:00:00+09:00",
        );
        store.save(std::slice::from_ref(&d)).unwrap();
        assert_eq!(store.load(now), [d]);
        fs::remove_dir_all(store.dir()).unwrap();
    }

    #[test]
    fn a_save_that_cannot_write_reports_the_path_and_keeps_the_old_file() {
        let store = temp_store("unwritable");
        let d = drill(
            "a",
            "2020-04-20T01:00:00+09:00",
            "2020-04-20T02:00:00+09:00",
        );
        store.save(std::slice::from_ref(&d)).unwrap();
        // A directory where the temporary file should go makes the write fail.
        fs::create_dir_all(store.dir().join(TEMP)).unwrap();
        let err = store.save(&[]).unwrap_err();
        assert!(err.to_string().contains(FILE), "{err}");
        assert_eq!(store.load(t("2020-04-20T01:30:00+09:00")), [d]);
        fs::remove_dir_all(store.dir()).unwrap();
    }

    #[test]
    fn the_environment_overrides_the_configured_directory() {
        let config = Config::from_toml_with_env(
            Path::new("/etc/shim/shim.toml"),
            "[admin]\nstate_dir = \"state\"\n[upstreams.a]\nurl = \"http://a\"\n[[routes]]\nid = \"r\"\npath = \"/\"\nkind = \"api\"\nservice = \"s\"\nupstream = \"a\"\n",
            &|_| None,
        )
        .unwrap();
        // Relative to the config file's directory, like every path in the file.
        let configured = DrillStore::for_config(&config, &|_| None).unwrap();
        assert_eq!(configured.dir(), Path::new("/etc/shim/state"));
        let env = |name: &str| (name == STATE_DIR_ENV).then(|| "/var/lib/replica-2".to_string());
        let overridden = DrillStore::for_config(&config, &env).unwrap();
        assert_eq!(overridden.dir(), Path::new("/var/lib/replica-2"));
    }
}
