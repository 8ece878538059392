//! `fillguard backup`: a consistent copy of the database, taken with SQLite's online backup API
//! while the agent runs and writes. It reads the live database through a read-only connection
//! (so it takes no run lock, migrates nothing and refuses a schema this fillguard does not
//! know, like `status`), copies it in bounded steps with a pause between them so the agent is
//! never starved, into a temporary file beside the destination that is checked
//! (`integrity_check`, schema version), fsynced, made owner-only and only then renamed to the
//! destination's name: a crash never leaves half a backup under that name. It never writes
//! over the live database or its companion files, and never over an existing file unless
//! asked to. Knows nothing of venues or the shell.

use std::fs::{File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use thiserror::Error;

use super::{MIGRATIONS, Schema, Store, StoreError, schema_version};

/// Pages copied per step: 4 MiB at SQLite's default page size, so a typical fillguard database
/// is copied in one step (one consistent read) and a large one in several short ones.
pub const PAGES_PER_STEP_DEFAULT: u32 = 1024;
pub const PAGES_PER_STEP_MAX: u32 = 1 << 20;
/// The pause between two steps, in which the agent's writes go ahead.
pub const STEP_PAUSE: Duration = Duration::from_millis(10);
/// How long a backup may take before it gives up (each write of another process between two
/// steps restarts the copy, so a database written faster than it can be copied would
/// otherwise be copied forever).
pub const TIME_LIMIT_DEFAULT: Duration = Duration::from_secs(300);
pub const TIME_LIMIT_MAX: Duration = Duration::from_secs(24 * 3600);
/// The live database's companion files, never a backup's destination.
const COMPANION_SUFFIXES: [&str; 5] = ["", "-wal", "-shm", "-journal", ".lock"];

const _: () = assert!(PAGES_PER_STEP_DEFAULT >= 1 && PAGES_PER_STEP_DEFAULT <= PAGES_PER_STEP_MAX);
const _: () = assert!(PAGES_PER_STEP_MAX <= i32::MAX as u32);

#[derive(Debug, Clone, Copy)]
pub struct BackupOptions {
    /// Replace an existing file at the destination.
    pub force: bool,
    /// Pages per step, 1..=`PAGES_PER_STEP_MAX`.
    pub pages_per_step: u32,
    pub time_limit: Duration,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            force: false,
            pages_per_step: PAGES_PER_STEP_DEFAULT,
            time_limit: TIME_LIMIT_DEFAULT,
        }
    }
}

/// What a finished backup holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub path: PathBuf,
    pub trades: i64,
    /// Trades neither closed nor halted.
    pub open_trades: i64,
    pub bytes: u64,
}

#[derive(Debug, Error)]
pub enum BackupError {
    /// The live database cannot be read: missing, or a schema this fillguard does not know.
    #[error(transparent)]
    Source(#[from] StoreError),
    #[error("backup to {path}: the directory {directory} does not exist")]
    MissingDirectory { path: String, directory: String },
    #[error("backup to {path}: the file exists; pass --force to replace it")]
    Exists { path: String },
    #[error(
        "backup to {path}: that is the live database {database} or one of its files; choose another path"
    )]
    LiveDatabase { path: String, database: String },
    #[error("backup to {path}: {doing}: {source}")]
    Io {
        path: String,
        doing: &'static str,
        source: std::io::Error,
    },
    #[error("backup to {path}: {doing}: {source}")]
    Sql {
        path: String,
        doing: &'static str,
        source: rusqlite::Error,
    },
    #[error(
        "backup to {path}: not finished within the time limit of {limit_seconds} s ({remaining} of {total} pages left; the database kept changing under the copy or stayed busy); nothing was written there"
    )]
    TimedOut {
        path: String,
        limit_seconds: f64,
        remaining: i32,
        total: i32,
    },
    #[error("backup to {path}: the copy failed its check ({reason}); nothing was written there")]
    Verify { path: String, reason: String },
}

