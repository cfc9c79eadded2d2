//! The SQLite store's tests: exact round trips, drill events, gaps, retention, restarts,
//! corrupt and linked files.

use std::fs;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::TimeDelta;

use super::open::{Unusable, VERSION_KEY, set_aside, sibling};
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
    db.append(Batch {
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
    db.append(Batch {
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
    db.append(Batch {
        drills: events[..3].to_vec(),
        ..Batch::default()
    })
    .unwrap();
    db.append(Batch {
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
        db.append(Batch {
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
    db.append(Batch {
        records: records.clone(),
        drills: vec![DrillEvent::Opened(span(
            "drill-1",
            "2020-04-20T02:00:00Z",
            "2020-04-20T03:00:00Z",
        ))],
        gap: Some(gap(base)),
    })
    .unwrap();
    db.append(Batch {
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
    db.append(Batch {
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
        db.append(Batch {
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
    db.append(Batch {
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
                db.append(Batch {
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
