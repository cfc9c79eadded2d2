//! The drill journal in a SQLite file (WAL mode): the journal's writer thread appends one
//! transaction per batch while the admin API reads reports through a second connection. A
//! file that cannot be used is set aside and replaced, never fatal.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, Row, TransactionBehavior, params};

mod open;

use super::Record;
use super::store::{Batch, DrillEvent, DrillSpan, Gap, Store, StoreError};

/// Most drills kept: they are small and reports need old ones, but not without bound.
const MAX_DRILLS: i64 = 10_000;

/// The `requests` columns in [`Record`]'s order: inserts bind them and reads map them in it.
const REQUEST_COLUMNS: &str = "real_time, drill_time, replica, request_id, route, service, \
    kind, method, function_div, trader_code, order_no, decision, \"window\", error, status, \
    return_code, error_code, latency_us, reached";

/// The journal in a SQLite file. The writer connection is used by the journal's writer
/// thread (appends, retention); the reader connection by report queries, so that a long
/// report holds only the reader's lock: in WAL mode it never blocks the writer.
pub(crate) struct Sqlite {
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
    fn append(&self, batch: Batch) -> Result<(), StoreError> {
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
mod tests;