/// Copies the database at `database` to `destination` (see the module documentation).
pub fn backup(
    database: &Path,
    destination: &Path,
    options: &BackupOptions,
) -> Result<BackupReport, BackupError> {
    let shown = destination.display().to_string();
    // The source first: a database this fillguard cannot read is refused whatever the
    // destination.
    let source = Store::open_read_only(database)?;
    let target = Target::check(database, destination, options.force)?;
    let io = |doing: &'static str| {
        let path = shown.clone();
        move |source: std::io::Error| BackupError::Io {
            path: path.clone(),
            doing,
            source,
        }
    };
    let temporary = tempfile::Builder::new()
        .prefix(&format!(".{}.", target.name))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(&target.directory)
        .map_err(io("creating a temporary file in its directory"))?;
    let (trades, open_trades) = copy_and_verify(source.conn(), temporary.path(), &shown, options)?;
    drop(source);
    // The copy's connection is closed: its bytes are final. Durable before the rename, so the
    // final name never points at data still in the page cache.
    temporary
        .as_file()
        .set_permissions(Permissions::from_mode(0o600))
        .map_err(io("setting mode 0600"))?;
    temporary
        .as_file()
        .sync_all()
        .map_err(io("syncing the copy to disk"))?;
    let persisted = if options.force {
        temporary.persist(destination)
    } else {
        temporary.persist_noclobber(destination)
    };
    if let Err(error) = persisted {
        if error.error.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(BackupError::Exists { path: shown });
        }
        return Err(io("renaming the copy into place")(error.error));
    }
    File::open(&target.directory)
        .and_then(|directory| directory.sync_all())
        .map_err(io("syncing its directory"))?;
    let bytes = std::fs::metadata(destination)
        .map_err(io("reading the copy's size"))?
        .len();
    Ok(BackupReport {
        path: destination.to_path_buf(),
        trades,
        open_trades,
        bytes,
    })
}

/// A destination checked before anything is written.
struct Target {
    directory: PathBuf,
    /// The destination's file name, for the temporary file's name.
    name: String,
}

impl Target {
    fn check(database: &Path, destination: &Path, force: bool) -> Result<Target, BackupError> {
        let shown = destination.display().to_string();
        let io = |doing: &'static str| {
            let path = shown.clone();
            move |source: std::io::Error| BackupError::Io {
                path: path.clone(),
                doing,
                source,
            }
        };
        let Some(name) = destination.file_name() else {
            return Err(io("the path names no file")(std::io::Error::from(
                std::io::ErrorKind::InvalidInput,
            )));
        };
        let directory = match destination.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let real_directory = match std::fs::canonicalize(&directory) {
            Ok(real) if real.is_dir() => real,
            Ok(_) => {
                return Err(io("its parent is not a directory")(std::io::Error::from(
                    std::io::ErrorKind::NotADirectory,
                )));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::MissingDirectory {
                    path: shown,
                    directory: directory.display().to_string(),
                });
            }
            Err(error) => return Err(io("reading its directory")(error)),
        };
        let live = BackupError::LiveDatabase {
            path: shown.clone(),
            database: database.display().to_string(),
        };
        if is_live_database_file(database, &real_directory.join(name)) {
            return Err(live);
        }
        match std::fs::metadata(destination) {
            Ok(existing) => {
                // A hard link or a symlink to the live database is the live database.
                let same_file = |path: &Path| {
                    std::fs::metadata(path).is_ok_and(|live| {
                        live.dev() == existing.dev() && live.ino() == existing.ino()
                    })
                };
                if COMPANION_SUFFIXES
                    .iter()
                    .any(|suffix| same_file(&with_suffix(database, suffix)))
                {
                    return Err(live);
                }
                if existing.is_dir() {
                    return Err(io("it is a directory")(std::io::Error::from(
                        std::io::ErrorKind::IsADirectory,
                    )));
                }
                if !force {
                    return Err(BackupError::Exists { path: shown });
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io("reading the existing file")(error)),
        }
        Ok(Target {
            directory,
            name: name.to_string_lossy().into_owned(),
        })
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `candidate` (a path with its directory resolved) names the live database or one of
/// the files SQLite and the run lock keep beside it.
fn is_live_database_file(database: &Path, candidate: &Path) -> bool {
    let real = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf());
    COMPANION_SUFFIXES
        .iter()
        .any(|suffix| with_suffix(&real, suffix) == candidate)
}

