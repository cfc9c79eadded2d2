//! The drill journal in a SQLite file (WAL mode): the journal's writer thread appends one
//! transaction per batch while the admin API reads reports through a second connection. A
//! file that cannot be used is set aside and replaced, never fatal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _, Row, TransactionBehavior, params};

use super::Record;
use super::store::{Batch, DrillEvent, DrillSpan, Gap, Store, StoreError};
use crate::clock::Clock;

/// The schema this build writes, kept in `meta`. A file with any other version was written
/// by another build and is set aside rather than misread.
const SCHEMA_VERSION: i64 = 1;

/// The `meta` key under which [`SCHEMA_VERSION`] is kept.
const VERSION_KEY: &str = "schema_version";

/// How long a statement waits for a lock held by the other connection (a checkpoint, a
/// schema change) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Most drills kept: they are small and reports need old ones, but not without bound.
const MAX_DRILLS: i64 = 10_000;

/// The files SQLite may keep next to the database; they belong to it and move with it.
const SIBLINGS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The tables and indexes. `STRICT` so a value of the wrong type is an error, not a silent
/// conversion. Times are unix microseconds; `"window"` and `"end"` are quoted because they
/// are SQL keywords.
const SCHEMA: &str = r#"
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

/// The `requests` columns in [`Record`]'s order: inserts bind them and reads map them in it.
const REQUEST_COLUMNS: &str = "real_time, drill_time, replica, request_id, route, service, \
    kind, method, function_div, trader_code, order_no, decision, \"window\", error, status, \
    return_code, error_code, latency_us, reached";

/// The journal in a SQLite file. The writer connection is used by the journal's writer
/// thread (appends, retention); the reader connection by report queries, so that a long
/// report holds only the reader's lock: in WAL mode it never blocks the writer.
pub struct Sqlite {
    /// The database file.
    path: PathBuf,
    /// Report queries (opened read-only). Declared before `writer` so it is dropped first:
    /// the last connection to close checkpoints the WAL into the file and deletes it, and a
    /// read-only one cannot.
    reader: Mutex<Connection>,
    /// Appends and prunes.
    writer: Mutex<Connection>,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Why an existing file was not used and is set aside.
#[derive(Debug, thiserror::Error)]
enum Unusable {
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
    fn in_use(&self) -> bool {
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
enum OpenError {
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
    pub fn open(path: &Path, clock: &dyn Clock) -> Result<Self, StoreError> {
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
fn check_kind(path: &Path) -> Result<(), OpenError> {
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
fn sibling(path: &Path, suffix: &str) -> PathBuf {
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
fn set_aside(path: &Path, now: DateTime<Utc>) -> io::Result<Option<PathBuf>> {
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
fn flags() -> OpenFlags {
    OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW
}

/// Opens, checks and prepares the file at `path`: one attempt.
fn connect(path: &Path) -> Result<Sqlite, Unusable> {
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
fn quick_check(db: &Connection) -> Result<(), Unusable> {
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
fn create_schema(db: &Connection) -> Result<(), Unusable> {
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

/// A time as stored: unix microseconds (sub-microsecond digits are dropped).
fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// The first stored value not before `at`: a bound in microseconds that selects exactly
/// the stored times a comparison with `at` would, whatever `at`'s nanoseconds.
fn micros_ceil(at: DateTime<Utc>) -> i64 {
    let us = at.timestamp_micros();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000) {
        us
    } else {
        us.saturating_add(1)
    }
}

/// A count as stored: SQLite integers are signed, so a count past `i64::MAX` saturates.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads column `idx` as a stored time.
fn time(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let us: i64 = row.get(idx)?;
    DateTime::from_timestamp_micros(us).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Integer,
            format!("time {us} µs is out of range").into(),
        )
    })
}

/// Reads a `requests` row selected with [`REQUEST_COLUMNS`].
fn record(row: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        real_time: time(row, 0)?,
        drill_time: time(row, 1)?,
        replica: row.get(2)?,
        request_id: row.get(3)?,
        route: row.get(4)?,
        service: row.get(5)?,
        kind: row.get(6)?,
        method: row.get(7)?,
        function_div: row.get(8)?,
        trader_code: row.get(9)?,
        order_no: row.get(10)?,
        decision: row.get(11)?,
        window: row.get(12)?,
        error: row.get(13)?,
        status: row.get(14)?,
        return_code: row.get(15)?,
        error_code: row.get(16)?,
        latency_us: row.get(17)?,
        reached: row.get(18)?,
    })
}

/// Reads a `drills` row (`id, title, services, start, end`).
fn drill(row: &Row<'_>) -> rusqlite::Result<DrillSpan> {
    let services: String = row.get(2)?;
    Ok(DrillSpan {
        id: row.get(0)?,
        title: row.get(1)?,
        services: serde_json::from_str(&services).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(2, Type::Text, Box::new(err))
        })?,
        start: time(row, 3)?,
        end: time(row, 4)?,
    })
}

impl Sqlite {
    /// The writer connection. A panic while it was held leaves no open transaction (the
    /// guard rolls back on unwind), so a poisoned lock is still usable.
    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reader connection (see [`Sqlite::writer`] on poisoning).
    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The statement that inserts one record.
fn insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        )
    })
}

