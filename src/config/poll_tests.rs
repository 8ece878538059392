//! Tests of `[poll]`'s schedule, source and adaptive shape: defaults, the replaced design's
//! policy as the bench writes it, errors that name the key, and `check-config`'s output.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use super::{Config, ConfigError, load_from, render_masked};
use crate::core::domain::ProtectionMode;
use crate::core::trade::{PollPolicy, PollSchedule, PollSource};

fn load(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    let env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect();
    load_from(Some(file.path()), &env)
}

#[test]
fn poll_schedule_and_source_default_to_adaptive_on_order_detail() {
    let config = load("", &[]).expect("defaults");
    assert_eq!(
        config.poll.policy(),
        PollPolicy {
            schedule: PollSchedule::Adaptive,
            source: PollSource::Detail,
            first_delay_ms: 0,
            growth_percent: 150,
        }
    );
    assert_eq!(config.poll.interval, Duration::from_secs(1));
    assert_eq!(config.poll.max_attempts, 10);
}

#[test]
fn bench_baseline_policy_is_the_replaced_design() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/bench-policies/baseline.toml"
    );
    let text = std::fs::read_to_string(path).expect("the bench's baseline policy");
    let config = load(&text, &[]).expect("baseline accepted");
    assert_eq!(config.poll.schedule, PollSchedule::Fixed);
    assert_eq!(config.poll.source, PollSource::OpenThenHistory);
    assert_eq!(config.poll.interval, Duration::from_secs(1));
    assert_eq!(config.poll.max_attempts, 10);
    assert_eq!(config.protection.mode, ProtectionMode::Separate);
}

#[test]
fn poll_policy_comes_from_the_environment_too() {
    let pairs = [
        ("FILLGUARD_POLL__SCHEDULE", "fixed"),
        ("FILLGUARD_POLL__SOURCE", "open-then-history"),
        ("FILLGUARD_POLL__FIRST_DELAY_SECONDS", "0.2"),
        ("FILLGUARD_POLL__GROWTH", "2"),
        ("ORDER_FILL_POLL_INTERVAL_SECONDS", "0.5"),
    ];
    let policy = load("", &pairs).expect("accepted").poll.policy();
    assert_eq!(policy.schedule, PollSchedule::Fixed);
    assert_eq!(policy.source, PollSource::OpenThenHistory);
    assert_eq!((policy.first_delay_ms, policy.growth_percent), (200, 200));
}

#[test]
fn unknown_poll_schedule_or_source_names_the_key() {
    let error = load("[poll]\nschedule = \"exponential\"\n", &[]).unwrap_err();
    assert_eq!(error.key(), Some("poll.schedule"));
    let text = error.to_string();
    assert!(
        text.starts_with("poll.schedule = \"exponential\" (from TOML file "),
        "{text}"
    );
    assert!(text.ends_with("must be fixed or adaptive"), "{text}");
    let error = load("", &[("FILLGUARD_POLL__SOURCE", "history")]).unwrap_err();
    assert_eq!(error.key(), Some("poll.source"));
    assert_eq!(
        error.to_string(),
        "poll.source = \"history\" (from environment variable FILLGUARD_POLL__SOURCE): \
         must be detail or open-then-history"
    );
}

#[test]
fn poll_first_delay_and_growth_out_of_bounds_name_the_key() {
    let cases = [
        (
            "first_delay_seconds = -0.1",
            "poll.first_delay_seconds",
            "between 0 and 60",
        ),
        (
            "first_delay_seconds = 2",
            "poll.first_delay_seconds",
            "at most poll.interval_seconds",
        ),
        ("growth = 0.9", "poll.growth", "at least 1 and at most 4"),
        ("growth = 4.5", "poll.growth", "at least 1 and at most 4"),
        ("growth = 1.255", "poll.growth", "at most two decimals"),
    ];
    for (line, key, reason) in cases {
        let error = load(&format!("[poll]\n{line}\n"), &[]).unwrap_err();
        assert_eq!(error.key(), Some(key), "{line}");
        assert!(error.to_string().contains(reason), "{line}: {error}");
    }
    let accepted = load("[poll]\nfirst_delay_seconds = 1\ngrowth = 1\n", &[]).expect("bounds");
    assert_eq!(accepted.poll.policy().growth_percent, 100);
}

#[test]
fn check_config_prints_the_poll_policy() {
    let rendered = render_masked(&load("", &[]).expect("defaults"));
    for line in [
        "schedule = \"adaptive\"",
        "source = \"detail\"",
        "first_delay_seconds = 0",
        "growth = 1.5",
    ] {
        assert!(rendered.contains(line), "{line} missing from:\n{rendered}");
    }
    let text = "[poll]\nschedule = \"fixed\"\nsource = \"open-then-history\"\ngrowth = 2\n";
    let rendered = render_masked(&load(text, &[]).expect("accepted"));
    assert!(rendered.contains("schedule = \"fixed\""), "{rendered}");
    assert!(
        rendered.contains("source = \"open-then-history\""),
        "{rendered}"
    );
    // The rendered file loads back to the same policy.
    assert_eq!(
        load(&rendered, &[])
            .expect("rendered output reloads")
            .poll
            .policy(),
        load(text, &[]).unwrap().poll.policy()
    );
}
