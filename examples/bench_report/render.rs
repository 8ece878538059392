//! The bench's table, goals and last line as Markdown (also printed) and JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::figures::{Run, percentile};

/// The goals of the measurement, beside the figures.
const OCO_FLOOR_FACTOR_MAX: i64 = 2;
const BASELINE_OVER_OCO_MIN: f64 = 4.0;
/// The policy names the goals speak of.
const BASELINE: &str = "baseline";
const OCO: &str = "oco";
const OTOCO: &str = "otoco";

/// What every run shares, and the goals' verdicts.
pub struct Summary {
    /// Fill visible (at once on the simulator) plus one injected round trip.
    pub floor_ms: i64,
    meta: Value,
    policies: Vec<String>,
    concurrencies: Vec<u64>,
    goals: Vec<Goal>,
    ratio: Result<f64, String>,
}

struct Goal {
    name: String,
    figure: String,
    verdict: &'static str,
}

fn find<'a>(runs: &'a [Run], policy: &str, concurrency: u64) -> Option<&'a Run> {
    runs.iter()
        .find(|run| run.policy == policy && run.concurrency == concurrency)
}

fn p99(run: &Run) -> Option<i64> {
    percentile(&run.windows(), 99)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

impl Summary {
    pub fn new(runs: &[Run]) -> Result<Summary, String> {
        let meta = runs
            .iter()
            .find(|run| run.available())
            .map(|run| run.meta.clone())
            .ok_or("no policy ran")?;
        let floor_ms = meta["latency_ms"]
            .as_i64()
            .ok_or("meta.json has no latency_ms")?;
        let mut policies: Vec<String> = Vec::new();
        let mut concurrencies: Vec<u64> = Vec::new();
        for run in runs {
            if !policies.contains(&run.policy) {
                policies.push(run.policy.clone());
            }
            if !concurrencies.contains(&run.concurrency) {
                concurrencies.push(run.concurrency);
            }
        }
        concurrencies.sort_unstable();
        let ratio = ratio(runs);
        let goals = goals(runs, floor_ms, &ratio);
        Ok(Summary {
            floor_ms,
            meta,
            policies,
            concurrencies,
            goals,
            ratio,
        })
    }

    pub fn markdown(&self, runs: &[Run]) -> String {
        let mut out = String::new();
        let single = self.concurrencies.first().copied().unwrap_or(1);
        let _ = writeln!(
            out,
            "## Unprotected window, {single} signal at a time\n\n\
             Entry fill → both protective legs live, on the simulator's clock. Round trip {} ms, \
             fill delays `{}`, seed {}. Physical floor (fill visible + one round trip): **{} ms**.\n",
            self.floor_ms,
            self.meta["fill_delay"].as_str().unwrap_or("?"),
            self.meta["seed"],
            self.floor_ms,
        );
        out.push_str(
            "| policy | trades | unprotected | p50 ms | p99 ms | max ms | requests/trade | other requests/trade |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for policy in &self.policies {
            match find(runs, policy, single) {
                Some(run) if run.available() => out.push_str(&main_row(run)),
                Some(run) => {
                    let reason = run.reason.as_deref().unwrap_or("");
                    let _ = writeln!(out, "| {policy} | not available: {reason} |||||||");
                }
                None => {
                    let _ = writeln!(out, "| {policy} | not run |||||||");
                }
            }
        }
        out.push_str(&self.simultaneous_table(runs));
        out.push_str(&self.goals_table());
        out
    }

    fn simultaneous_table(&self, runs: &[Run]) -> String {
        let mut out = String::from(
            "\n## Simultaneous signals: window p50 / p99 / max ms (trades)\n\n| policy |",
        );
        for concurrency in &self.concurrencies {
            let _ = write!(out, " {concurrency} at once |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(self.concurrencies.len()));
        out.push('\n');
        for policy in &self.policies {
            let _ = write!(out, "| {policy} |");
            for concurrency in &self.concurrencies {
                let cell = match find(runs, policy, *concurrency) {
                    Some(run) if run.available() => {
                        let windows = run.windows();
                        format!(
                            "{} / {} / {} ({})",
                            shown(percentile(&windows, 50)),
                            shown(percentile(&windows, 99)),
                            shown(windows.last().copied()),
                            windows.len()
                        )
                    }
                    Some(_) => "not available".to_string(),
                    None => "not run".to_string(),
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out
    }

    fn goals_table(&self) -> String {
        let mut out = String::from("\n## Goals\n\n| goal | figure | result |\n|---|---|---|\n");
        for goal in &self.goals {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                goal.name, goal.figure, goal.verdict
            );
        }
        out
    }

    pub fn last_line(&self) -> String {
        match &self.ratio {
            Ok(ratio) => format!("unprotected_p99_ratio_baseline_over_oco={ratio:.2}"),
            Err(reason) => format!("unprotected_p99_ratio_baseline_over_oco=n/a ({reason})"),
        }
    }

    pub fn json(&self, runs: &[Run]) -> Value {
        let runs: Vec<Value> = runs.iter().map(run_json).collect();
        let goals: Vec<Value> = self
            .goals
            .iter()
            .map(|goal| json!({"goal": goal.name, "figure": goal.figure, "result": goal.verdict}))
            .collect();
        json!({
            "floor_ms": self.floor_ms,
            "settings": self.meta,
            "runs": runs,
            "goals": goals,
            "unprotected_p99_ratio_baseline_over_oco": self.ratio.as_ref().ok(),
            "last_line": self.last_line(),
        })
    }
}

fn shown(value: Option<i64>) -> String {
    value.map_or_else(|| "–".to_string(), |value| value.to_string())
}

fn shown_rate(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_string(), |value| format!("{value:.1}"))
}

fn main_row(run: &Run) -> String {
    let windows = run.windows();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
        run.policy,
        run.filled(),
        run.unprotected(),
        shown(percentile(&windows, 50)),
        shown(percentile(&windows, 99)),
        shown(windows.last().copied()),
        shown_rate(run.named_requests_per_trade()),
        shown_rate(run.other_requests_per_trade()),
    )
}

fn run_json(run: &Run) -> Value {
    let windows = run.windows();
    let trades: Vec<Value> = run
        .trades
        .iter()
        .map(|trade| {
            json!({"trade_id": trade.trade_id, "fill_ms": trade.fill_ms,
                   "protected_ms": trade.protected_ms, "window_ms": trade.window_ms(),
                   "complete_fill": trade.complete, "requests": trade.named_requests})
        })
        .collect();
    json!({
        "policy": run.policy,
        "concurrency": run.concurrency,
        "available": run.available(),
        "reason": run.reason,
        "meta": run.meta,
        "filled": run.filled(),
        "unprotected": run.unprotected(),
        "window_ms": {"p50": percentile(&windows, 50), "p99": percentile(&windows, 99),
                      "max": windows.last()},
        "requests_per_trade": run.named_requests_per_trade(),
        "other_requests_per_trade": run.other_requests_per_trade(),
        "requests_total": run.requests_total,
        "requests_by_method": run.by_method,
        "trades": trades,
    })
}

/// The single-signal run of `policy`, or why there is no figure.
fn single_run<'a>(runs: &'a [Run], policy: &str) -> Result<&'a Run, String> {
    let concurrency = runs.iter().map(|run| run.concurrency).min().unwrap_or(1);
    match find(runs, policy, concurrency) {
        Some(run) if run.available() => Ok(run),
        Some(run) => Err(format!(
            "{policy} not available: {}",
            run.reason.as_deref().unwrap_or("")
        )),
        None => Err(format!("{policy} not run")),
    }
}

fn ratio(runs: &[Run]) -> Result<f64, String> {
    let baseline = p99(single_run(runs, BASELINE)?).ok_or("baseline protected no trade")?;
    let oco = p99(single_run(runs, OCO)?).ok_or("oco protected no trade")?;
    if oco == 0 {
        return Err("oco p99 is 0 ms".to_string());
    }
    // Milliseconds of one run stay far below 2^52, so the conversions are exact.
    Ok(baseline as f64 / oco as f64)
}

fn goals(runs: &[Run], floor_ms: i64, ratio: &Result<f64, String>) -> Vec<Goal> {
    let limit_ms = OCO_FLOOR_FACTOR_MAX * floor_ms;
    let oco = match single_run(runs, OCO).map(|run| (p99(run), run)) {
        Ok((Some(p99_ms), run)) => Goal {
            name: format!("oco p99 ≤ {OCO_FLOOR_FACTOR_MAX} × floor ({limit_ms} ms)"),
            figure: format!("{p99_ms} ms over {} trades", run.windows().len()),
            verdict: verdict(p99_ms <= limit_ms),
        },
        Ok((None, _)) => unmeasured("oco p99 ≤ 2 × floor", "no protected trade".into()),
        Err(reason) => unmeasured("oco p99 ≤ 2 × floor", reason),
    };
    let baseline = match ratio {
        Ok(ratio) => Goal {
            name: format!("baseline / oco p99 ≥ {BASELINE_OVER_OCO_MIN}"),
            figure: format!("{ratio:.2}"),
            verdict: verdict(*ratio >= BASELINE_OVER_OCO_MIN),
        },
        Err(reason) => unmeasured("baseline / oco p99 ≥ 4", reason.clone()),
    };
    let otoco = match single_run(runs, OTOCO) {
        Ok(run) => {
            let complete: Vec<i64> = run
                .trades
                .iter()
                .filter(|trade| trade.complete)
                .filter_map(|trade| trade.window_ms())
                .collect();
            let unprotected = run.unprotected();
            let worst = complete.iter().copied().max();
            Goal {
                name: "otoco window 0 for complete fills".to_string(),
                figure: format!(
                    "max {} ms over {} complete fills, {unprotected} unprotected",
                    shown(worst),
                    complete.len()
                ),
                verdict: verdict(!complete.is_empty() && worst == Some(0) && unprotected == 0),
            }
        }
        Err(reason) => unmeasured("otoco window 0 for complete fills", reason),
    };
    vec![oco, baseline, otoco]
}

fn unmeasured(name: &str, reason: String) -> Goal {
    Goal {
        name: name.to_string(),
        figure: format!("n/a ({reason})"),
        verdict: "n/a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::Trade;

    fn run(policy: &str, windows: &[i64], complete: bool) -> Run {
        let trades = windows
            .iter()
            .zip(1..)
            .map(|(window_ms, trade_id)| Trade {
                trade_id,
                fill_ms: Some(1_000),
                complete,
                protected_ms: Some(1_000 + window_ms),
                named_requests: 7,
            })
            .collect();
        Run {
            policy: policy.to_string(),
            order: 0,
            concurrency: 1,
            reason: None,
            meta: json!({"latency_ms": 50, "fill_delay": "1:0", "seed": 1}),
            trades,
            requests_total: 0,
            requests_other: 0,
            by_method: Value::Null,
        }
    }

    #[test]
    fn goals_and_the_last_line_follow_the_figures() {
        let runs = vec![
            run(BASELINE, &[2_000, 3_000], true),
            run(OCO, &[80, 500], true),
            run(OTOCO, &[0, 0], true),
        ];
        let summary = Summary::new(&runs).expect("summary");
        assert_eq!(summary.floor_ms, 50);
        assert_eq!(
            summary.last_line(),
            "unprotected_p99_ratio_baseline_over_oco=6.00"
        );
        let verdicts: Vec<&str> = summary.goals.iter().map(|goal| goal.verdict).collect();
        assert_eq!(verdicts, ["MISS", "PASS", "PASS"]);
        let markdown = summary.markdown(&runs);
        assert!(
            markdown.contains("| oco | 2 | 0 | 80 | 500 | 500 | 7.0 |"),
            "{markdown}"
        );
    }

    #[test]
    fn a_missing_baseline_makes_the_ratio_not_applicable() {
        let mut baseline = run(BASELINE, &[], true);
        baseline.reason = Some("unknown key `poll.schedule`".to_string());
        let runs = vec![
            baseline,
            run(OCO, &[60, 90], true),
            run(OTOCO, &[0, 40], true),
        ];
        let summary = Summary::new(&runs).expect("summary");
        assert_eq!(
            summary.last_line(),
            "unprotected_p99_ratio_baseline_over_oco=n/a \
             (baseline not available: unknown key `poll.schedule`)"
        );
        let verdicts: Vec<&str> = summary.goals.iter().map(|goal| goal.verdict).collect();
        assert_eq!(verdicts, ["PASS", "n/a", "MISS"]);
    }
}