/// Writes one record with the batch's insert statement (looked up once per batch: the
/// statement cache hashes the whole SQL text at every lookup).
fn insert_record(stmt: &mut rusqlite::Statement<'_>, r: &Record) -> rusqlite::Result<()> {
    stmt.execute(params![
        micros(r.real_time),
        micros(r.drill_time),
        r.replica,
        r.request_id,
        r.route,
        r.service,
        r.kind,
        r.method,
        r.function_div,
        r.trader_code,
        r.order_no,
        r.decision,
        r.window,
        r.error,
        r.status,
        r.return_code,
        r.error_code,
        count(r.latency_us),
        r.reached,
    ])?;
    Ok(())
}

/// Applies a drill event as [`super::store::apply_drill_event`] does on a list.
fn apply_drill_event(db: &Connection, event: &DrillEvent) -> Result<(), StoreError> {
    match event {
        DrillEvent::Opened(span) => {
            // The same `(id, start)` restored at every start is kept once, as first seen.
            db.prepare_cached(
                "INSERT OR IGNORE INTO drills (id, title, services, start, \"end\") \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                span.id,
                span.title,
                serde_json::to_string(&span.services)?,
                micros(span.start),
                micros(span.end),
            ])?;
        }
        DrillEvent::Closed { id, start, end } => {
            // Closing never extends a drill: the earlier end wins.
            db.prepare_cached(
                "UPDATE drills SET \"end\" = min(\"end\", ?3) WHERE id = ?1 AND start = ?2",
            )?
            .execute(params![id, micros(*start), micros(*end)])?;
        }
    }
    Ok(())
}

/// Writes a gap.
fn insert_gap(db: &Connection, gap: &Gap) -> rusqlite::Result<()> {
    db.prepare_cached("INSERT INTO gaps (real_time, drill_time, dropped) VALUES (?1, ?2, ?3)")?
        .execute(params![
            micros(gap.real_time),
            micros(gap.drill_time),
            count(gap.dropped)
        ])?;
    Ok(())
}

