//! Opening the journal's file: the schema, the checks, and setting aside a file that cannot
//! be used (corrupt, another program's, another build's), never following a link.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::Sqlite;
use crate::clock::Clock;
use crate::journal::store::StoreError;

/// The schema this build writes, kept in `meta`. A file with any other version was written
/// by another build and is set aside rather than misread.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// The `meta` key under which [`SCHEMA_VERSION`] is kept.
pub(super) const VERSION_KEY: &str = "schema_version";

/// How long a statement waits for a lock held by the other connection (a checkpoint, a
/// schema change) before it fails.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The files SQLite may keep next to the database; they belong to it and move with it.
pub(super) const SIBLINGS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The tables and indexes. `STRICT` so a value of the wrong type is an error, not a silent
/// conversion. Times are unix microseconds; `"window"` and `"end"` are quoted because they
/// are SQL keywords.
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    real_time INTEGER NOT NULL,
    drill_time INTEGER NOT NULL,
    replica TEXT NOT NULL,
    request_id TEXT NOT NULL,
    route TEXT NOT NULL,
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    method TEXT NOT NULL,
    function_div TEXT,
    trader_code TEXT,
    order_no TEXT,
    decision TEXT NOT NULL,
    "window" TEXT,
    error TEXT,
    status INTEGER NOT NULL,
    return_code TEXT,
    error_code TEXT,
    latency_us INTEGER NOT NULL,
    reached INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS requests_drill_time ON requests (drill_time, real_time);
