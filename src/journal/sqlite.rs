//! The journal in SQLite (stub: being written).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Record;
use super::store::{Batch, DrillSpan, Store, StoreError};
use crate::clock::Clock;

/// A journal file.
#[derive(Debug)]
pub struct Sqlite;

impl Sqlite {
    /// Opens (or creates) the journal at `path`.
    ///
    /// # Errors
    /// Always, for now.
    pub fn open(_path: &Path, _clock: &dyn Clock) -> Result<Self, StoreError> {
        Err("not yet".into())
    }
}

impl Store for Sqlite {
    fn append(&self, _batch: &Batch) -> Result<(), StoreError> {
        Err("not yet".into())
    }
    fn records(&self, _from: DateTime<Utc>, _to: DateTime<Utc>) -> Result<Vec<Record>, StoreError> {
        Err("not yet".into())
    }
    fn dropped(&self, _from: DateTime<Utc>, _to: DateTime<Utc>) -> Result<u64, StoreError> {
        Err("not yet".into())
    }
    fn drills(&self) -> Result<Vec<DrillSpan>, StoreError> {
        Err("not yet".into())
    }
    fn prune(&self, _before: DateTime<Utc>, _max: usize) -> Result<u64, StoreError> {
        Err("not yet".into())
    }
    fn location(&self) -> String {
        String::new()
    }
}
