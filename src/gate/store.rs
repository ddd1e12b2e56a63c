//! The decision store: every decision the service makes, with its reason, path, time and VSA,
//! in one SQLite file. It is the audit log (what was admitted or refused, and why) and the
//! fast path's memory: a decision is reused only while it is valid (until the earliest of the
//! layout's expiry and the policy's maximum age), for the same artifact digest and the same
//! digest of everything it depended on (policy, trusted keys, service version), and only if
//! its outcome was deterministic (a registry timeout or a 5xx is recorded, never reused).
//!
//! Writes are crash-safe: each decision is one transaction, committed to the write-ahead log
//! with a full sync before [`Store::record`] returns, so a decision the service answered with
//! survives a restart and `kill -9`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use crate::base::timestamp;

/// The schema's version, in SQLite's `user_version`.
const SCHEMA_VERSION: i64 = 1;

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused: the file is not a database, is locked, or the disk is full.
    #[error("decision store {}: {source}", path.display())]
    Sqlite {
        /// The store's file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A database of another schema (another program's, or a later Tollgate's).
    #[error(
        "decision store {}: schema version {found}, this Tollgate reads {SCHEMA_VERSION}: give \
         the service a store of its own",
        path.display()
    )]
    Schema {
        /// The store's file.
        path: PathBuf,
        /// The version found.
        found: i64,
    },
}

/// How a decision was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionPath {
    /// From a decision already made, or a trusted VSA.
    Fast,
    /// By verifying the chain.
    Slow,
}

impl DecisionPath {
    /// `fast` or `slow`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionPath::Fast => "fast",
            DecisionPath::Slow => "slow",
        }
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Its number in the store (0 before it is recorded).
    pub id: i64,
    /// When it was made.
    pub time: DateTime<Utc>,
    /// The image (or subject) as asked about.
    pub image: String,
    /// The artifact's digest (`sha256:HEX`).
    pub digest: String,
    /// The policy that decided it.
    pub policy: String,
    /// Admitted or refused.
    pub allowed: bool,
    /// How it was reached.
    pub path: DecisionPath,
    /// One sentence a person can act on.
    pub reason: String,
    /// The digest of everything the decision depended on (policy, trusted keys, version).
    pub depends_on: String,
    /// Until when it may be reused; `None` when its outcome was not deterministic (a registry
    /// error, a deadline) and it must never be reused.
    pub valid_until: Option<DateTime<Utc>>,
    /// The VSA the service signed for it, if it admitted by verifying.
    pub vsa: Option<Vec<u8>>,
}

/// Which decisions to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those about this image (exact reference) or digest.
    pub image: Option<String>,
    /// Only those made at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many, newest first (`None`: all).
    pub limit: Option<usize>,
}

/// An open decision store.
pub struct Store {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0600) with its schema if it does not exist.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let fail = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let connection = Connection::open(path).map_err(fail)?;
        restrict_mode(path);
        // The write-ahead log with a full sync at every commit: a committed decision survives
        // a crash of the process or the machine. Readers (`serve decisions`) do not block the
        // writer.
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(fail)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(fail)?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        match version {
            0 => {
                connection
                    .execute_batch(
                        "BEGIN;
                         CREATE TABLE IF NOT EXISTS decisions (
                             id INTEGER PRIMARY KEY AUTOINCREMENT,
                             time TEXT NOT NULL,
                             image TEXT NOT NULL,
                             digest TEXT NOT NULL,
                             policy TEXT NOT NULL,
                             allowed INTEGER NOT NULL,
                             path TEXT NOT NULL,
                             reason TEXT NOT NULL,
                             depends_on TEXT NOT NULL,
                             valid_until TEXT,
                             vsa BLOB
                         );
                         CREATE INDEX IF NOT EXISTS decisions_by_digest
                             ON decisions (digest, depends_on, valid_until);
                         CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (time);
                         PRAGMA user_version = 1;
                         COMMIT;",
                    )
                    .map_err(fail)?;
            }
            SCHEMA_VERSION => {}
            found => {
                return Err(StoreError::Schema {
                    path: path.to_owned(),
                    found,
                });
            }
        }
        Ok(Store {
            path: path.to_owned(),
            connection: Mutex::new(connection),
        })
    }

    fn fail(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written: each write is one
        // transaction. The connection stays usable.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records `decision` durably and returns its number.
    pub fn record(&self, decision: &Decision) -> Result<i64, StoreError> {
        let connection = self.connection();
        connection
            .execute(
                "INSERT INTO decisions (time, image, digest, policy, allowed, path, reason,
                                        depends_on, valid_until, vsa)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    timestamp::format(&decision.time),
                    decision.image,
                    decision.digest,
                    decision.policy,
                    decision.allowed,
                    decision.path.as_str(),
                    decision.reason,
                    decision.depends_on,
                    decision.valid_until.as_ref().map(timestamp::format),
                    decision.vsa,
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(connection.last_insert_rowid())
    }

    /// The newest reusable decision about `digest` made under `depends_on` that is still
    /// valid at `now`.
    pub fn known(
        &self,
        digest: &str,
        depends_on: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Decision>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare_cached(
                "SELECT id, time, image, digest, policy, allowed, path, reason, depends_on,
                        valid_until, vsa
                 FROM decisions
                 WHERE digest = ?1 AND depends_on = ?2 AND valid_until IS NOT NULL
                       AND valid_until > ?3
                 ORDER BY id DESC LIMIT 1",
            )
            .map_err(|e| self.fail(e))?;
        statement
            .query_row(
                params![digest, depends_on, timestamp::format(&now)],
                row_to_decision,
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    /// The decisions `filter` selects, newest first.
    pub fn list(&self, filter: &Filter) -> Result<Vec<Decision>, StoreError> {
        let connection = self.connection();
        let mut statement = connection
            .prepare_cached(
                "SELECT id, time, image, digest, policy, allowed, path, reason, depends_on,
                        valid_until, vsa
                 FROM decisions
                 WHERE (?1 IS NULL OR image = ?1 OR digest = ?1)
                       AND (?2 IS NULL OR time >= ?2)
                 ORDER BY id DESC
                 LIMIT ?3",
            )
            .map_err(|e| self.fail(e))?;
        let limit = filter
            .limit
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let rows = statement
            .query_map(
                params![
                    filter.image,
                    filter.since.as_ref().map(timestamp::format),
                    limit
                ],
                row_to_decision,
            )
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(e))
    }
}

fn row_to_decision(row: &rusqlite::Row<'_>) -> rusqlite::Result<Decision> {
    let time = |index: usize, text: String| {
        timestamp::parse(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                index,
                rusqlite::types::Type::Text,
                Box::new(e),
            )
        })
    };
    let path: String = row.get(6)?;
    Ok(Decision {
        id: row.get(0)?,
        time: time(1, row.get(1)?)?,
        image: row.get(2)?,
        digest: row.get(3)?,
        policy: row.get(4)?,
        allowed: row.get(5)?,
        path: if path == "fast" {
            DecisionPath::Fast
        } else {
            DecisionPath::Slow
        },
        reason: row.get(7)?,
        depends_on: row.get(8)?,
        valid_until: match row.get::<_, Option<String>>(9)? {
            Some(text) => Some(time(9, text)?),
            None => None,
        },
        vsa: row.get(10)?,
    })
}

/// The store holds what was admitted and why: readable by its owner only.
fn restrict_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}
