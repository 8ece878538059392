//! `fillguard backup PATH`: checks its options (usage errors before anything is opened), runs
//! the store's online backup and prints what the copy holds. It takes no run lock and never
//! migrates: the store's backup reads the live database read-only.

use std::path::Path;
use std::time::Duration;

use crate::cli::Failure;
use crate::config::Config;
use crate::store::{self, BackupOptions};

pub fn options(
    force: bool,
    pages_per_step: u32,
    time_limit_seconds: f64,
) -> Result<BackupOptions, Failure> {
    if !(1..=store::PAGES_PER_STEP_MAX).contains(&pages_per_step) {
        return Err(Failure::usage(format!(
            "--pages-per-step must be between 1 and {}, got {pages_per_step}",
            store::PAGES_PER_STEP_MAX
        )));
    }
    let time_limit = Duration::try_from_secs_f64(time_limit_seconds)
        .ok()
        .filter(|limit| !limit.is_zero() && *limit <= store::TIME_LIMIT_MAX)
        .ok_or_else(|| {
            Failure::usage(format!(
                "--time-limit-seconds must be above 0 and at most {}, got {time_limit_seconds}",
                store::TIME_LIMIT_MAX.as_secs()
            ))
        })?;
    Ok(BackupOptions {
        force,
        pages_per_step,
        time_limit,
    })
}

pub fn run(config: &Config, path: &Path, options: &BackupOptions) -> Result<(), Failure> {
    let report = store::backup(&config.store.path, path, options).map_err(Failure::runtime)?;
    println!(
        "backed up {} trades ({} open) to {} ({} bytes)",
        report.trades,
        report.open_trades,
        report.path.display(),
        report.bytes
    );
    Ok(())
}
