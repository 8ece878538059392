//! The daily backup units, `systemd/fillguard-backup.service` and `.timer`:
//! `systemd-analyze verify` is clean on both and `security --offline=true` rates the service's
//! exposure at most 1.5 (skipped, saying why, without systemd-analyze),
//! and the service's own command lines — taken from the unit, with only the binary, the
//! configuration and the state directory moved into a temporary workspace — make a backup
//! that opens with `status`, and remove the copies older than 14 days and nothing else.

mod common;

use std::path::Path;
use std::process::Command;

use common::sqlite::integrity_check;
use common::{BINARY, Workspace};

const SERVICE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/fillguard-backup.service"
);
const TIMER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/fillguard-backup.timer"
);
const BINARY_IN_UNIT: &str = "/usr/bin/fillguard";
const CONFIG_IN_UNIT: &str = "/etc/fillguard/fillguard.toml";
const STATE_IN_UNIT: &str = "/var/lib/fillguard";
/// The same bound as the agent's unit.
const EXPOSURE_MAX: f64 = 1.5;

/// The service with the binary under test in place of the installed one.
fn local_service() -> String {
    let text = std::fs::read_to_string(SERVICE).unwrap();
    assert_eq!(text.matches(BINARY_IN_UNIT).count(), 1, "{SERVICE}");
    text.replace(BINARY_IN_UNIT, BINARY)
}

#[test]
fn the_backup_timer_and_service_verify_clean() {
    let service = std::fs::read_to_string(SERVICE).unwrap();
    for directive in [
        "Type=oneshot",
        "User=fillguard",
        "DynamicUser=yes",
        "StateDirectory=fillguard",
    ] {
        assert!(service.lines().any(|line| line == directive), "{directive}");
    }
    let timer = std::fs::read_to_string(TIMER).unwrap();
    for directive in [
        "OnCalendar=daily",
        "Persistent=true",
        "Unit=fillguard-backup.service",
    ] {
        assert!(timer.lines().any(|line| line == directive), "{directive}");
    }
    let dir = tempfile::tempdir().unwrap();
    let service_copy = dir.path().join("fillguard-backup.service");
    let timer_copy = dir.path().join("fillguard-backup.timer");
    std::fs::write(&service_copy, local_service()).unwrap();
    std::fs::write(&timer_copy, timer).unwrap();
    let verify = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&service_copy)
        .arg(&timer_copy)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            eprintln!("SKIPPED: systemd-analyze cannot run here ({error})");
            return;
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!("systemd-analyze verify: {} {said:?}", verify.status);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&service_copy)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure = common::overall_exposure(&report);
    assert!(exposure <= EXPOSURE_MAX, "{exposure}\n{report}");
}

/// The value of every `key=` line of the unit, in order, as a shell command line: systemd's
/// `$$` and `%%` become `$` and `%`, and the installed paths the workspace's.
fn commands(unit: &str, key: &str, workspace: &Workspace) -> Vec<String> {
    let state = workspace.path("");
    let state = state.to_str().unwrap().trim_end_matches('/');
    let config = workspace.path("fillguard.toml");
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(|command| {
            command
                .replace("$$", "$")
                .replace("%%", "%")
                .replace(CONFIG_IN_UNIT, config.to_str().unwrap())
                .replace(STATE_IN_UNIT, state)
        })
        .collect()
}

fn sh(command: &str) {
    let output = Command::new("sh")
        .args(["-c", command])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    eprintln!(
        "{command}\n  {}{}",
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    assert!(output.status.success(), "{command}: {output:?}");
}

/// Sets the file's modification time `days` days back.
fn age(path: &Path, days: u32) {
    let status = Command::new("touch")
        .arg("-d")
        .arg(format!("{days} days ago"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_service_commands_back_up_and_keep_14_days() {
    let workspace = Workspace::new("[paper]\nspeed = 100\n");
    workspace.run_ok(&["run", "--max-ticks", "5"]);
    let unit = local_service();
    let backups = workspace.path("backups");
    // Earlier copies: one past the 14 days, one within them, and a file that is not a copy.
    std::fs::create_dir(&backups).unwrap();
    let stale = backups.join("fillguard-20200101T000000Z.db");
    let recent = backups.join("fillguard-20200102T000000Z.db");
    let other = backups.join("notes.txt");
    for (path, days) in [(&stale, 20), (&recent, 12), (&other, 30)] {
        std::fs::write(path, "x").unwrap();
        age(path, days);
    }
    let before: Vec<_> = std::fs::read_dir(&backups).unwrap().collect();
    assert_eq!(before.len(), 3);
    for key in ["ExecStartPre", "ExecStart", "ExecStartPost"] {
        let lines = commands(&unit, key, &workspace);
        assert_eq!(lines.len(), 1, "{key}");
        sh(&lines[0]);
    }
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    eprintln!("after the service: {names:?}");
    assert!(!stale.exists(), "the stale copy was kept");
    assert!(recent.exists() && other.exists(), "{names:?}");
    let new: Vec<&String> = names
        .iter()
        .filter(|name| name.starts_with("fillguard-2") && !name.starts_with("fillguard-2020"))
        .collect();
    assert_eq!(new.len(), 1, "{names:?}");
    let copy = backups.join(new[0]);
    assert_eq!(integrity_check(&copy), ["ok"]);
    let status = workspace
        .command(&["status", "--json"])
        .env("FILLGUARD_STORE__PATH", &copy)
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}