CREATE INDEX IF NOT EXISTS requests_real_time ON requests (real_time);
CREATE TABLE IF NOT EXISTS gaps (
    real_time INTEGER NOT NULL,
    drill_time INTEGER NOT NULL,
    dropped INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS gaps_drill_time ON gaps (drill_time);
CREATE TABLE IF NOT EXISTS drills (
    id TEXT NOT NULL,
    title TEXT NOT NULL,
    services TEXT NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    PRIMARY KEY (id, start)
) STRICT;
"#;

/// Why an existing file was not used and is set aside.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unusable {
    /// SQLite could not open or configure it.
    #[error("cannot open it")]
    Open(#[source] rusqlite::Error),
    /// `PRAGMA quick_check` found damage.
    #[error("integrity check failed: {0}")]
    Check(String),
    /// It holds tables but no journal `meta`: another program's database.
    #[error("not a drill journal (it has tables but no schema version)")]
    Foreign,
    /// Written by another build.
    #[error("schema version {0} is not this build's {SCHEMA_VERSION}")]
    Version(i64),
    /// The schema could not be created or read.
    #[error("cannot create the schema")]
    Schema(#[source] rusqlite::Error),
}

impl Unusable {
    /// SQLite gave up waiting for another connection's lock (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    pub(super) fn in_use(&self) -> bool {
        let (Self::Open(err) | Self::Schema(err)) = self else {
            return false;
        };
        matches!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

/// Why the journal cannot be opened at all (the caller then records in memory).
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    /// Opening through a link could touch a file elsewhere; the path must be the file.
    #[error("{} is a symbolic link; the journal does not follow links", .0.display())]
    Symlink(PathBuf),
    /// A FIFO or a device could block or never end; a directory is not a database.
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    /// The directory or the path cannot be inspected or created.
    #[error("cannot use {}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The unusable file could not be moved out of the way, so no fresh one can be made.
    #[error("cannot set aside the unusable journal ({cause})")]
    SetAside {
        /// Why it was unusable.
        cause: String,
        /// Why it could not be moved.
        #[source]
        source: io::Error,
    },
    /// Another process holds the file locked past the busy timeout: it is in use, not
    /// broken, so it is left alone.
    #[error("the journal is in use by another process")]
    InUse(#[source] Unusable),
    /// A first attempt failed on a file that was not there to set aside, or the fresh
    /// file failed too.
    #[error("cannot create a journal")]
    Fresh(#[source] Unusable),
}

impl Sqlite {
    /// Opens (or creates) the journal at `path`, creating its directory. A file that SQLite
    /// cannot open, that fails `PRAGMA quick_check`, or that has another schema version is
    /// renamed to `<name>.corrupt-<YYYYmmddTHHMMSSZ>` (at `clock`'s time, with its `-wal`
    /// and `-shm` files), logged, and replaced by a fresh one.
    ///
    /// # Errors
    /// When `path` is a symbolic link or not a regular file (never opened: a FIFO would
    /// block), when its directory cannot be created, or when no usable database can be made
    /// there even after setting the old one aside.
    pub(crate) fn open(path: &Path, clock: &dyn Clock) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| OpenError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        check_kind(path)?;
        for suffix in SIBLINGS {
            check_kind(&sibling(path, suffix))?;
        }
        let cause = match connect(path) {
            Ok(db) => return Ok(db),
            Err(cause) if cause.in_use() => return Err(OpenError::InUse(cause).into()),
            Err(cause) => cause,
        };
        let Some(set_aside) =
            set_aside(path, clock.now()).map_err(|source| OpenError::SetAside {
                cause: crate::error::Chain(&cause).to_string(),
                source,
            })?
        else {
            // Nothing was there: the failure is the directory's, and retrying would repeat it.
            return Err(OpenError::Fresh(cause).into());
        };
        let error = crate::error::Chain(&cause);
        tracing::error!(path = %path.display(), set_aside = %set_aside.display(), %error,
            "The drill journal is unusable; it was set aside, starting a new one.");
        connect(path).map_err(|cause| OpenError::Fresh(cause).into())
    }
}

/// Refuses a path that exists but is not a regular file; a missing one is fine. Uses
/// `symlink_metadata` so that a link is seen as a link, not as what it points to.
pub(super) fn check_kind(path: &Path) -> Result<(), OpenError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(OpenError::Symlink(path.to_path_buf())),
        Ok(meta) if !meta.is_file() => Err(OpenError::NotAFile(path.to_path_buf())),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(OpenError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `path` with `suffix` appended to its file name (`journal.sqlite-wal`).
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames the database and its sibling files to `<name>.corrupt-<time>` (`.1`, `.2`, … if
/// taken), the siblings keeping their suffix after it so that SQLite opening the set-aside
/// copy still finds its WAL. Returns the new name, or `None` when there was no file.
///
/// SQLite may already have folded a valid WAL into the file, and deleted it, when the
/// failed attempt's connection closed: the set-aside file then holds those pages.
pub(super) fn set_aside(path: &Path, now: DateTime<Utc>) -> io::Result<Option<PathBuf>> {
    if !path.try_exists()? {
        return Ok(None);
    }
    let base = sibling(path, &format!(".corrupt-{}", now.format("%Y%m%dT%H%M%SZ")));
    let mut target = base.clone();
    let mut n = 0;
    while target.try_exists()?
        || SIBLINGS
            .iter()
            .map(|s| sibling(&target, s).try_exists())
            .collect::<io::Result<Vec<_>>>()?
            .contains(&true)
    {
        n += 1;
        target = sibling(&base, &format!(".{n}"));
    }
    // Siblings first: a stale WAL or rollback journal left beside a fresh database would be
    // replayed into it.
    for suffix in SIBLINGS {
        match fs::rename(sibling(path, suffix), sibling(&target, suffix)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
    }
    fs::rename(path, &target)?;
    Ok(Some(target))
}

/// Flags for both connections: no URI parsing (the path is a path), no following links,
/// and no SQLite mutex since each connection sits behind a `Mutex` of ours.
pub(super) fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW
}

/// Opens, checks and prepares the file at `path`: one attempt.
pub(super) fn connect(path: &Path) -> Result<Sqlite, Unusable> {
    let writer = Connection::open_with_flags(
        path,
        flags() | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(Unusable::Open)?;
    writer.busy_timeout(BUSY_TIMEOUT).map_err(Unusable::Open)?;
    quick_check(&writer)?;
    let mode: String = writer
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(Unusable::Open)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still a working database (the file system may lack shared memory): keep it, but
        // reports will then wait for the writer.
        tracing::warn!(path = %path.display(), %mode,
            "The drill journal could not switch to WAL mode.");
    }
    // With WAL, NORMAL loses at most the last transactions on a power cut, never integrity.
    writer
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(Unusable::Open)?;
    create_schema(&writer)?;
    let reader = Connection::open_with_flags(path, flags() | OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(Unusable::Open)?;
    reader.busy_timeout(BUSY_TIMEOUT).map_err(Unusable::Open)?;
    Ok(Sqlite {
        path: path.to_path_buf(),
        reader: Mutex::new(reader),
        writer: Mutex::new(writer),
    })
}

/// `PRAGMA quick_check`: one row `ok`, or rows describing the damage.
pub(super) fn quick_check(db: &Connection) -> Result<(), Unusable> {
    let mut stmt = db.prepare("PRAGMA quick_check").map_err(Unusable::Open)?;
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(Unusable::Open)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(Unusable::Open)?;
    if rows.len() == 1 && rows[0] == "ok" {
        Ok(())
    } else {
        Err(Unusable::Check(rows.join("; ")))
    }
}

/// Creates the tables in a new file, or checks the version of an existing journal.
pub(super) fn create_schema(db: &Connection) -> Result<(), Unusable> {
    let tx = db.unchecked_transaction().map_err(Unusable::Schema)?;
    let has_meta: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .map_err(Unusable::Schema)?
        > 0;
    if has_meta {
        let version: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [VERSION_KEY],
                |row| row.get(0),
            )
            .optional()
            .map_err(Unusable::Schema)?;
        match version {
            Some(SCHEMA_VERSION) => {}
            Some(other) => return Err(Unusable::Version(other)),
            None => return Err(Unusable::Foreign),
        }
    } else {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(Unusable::Schema)?;
        if tables > 0 {
            return Err(Unusable::Foreign);
        }
        tx.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT")
            .map_err(Unusable::Schema)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![VERSION_KEY, SCHEMA_VERSION],
        )
        .map_err(Unusable::Schema)?;
    }
    // `IF NOT EXISTS` throughout: on an existing journal this only restores a lost index.
    tx.execute_batch(SCHEMA).map_err(Unusable::Schema)?;
    tx.commit().map_err(Unusable::Schema)
}
