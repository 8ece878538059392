//! The lock that makes `fillguard run` the only agent on a database: an exclusive `flock` on
//! `<database>.lock`, held for the life of the `Store` that `open_for_run` returns, with the
//! holder's pid written into the file so a refused second run can name it. The kernel releases
//! a `flock` when its holder dies, SIGKILL included, so a lock file left behind never blocks a
//! restart; the file itself is never removed (unlinking a lock file races with its next taker).
//! Knows nothing of SQLite.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::store::StoreError;

/// An exclusive lock on a database, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct RunLock {
    /// Held open only for its lock.
    _file: File,
}

/// `<database>.lock`, beside the database as it really is: a path through a symlink or with
/// `..` names the same lock as the direct one, so two runs can never share a database.
pub fn lock_path(database: &Path) -> PathBuf {
    let real = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf());
    let mut name = OsString::from(real.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

impl RunLock {
    /// Takes the lock without waiting, or names the process that holds it.
    pub fn acquire(database: &Path) -> Result<RunLock, StoreError> {
        let path = lock_path(database);
        let io_error = |source: std::io::Error| StoreError::Lock {
            path: path.display().to_string(),
            source,
        };
        // Never truncated on open: the pid in it belongs to the holder until we hold the lock.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(StoreError::InUse {
                    path: database.display().to_string(),
                    holder: holder_pid(&mut file),
                });
            }
            Err(errno) => return Err(io_error(errno.into())),
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            writeln!(file, "{}", std::process::id())?;
            file.sync_all()
        };
        write_pid(&mut file).map_err(io_error)?;
        Ok(RunLock { _file: file })
    }
}

/// The pid the holder wrote, or `None` while it has not written it yet (or wrote garbage).
fn holder_pid(file: &mut File) -> Option<u32> {
    // A pid is at most ten digits; reading a little more keeps a garbage file harmless.
    const PID_TEXT_LENGTH_MAX: u64 = 16;
    let mut text = String::new();
    file.take(PID_TEXT_LENGTH_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}