impl Store for Sqlite {
    fn append(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut db = self.writer();
        // IMMEDIATE takes the write lock up front: one fsync-free commit per batch, and no
        // lock upgrade that could fail halfway.
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !batch.records.is_empty() {
            let mut insert = tx.prepare_cached(insert_sql())?;
            for r in &batch.records {
                insert_record(&mut insert, r)?;
            }
        }
        for event in &batch.drills {
            apply_drill_event(&tx, event)?;
        }
        if let Some(gap) = &batch.gap {
            insert_gap(&tx, gap)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn records(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Record>, StoreError> {
        let db = self.reader();
        let mut stmt = db.prepare_cached(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE drill_time >= ?1 AND drill_time < ?2 \
             ORDER BY drill_time, real_time, id"
        ))?;
        let rows = stmt
            .query_map(params![micros_ceil(from), micros_ceil(to)], record)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn dropped(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<u64, StoreError> {
        let db = self.reader();
        let sum: i64 = db
            .prepare_cached(
                "SELECT coalesce(sum(dropped), 0) FROM gaps WHERE drill_time >= ?1 AND drill_time < ?2",
            )?
            .query_row(params![micros_ceil(from), micros_ceil(to)], |row| row.get(0))?;
        Ok(u64::try_from(sum)?)
    }

    fn drills(&self) -> Result<Vec<DrillSpan>, StoreError> {
        let db = self.reader();
        let mut stmt = db.prepare_cached(
            "SELECT id, title, services, start, \"end\" FROM drills ORDER BY start, rowid",
        )?;
        let rows = stmt.query_map([], drill)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn prune(&self, before: DateTime<Utc>, max_records: usize) -> Result<u64, StoreError> {
        let mut db = self.writer();
        let tx = db.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = micros_ceil(before);
        let mut deleted = tx
            .prepare_cached("DELETE FROM requests WHERE real_time < ?1")?
            .execute([before])?;
        tx.prepare_cached("DELETE FROM gaps WHERE real_time < ?1")?
            .execute([before])?;
        // Drills carry only drill time, which says nothing about real age: keep the newest.
        tx.prepare_cached(
            "DELETE FROM drills WHERE rowid NOT IN \
             (SELECT rowid FROM drills ORDER BY start DESC, rowid DESC LIMIT ?1)",
        )?
        .execute([MAX_DRILLS])?;
        // Ids grow with insertion, so the `max_records`-th newest id marks the cut; with
        // fewer rows the subquery is NULL and nothing goes.
        deleted += tx
            .prepare_cached(
                "DELETE FROM requests WHERE id <= \
                 (SELECT id FROM requests ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            )?
            .execute([i64::try_from(max_records).unwrap_or(i64::MAX)])?;
        tx.commit()?;
        Ok(deleted as u64)
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use chrono::TimeDelta;

    use super::*;
    use crate::clock::ManualClock;
    use crate::journal::store::apply_drill_event as apply_to_list;

    /// An RFC 3339 time.
    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        /// A unique directory name (pid and counter); not created yet.
        fn new(name: &str) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "webcollect-shim-sqlite-{name}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            Self(dir)
        }

        /// The journal's path in it.
        fn db(&self) -> PathBuf {
            // A directory that does not exist yet: `open` creates it.
            self.0.join("state").join("journal.sqlite")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// The real clock at a fixed time: set-aside names are known in advance.
    fn clock() -> ManualClock {
        ManualClock::new(t("2026-11-27T12:34:56Z"))
    }

    /// A record with every field set.
    fn full(real: DateTime<Utc>, drill: DateTime<Utc>, id: &str) -> Record {
        Record {
            real_time: real,
            drill_time: drill,
            replica: "shim-a".into(),
            request_id: id.into(),
            route: "settle".into(),
            service: "credit".into(),
            kind: "api".into(),
            method: "POST".into(),
            function_div: Some("A08".into()),
            trader_code: Some("123456789".into()),
            order_no: Some("order-1".into()),
            decision: "drill-maintenance".into(),
            window: Some("drill-7".into()),
            error: Some("upstream-timeout".into()),
            status: 503,
            return_code: Some("1".into()),
            error_code: Some("Z012000004".into()),
            latency_us: 123_456,
            reached: true,
        }
    }

    /// A record with every option `None`.
    fn bare(real: DateTime<Utc>, drill: DateTime<Utc>, id: &str) -> Record {
        Record {
            function_div: None,
            trader_code: None,
            order_no: None,
            window: None,
            error: None,
            return_code: None,
            error_code: None,
            reached: false,
            status: 200,
            latency_us: 0,
            decision: "pass".into(),
            ..full(real, drill, id)
        }
    }

    /// A drill on two services.
    fn span(id: &str, start: &str, end: &str) -> DrillSpan {
        DrillSpan {
            id: id.into(),
            title: format!("drill {id}"),
            services: vec!["credit".into(), "cvs".into()],
            start: t(start),
            end: t(end),
        }
    }

    /// Before every time in the tests.
    const ALL_FROM: &str = "2000-01-01T00:00:00Z";
    /// After every time in the tests.
    const ALL_TO: &str = "2100-01-01T00:00:00Z";

    /// Every record in `db`.
    fn all(db: &Sqlite) -> Vec<Record> {
        db.records(t(ALL_FROM), t(ALL_TO)).unwrap()
    }

    #[test]
    fn is_a_store() {
        fn store<S: Store>() {}
        store::<Sqlite>();
    }

    #[test]
    fn records_round_trip_exactly_with_and_without_options() {
        let dir = TempDir::new("roundtrip");
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        assert_eq!(db.location(), dir.db().display().to_string());
        let a = full(
            t("2026-11-27T12:00:00.123456Z"),
            t("2020-04-20T02:00:01.5Z"),
            "a",
        );
        let b = bare(t("2026-11-27T12:00:01Z"), t("2020-04-20T02:00:00Z"), "b");
        db.append(&Batch {
            records: vec![a.clone(), b.clone()],
            ..Batch::default()
        })
        .unwrap();
        // Ordered by drill time, not insertion.
        assert_eq!(all(&db), vec![b.clone(), a.clone()]);
        // [from, to): `to` excludes, `from` includes.
        assert_eq!(
            db.records(t("2020-04-20T02:00:00Z"), t("2020-04-20T02:00:01.5Z"))
                .unwrap(),
            vec![b.clone()]
        );
        assert_eq!(
            db.records(t("2020-04-20T02:00:01.5Z"), t(ALL_TO)).unwrap(),
            vec![a.clone()]
        );
        // A bound with nanoseconds selects what comparing the stored times would.
        assert_eq!(
            db.records(
                t("2020-04-20T02:00:01.499999001Z"),
                t("2020-04-20T02:00:01.500000001Z")
            )
            .unwrap(),
            vec![a]
        );
        // Equal drill times: real time decides.
        let c = bare(t("2026-11-27T11:00:00Z"), t("2020-04-20T02:00:00Z"), "c");
        db.append(&Batch {
            records: vec![c.clone()],
            ..Batch::default()
        })
        .unwrap();
        assert_eq!(
            db.records(t("2020-04-20T02:00:00Z"), t("2020-04-20T02:00:00.000001Z"))
                .unwrap(),
            vec![c, b]
        );
    }

    #[test]
    fn drill_events_match_the_memory_semantics() {
        let dir = TempDir::new("drills");
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        let first = span("drill-1", "2020-04-20T02:00:00Z", "2020-04-20T03:00:00Z");
        let other = span("drill-2", "2020-04-20T01:00:00Z", "2020-04-20T05:00:00Z");
        let again = DrillSpan {
            title: "restored".into(),
            end: t("2020-04-20T09:00:00Z"),
            ..first.clone()
        };
        let events = vec![
            DrillEvent::Opened(first.clone()),
            DrillEvent::Opened(other),
            // A duplicate open (restored at start) is ignored.
            DrillEvent::Opened(again),
            // Closed earlier: the end moves back.
            DrillEvent::Closed {
                id: "drill-1".into(),
                start: first.start,
                end: t("2020-04-20T02:30:00Z"),
            },
            // Closed "later" than its end: the end stays.
            DrillEvent::Closed {
                id: "drill-2".into(),
                start: t("2020-04-20T01:00:00Z"),
                end: t("2020-04-20T06:00:00Z"),
            },
            // The same id reused later is another drill.
            DrillEvent::Opened(span(
                "drill-1",
                "2020-04-20T04:00:00Z",
                "2020-04-20T04:30:00Z",
            )),
            // Closing an unknown drill changes nothing.
            DrillEvent::Closed {
                id: "drill-9".into(),
                start: first.start,
                end: t("2020-04-20T02:10:00Z"),
            },
        ];
        let mut expected = Vec::new();
        for event in &events {
            apply_to_list(&mut expected, event);
        }
        expected.sort_by_key(|d| d.start);
        // Split across batches, as the writer would.
        db.append(&Batch {
            drills: events[..3].to_vec(),
            ..Batch::default()
        })
        .unwrap();
        db.append(&Batch {
            drills: events[3..].to_vec(),
            ..Batch::default()
        })
        .unwrap();
        let got = db.drills().unwrap();
        assert_eq!(got, expected);
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].title, "drill drill-1");
        assert_eq!(got[1].end, t("2020-04-20T02:30:00Z"));
        assert_eq!(got[0].end, t("2020-04-20T05:00:00Z"));
    }

    #[test]
    fn gaps_are_summed_by_drill_time() {
        let dir = TempDir::new("gaps");
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        for (drill, dropped) in [
            ("2020-04-20T02:00:00Z", 3),
            ("2020-04-20T02:05:00Z", 4),
            ("2020-04-20T02:10:00Z", 5),
        ] {
            db.append(&Batch {
                gap: Some(Gap {
                    real_time: t("2026-11-27T12:00:00Z"),
                    drill_time: t(drill),
                    dropped,
                }),
                ..Batch::default()
            })
            .unwrap();
        }
        assert_eq!(db.dropped(t(ALL_FROM), t(ALL_TO)).unwrap(), 12);
        assert_eq!(
            db.dropped(t("2020-04-20T02:00:00Z"), t("2020-04-20T02:10:00Z"))
                .unwrap(),
            7
        );
        assert_eq!(db.dropped(t("2020-04-20T02:05:00Z"), t(ALL_TO)).unwrap(), 9);
        assert_eq!(db.dropped(t(ALL_FROM), t(ALL_FROM)).unwrap(), 0);
    }

    #[test]
    fn prune_by_time_then_by_count() {
        let dir = TempDir::new("prune");
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        let base = t("2026-11-27T12:00:00Z");
        let drill = t("2020-04-20T02:00:00Z");
        let records: Vec<Record> = (0..10)
            .map(|i| {
                bare(
                    base + TimeDelta::seconds(i),
                    drill + TimeDelta::seconds(i),
                    &format!("r{i}"),
                )
            })
            .collect();
        let gap = |real: DateTime<Utc>| Gap {
            real_time: real,
            drill_time: drill,
            dropped: 1,
        };
        db.append(&Batch {
            records: records.clone(),
            drills: vec![DrillEvent::Opened(span(
                "drill-1",
                "2020-04-20T02:00:00Z",
                "2020-04-20T03:00:00Z",
            ))],
            gap: Some(gap(base)),
        })
        .unwrap();
        db.append(&Batch {
            gap: Some(gap(base + TimeDelta::seconds(5))),
            ..Batch::default()
        })
        .unwrap();
        // By time: the first three records and the first gap go; drills stay.
        assert_eq!(db.prune(base + TimeDelta::seconds(3), 100).unwrap(), 3);
        assert_eq!(all(&db), records[3..].to_vec());
        assert_eq!(db.dropped(t(ALL_FROM), t(ALL_TO)).unwrap(), 1);
        assert_eq!(db.drills().unwrap().len(), 1);
        // By count: the oldest go until four remain.
        assert_eq!(db.prune(t(ALL_FROM), 4).unwrap(), 3);
        assert_eq!(all(&db), records[6..].to_vec());
        // Under both limits: nothing goes.
        assert_eq!(db.prune(t(ALL_FROM), 4).unwrap(), 0);
        assert_eq!(db.prune(t(ALL_FROM), 0).unwrap(), 4);
        assert!(all(&db).is_empty());
    }

    #[test]
    fn prune_keeps_the_newest_drills() {
        let dir = TempDir::new("many-drills");
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        let start = t("2020-04-20T00:00:00Z");
        let drills: Vec<DrillEvent> = (0..MAX_DRILLS + 5)
            .map(|i| {
                DrillEvent::Opened(DrillSpan {
                    id: format!("drill-{i}"),
                    title: String::new(),
                    services: Vec::new(),
                    start: start + TimeDelta::seconds(i),
                    end: start + TimeDelta::seconds(i + 60),
                })
            })
            .collect();
        db.append(&Batch {
            drills,
            ..Batch::default()
        })
        .unwrap();
        assert_eq!(db.prune(t(ALL_FROM), 10).unwrap(), 0);
        let kept = db.drills().unwrap();
        assert_eq!(kept.len(), 10_000);
        assert_eq!(kept[0].id, "drill-5");
        assert!(kept[0].services.is_empty());
    }

    #[test]
    fn everything_survives_a_restart() {
        let dir = TempDir::new("restart");
        let record = full(t("2026-11-27T12:00:00Z"), t("2020-04-20T02:00:00Z"), "a");
        let drill = span("drill-1", "2020-04-20T02:00:00Z", "2020-04-20T03:00:00Z");
        {
            let db = Sqlite::open(&dir.db(), &clock()).unwrap();
            db.append(&Batch {
                records: vec![record.clone()],
                drills: vec![DrillEvent::Opened(drill.clone())],
                gap: Some(Gap {
                    real_time: t("2026-11-27T12:00:00Z"),
                    drill_time: t("2020-04-20T02:00:00Z"),
                    dropped: 2,
                }),
            })
            .unwrap();
        }
        let db = Sqlite::open(&dir.db(), &clock()).unwrap();
        assert_eq!(all(&db), vec![record]);
        assert_eq!(db.drills().unwrap(), vec![drill]);
        assert_eq!(db.dropped(t(ALL_FROM), t(ALL_TO)).unwrap(), 2);
        // Nothing was set aside.
        assert!(
            fs::read_dir(dir.0.join("state")).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("corrupt"))
        );
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_replaced() {
        let dir = TempDir::new("corrupt");
        let path = dir.db();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Deterministic garbage (xorshift), not a SQLite header.
        let mut x: u32 = 0x9e37_79b9;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect();
        fs::write(&path, &garbage).unwrap();
        let db = Sqlite::open(&path, &clock()).unwrap();
        let aside = sibling(&path, ".corrupt-20261127T123456Z");
        assert_eq!(fs::read(&aside).unwrap(), garbage);
        let record = bare(t("2026-11-27T12:00:00Z"), t("2020-04-20T02:00:00Z"), "a");
        db.append(&Batch {
            records: vec![record.clone()],
            ..Batch::default()
        })
        .unwrap();
        assert_eq!(all(&db), vec![record]);
        drop(db);
        // Closed cleanly, the WAL went into the file: garbage written now is what is read.
        assert!(!sibling(&path, "-wal").exists());
        // A second corrupt file in the same second gets a free name.
        fs::write(&path, &garbage).unwrap();
        let _db = Sqlite::open(&path, &clock()).unwrap();
        assert_eq!(fs::read(sibling(&aside, ".1")).unwrap(), garbage);
    }

    #[test]
    fn setting_aside_moves_the_siblings_too() {
        let dir = TempDir::new("siblings");
        let path = dir.db();
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let now = t("2026-11-27T12:34:56Z");
        assert_eq!(set_aside(&path, now).unwrap(), None);
        for suffix in ["", "-wal", "-shm"] {
            fs::write(sibling(&path, suffix), suffix).unwrap();
        }
        let aside = set_aside(&path, now).unwrap().unwrap();
        assert_eq!(aside, sibling(&path, ".corrupt-20261127T123456Z"));
        for suffix in ["", "-wal", "-shm"] {
            assert!(!sibling(&path, suffix).exists(), "{suffix}");
            assert_eq!(
                fs::read(sibling(&aside, suffix)).unwrap(),
                suffix.as_bytes()
            );
        }
        assert!(!sibling(&aside, "-journal").exists());
        // A name whose WAL alone is taken is not reused.
        fs::write(&path, "again").unwrap();
        fs::write(sibling(&path, ".corrupt-20261127T123456Z.1-wal"), "x").unwrap();
        assert_eq!(
            set_aside(&path, now).unwrap().unwrap(),
            sibling(&path, ".corrupt-20261127T123456Z.2")
        );
    }

    #[test]
    fn only_a_lock_counts_as_in_use() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert!(Unusable::Open(failure(rusqlite::ffi::SQLITE_BUSY)).in_use());
        assert!(Unusable::Schema(failure(rusqlite::ffi::SQLITE_LOCKED)).in_use());
        assert!(!Unusable::Open(failure(rusqlite::ffi::SQLITE_NOTADB)).in_use());
        assert!(!Unusable::Schema(failure(rusqlite::ffi::SQLITE_CORRUPT)).in_use());
        assert!(!Unusable::Foreign.in_use());
    }

    #[test]
    fn a_newer_schema_is_set_aside() {
        let dir = TempDir::new("newer");
        let path = dir.db();
        drop(Sqlite::open(&path, &clock()).unwrap());
        {
            let db = Connection::open(&path).unwrap();
            db.execute("UPDATE meta SET value = 99 WHERE key = ?1", [VERSION_KEY])
                .unwrap();
        }
        let db = Sqlite::open(&path, &clock()).unwrap();
        assert!(sibling(&path, ".corrupt-20261127T123456Z").exists());
        assert!(db.drills().unwrap().is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_or_a_directory_is_refused() {
        let dir = TempDir::new("symlink");
        let path = dir.db();
        let target = dir.0.join("elsewhere.sqlite");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = Sqlite::open(&path, &clock()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        // Neither the link nor its target was touched.
        assert!(
            fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(!target.exists());

        let dir = TempDir::new("directory");
        fs::create_dir_all(dir.db()).unwrap();
        let err = Sqlite::open(&dir.db(), &clock()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }

    #[test]
    fn readers_and_the_writer_share_the_store() {
        let dir = TempDir::new("threads");
        let db = std::sync::Arc::new(Sqlite::open(&dir.db(), &clock()).unwrap());
        let writer = {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let r = bare(
                        t("2026-11-27T12:00:00Z"),
                        t("2020-04-20T02:00:00Z") + TimeDelta::seconds(i),
                        &format!("r{i}"),
                    );
                    db.append(&Batch {
                        records: vec![r],
                        ..Batch::default()
                    })
                    .unwrap();
                }
            })
        };
        for _ in 0..50 {
            // Each read sees a committed prefix.
            let seen = all(&db);
            assert!(
                seen.iter()
                    .enumerate()
                    .all(|(i, r)| r.request_id == format!("r{i}"))
            );
        }
        writer.join().unwrap();
        assert_eq!(all(&db).len(), 50);
    }
}
