//! Open ad-hoc drills on disk (`[admin] state_dir`): the whole set is rewritten atomically
//! after every change and read back at start, so a restart keeps them. A file that cannot be
//! read back is set aside and logged, never fatal. The file is read and written through
//! [`crate::safe_file`]: no symbolic link, no FIFO, a size cap, an exclusive temporary file.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, EnvLookup};
use crate::safe_file;
use crate::schedule::{Source, Window};
use crate::state::input;

/// Environment variable that overrides `[admin] state_dir` for one process: replicas that
/// share a config file (one ConfigMap) must not share a state directory.
pub(crate) const STATE_DIR_ENV: &str = "WEBCOLLECT_SHIM_STATE_DIR";

/// The file in the state directory.
pub(crate) const FILE: &str = "drills.json";
/// Largest drills file read back: about 100,000 drills with the longest titles. Far past what
/// the default `[admin] max_drills` writes; a bigger file is refused and logged.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;
/// A set-aside file is renamed to `drills.json.corrupt` (then `.corrupt.1`, `.corrupt.2`, …).
const CORRUPT: &str = "drills.json.corrupt";
const FORMAT: u32 = 1;

/// Where one process keeps its open drills.
#[derive(Debug, Clone)]
pub(crate) struct DrillStore {
    dir: PathBuf,
}

/// The drills could not be written (they stay open in memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub(crate) struct SaveError {
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
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The store a process uses: [`STATE_DIR_ENV`] when set, else `[admin] state_dir`, else
    /// none (drills live in memory only).
    #[must_use]
    pub(crate) fn for_config(config: &Config, env: &EnvLookup) -> Option<Self> {
        env(STATE_DIR_ENV)
            .filter(|dir| !dir.trim().is_empty())
            .map(PathBuf::from)
            .or_else(|| config.admin.state_dir.clone())
            .map(Self::new)
    }

    /// The state directory.
    #[must_use]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// The drills still open at `now`. A missing file is an empty set; an unreadable or
    /// invalid one is renamed aside and logged, and the shim starts without drills.
    #[must_use]
    pub(crate) fn load(&self, now: DateTime<Utc>) -> Vec<Window> {
        if let Err(err) = fs::create_dir_all(&self.dir) {
            tracing::error!(dir = %self.dir.display(), error = %err, "Cannot create the state directory; open drills will not survive a restart.");
        }
        let text = match safe_file::read_state(&self.path(), MAX_FILE_BYTES) {
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
    pub(crate) fn save(&self, drills: &[Window]) -> Result<(), SaveError> {
        let doc = OnDisk {
            format: FORMAT,
            drills: drills.iter().map(StoredDrill::from).collect(),
        };
        let write = || -> io::Result<()> {
            let mut bytes = serde_json::to_vec_pretty(&doc)?;
            bytes.push(b'\n');
            fs::create_dir_all(&self.dir)?;
            safe_file::write_atomic(&self.path(), &bytes)
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
pub(crate) fn next_generated_id(drills: &[Window]) -> u64 {
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

/// The file's drills, checked by the same rules as a new drill ([`input`]). Linear in the
/// number of drills (duplicates are found through a set).
fn parse(text: &[u8]) -> Result<Vec<Window>, Corrupt> {
    let doc: OnDisk = serde_json::from_slice(text)?;
    if doc.format != FORMAT {
        return Err(Corrupt::Format(doc.format));
    }
    let mut out: Vec<Window> = Vec::with_capacity(doc.drills.len());
    let mut ids: HashSet<String> = HashSet::with_capacity(doc.drills.len());
    for d in doc.drills {
        let bad = |problem: &str| Corrupt::Drill {
            id: d.id.clone(),
            problem: problem.to_string(),
        };
        let time = |text: &str| DateTime::parse_from_rfc3339(text).map(|t| t.to_utc());
        let (Ok(start), Ok(end)) = (time(&d.start), time(&d.end)) else {
            return Err(bad("`start` and `end` must be RFC 3339 times"));
        };
        let checked = input::check_id(&d.id)
            .and_then(|()| input::check_title(&d.title))
            .and_then(|()| input::check_services(&d.services));
        if let Err(problem) = checked {
            return Err(bad(&problem.to_string()));
        }
        if end <= start {
            return Err(bad("it ends before it starts"));
        }
        if !ids.insert(d.id.clone()) {
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

/// The restored drills the running config admits, as a new drill would be: each names only
/// services of the config and lasts at most `[admin] max_drill_duration`, and at most
/// `[admin] max_drills` of them (the first in the file). The config may have changed since
/// they were written, so the others are dropped and logged rather than the file set aside.
#[must_use]
pub(crate) fn admit(drills: Vec<Window>, config: &Config) -> Vec<Window> {
    let mut out = Vec::with_capacity(drills.len().min(config.admin.max_drills));
    for drill in drills {
        if out.len() >= config.admin.max_drills {
            tracing::warn!(drill = %drill.id, max_drills = config.admin.max_drills, "Restored drill dropped: [admin] max_drills are open already.");
            continue;
        }
        if let Err(refusal) = input::check_against(config, &drill.services, drill.end - drill.start)
        {
            tracing::warn!(drill = %drill.id, problem = %refusal, "Restored drill dropped: the config does not admit it.");
            continue;
        }
        out.push(drill);
    }
    out
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
        let temps = fs::read_dir(store.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".tmp")
            })
            .count();
        assert_eq!(temps, 0);
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
    fn a_save_that_cannot_write_reports_the_path() {
        let store = temp_store("unwritable");
        let d = drill(
            "a",
            "2020-04-20T01:00:00+09:00",
            "2020-04-20T02:00:00+09:00",
        );
        store.save(std::slice::from_ref(&d)).unwrap();
        // A directory where the file should go makes the rename fail.
        fs::remove_file(store.path()).unwrap();
        fs::create_dir_all(store.path().join("x")).unwrap();
        let err = store.save(&[]).unwrap_err();
        assert!(err.to_string().contains(FILE), "{err}");
        fs::remove_dir_all(store.path()).unwrap();
        store.save(std::slice::from_ref(&d)).unwrap();
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