/// Copies `source` into the empty file at `copy_path` in steps, makes the copy a single file
/// (rollback journal, not WAL), and checks it. Returns its trade count and open trades.
fn copy_and_verify(
    source: &Connection,
    copy_path: &Path,
    shown: &str,
    options: &BackupOptions,
) -> Result<(i64, i64), BackupError> {
    let sql = |doing: &'static str| {
        move |source: rusqlite::Error| BackupError::Sql {
            path: shown.to_string(),
            doing,
            source,
        }
    };
    let mut copy = Connection::open(copy_path).map_err(sql("opening the temporary copy"))?;
    copy_pages(source, &mut copy, shown, options)?;
    // The pages carry the live database's WAL flag; the backup is one self-contained file.
    let mode: String = copy
        .query_row("PRAGMA journal_mode = DELETE", [], |row| row.get(0))
        .map_err(sql("switching the copy to a rollback journal"))?;
    let verify = |reason: String| BackupError::Verify {
        path: shown.to_string(),
        reason,
    };
    if mode != "delete" {
        return Err(verify(format!("journal mode {mode}")));
    }
    let integrity: Vec<String> = copy
        .prepare("PRAGMA integrity_check")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .map_err(sql("checking the copy's integrity"))?;
    if integrity != ["ok"] {
        return Err(verify(format!("integrity_check: {}", integrity.join("; "))));
    }
    match schema_version(&copy, copy_path, &MIGRATIONS) {
        Ok(Schema::Current) => {}
        Ok(other) => return Err(verify(format!("schema {other:?}"))),
        Err(error) => return Err(verify(error.to_string())),
    }
    let counts = copy
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(state NOT IN ('CLOSED', 'HALTED')), 0) FROM trades",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(sql("counting the copy's trades"))?;
    copy.close()
        .map_err(|(_, error)| sql("closing the copy")(error))?;
    Ok(counts)
}

/// The online backup proper: `pages_per_step` pages at a time, `STEP_PAUSE` between steps,
/// within `time_limit`.
fn copy_pages(
    source: &Connection,
    copy: &mut Connection,
    shown: &str,
    options: &BackupOptions,
) -> Result<(), BackupError> {
    let failed = |doing: &'static str| {
        move |source: rusqlite::Error| BackupError::Sql {
            path: shown.to_string(),
            doing,
            source,
        }
    };
    let pages =
        i32::try_from(options.pages_per_step.clamp(1, PAGES_PER_STEP_MAX)).unwrap_or(i32::MAX);
    let backup = Backup::new(source, copy).map_err(failed("starting the copy"))?;
    let started = Instant::now();
    // Bounded by `time_limit`: every pass ends the copy, fails, or checks the clock.
    loop {
        // Anything but done (more to copy, or the source busy for a moment) is tried again
        // after the pause.
        let step = backup.step(pages).map_err(without_handle_message);
        if step.map_err(failed("copying pages"))? == StepResult::Done {
            return Ok(());
        }
        if started.elapsed() >= options.time_limit {
            let progress = backup.progress();
            return Err(BackupError::TimedOut {
                path: shown.to_string(),
                limit_seconds: options.time_limit.as_secs_f64(),
                remaining: progress.remaining,
                total: progress.pagecount,
            });
        }
        std::thread::sleep(STEP_PAUSE);
    }
}

/// A failed step's error comes with the destination connection's message, which the backup
/// handle never set ("not an error"): only its code (disk full, I/O error, …) is kept, with
/// SQLite's description of that code, and a full disk is called that.
fn without_handle_message(error: rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::DiskFull =>
        {
            let message = "the disk is full (no space left for the copy)".to_string();
            rusqlite::Error::SqliteFailure(failure, Some(message))
        }
        rusqlite::Error::SqliteFailure(failure, _) => rusqlite::Error::SqliteFailure(failure, None),
        other => other,
    }
}
