//! The real Prometheus against the real agent: `fillguard run` on the paper venue serves its
//! metrics on a free loopback port, Debian's `prometheus` scrapes it every second with
//! `dashboards/alerts.yml` loaded, one protection failure and breaker trips are forced, and
//! then every panel query of `dashboards/fillguard.json` (its template variables substituted)
//! and every alert expression run through Prometheus's HTTP API. All must succeed, and the
//! protection-failure and breaker series must hold the forced events.
//!
//! Skipped, saying so, when `prometheus` is not on PATH (scripts/test.sh installs it as root).
//! Both processes are killed on drop, also when a check fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{Running, Workspace, free_loopback_address, trades, wait_for, watchlist_entry};

/// The symbol whose protection is made to fail, and the one tripped by hand.
const FAILED_SYMBOL: &str = "BTC_USDT";
const TRIPPED_SYMBOL: &str = "ETH_USDT";
/// What Grafana's `$__rate_interval` becomes: four 1 s scrapes would do; a minute smooths.
const RATE_INTERVAL: &str = "1m";
/// Alerts whose expressions must find nothing while the test's agent runs.
const QUIET_ALERTS: [&str; 4] = [
    "FillguardLoopStalled",
    "FillguardStoreWritesRefused",
    "FillguardTargetDown",
    "FillguardTargetMissing",
];

fn manifest_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// `name` on PATH, if there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A background `prometheus`, killed and reaped on drop.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
    http: ureq::Agent,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts `binary` on a free loopback port with its storage in `dir`, scraping `target`
    /// every second as job `fillguard` and evaluating `dashboards/alerts.yml` every second;
    /// returns once it is ready.
    fn start(binary: &Path, dir: &Path, target: &str) -> Prometheus {
        let config = dir.join("prometheus.yml");
        let rules = manifest_path("dashboards/alerts.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: fillguard\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .unwrap();
        let address = free_loopback_address();
        let log = dir.join("prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus starts");
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut prometheus = Prometheus {
            child,
            address,
            log,
            http,
        };
        let ready = wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
            prometheus.assert_running();
            let url = format!("http://{}/-/ready", prometheus.address);
            let status = prometheus.http.get(&url).call().ok()?.status();
            (status == 200).then_some(())
        });
        assert!(ready.is_some(), "not ready in 60 s: {}", prometheus.log());
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(exit) = self.child.try_wait().unwrap() {
            panic!("prometheus exited ({exit}): {}", self.log());
        }
    }

    /// GET `path` of the HTTP API with `params`; the parsed body, whatever the status.
    fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let mut request = self.http.get(format!("http://{}{path}", self.address));
        for (name, value) in params {
            request = request.query(*name, *value);
        }
        let mut response = request.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let body = response.body_mut().read_to_string().unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// `/api/v1/query` of `expr` now: its result vector; panics unless the status is success.
    fn query(&self, expr: &str) -> Vec<Value> {
        let answer = self.api("/api/v1/query", &[("query", expr)]);
        assert_eq!(answer["status"], "success", "{expr}\n{answer:#}");
        match answer["data"]["resultType"].as_str() {
            Some("vector") => answer["data"]["result"].as_array().unwrap().clone(),
            Some("scalar") => vec![answer["data"]["result"].clone()],
            other => panic!("{expr}: result type {other:?}"),
        }
    }

    /// Queries `expr` until it has a result, for at most `limit`.
    fn wait_for_data(&self, expr: &str, limit: Duration) -> Vec<Value> {
        wait_for(limit, Duration::from_millis(500), || {
            Some(self.query(expr)).filter(|result| !result.is_empty())
        })
        .unwrap_or_else(|| panic!("no data in {limit:?} for {expr}\n{}", self.log()))
    }
}

/// The value of one sample of an instant vector.
fn sample_value(sample: &Value) -> f64 {
    sample["value"][1].as_str().unwrap().parse().unwrap()
}

/// A workspace trading BTC_USDT and ETH_USDT on inbox signals only, in paper time ten times
/// the wall clock with stops and targets 20 % away (so a protected trade stays open for the
/// test's minutes), its metrics on a free loopback port.
fn workspace() -> (Workspace, String) {
    let watchlist = [FAILED_SYMBOL, TRIPPED_SYMBOL]
        .map(|symbol| watchlist_entry(symbol, "100", "20", "20"))
        .concat();
    let mut workspace = Workspace::new(&format!(
        "[paper]\nspeed = 10\n[loop]\ninterval_seconds = 0.5\n{watchlist}"
    ));
    let listen = free_loopback_address();
    workspace.set_env("FILLGUARD_METRICS__LISTEN", &listen);
    (workspace, listen)
}

/// Waits until the agent serves `/metrics` on `listen`.
fn wait_for_metrics(agent: &mut Running, listen: &str) {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let served = wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        assert!(agent.is_running(), "the agent exited: {}", agent.log());
        let mut response = http.get(format!("http://{listen}/metrics")).call().ok()?;
        let body = response.body_mut().read_to_string().ok()?;
        body.contains("fillguard_build_info").then_some(())
    });
    assert!(served.is_some(), "no /metrics in 60 s: {}", agent.log());
}

/// The id and state of the only trade of `symbol` in `fillguard status --json`.
fn trade_of(workspace: &Workspace, symbol: &str) -> Option<(i64, String, String)> {
    let status = workspace.status();
    let trade = trades(&status).iter().find(|t| t["symbol"] == symbol)?;
    Some((
        trade["id"].as_i64().unwrap(),
        trade["state"].as_str().unwrap().to_string(),
        trade["close_reason"].as_str().unwrap_or("").to_string(),
    ))
}

/// A protected BTC_USDT trade whose stop-loss row is then edited by hand into something the
/// agent cannot use: the agent halts it (reason `inconsistent_trade`) and trips the symbol's
/// breaker. The signal goes in at `not_before`. Returns the trade's id.
fn force_protection_failure(
    workspace: &Workspace,
    agent: &mut Running,
    not_before: Instant,
) -> i64 {
    // Bounded: `not_before` is at most a few minutes away.
    while Instant::now() < not_before {
        assert!(agent.is_running(), "the agent exited: {}", agent.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    workspace.signal(FAILED_SYMBOL, "BUY", "100");
    let id = wait_for(Duration::from_secs(90), Duration::from_millis(300), || {
        assert!(agent.is_running(), "the agent exited: {}", agent.log());
        trade_of(workspace, FAILED_SYMBOL)
            .filter(|(_, state, _)| state == "PROTECTED")
            .map(|(id, _, _)| id)
    })
    .unwrap_or_else(|| panic!("not protected in 90 s: {:#}", workspace.status()));
    workspace
        .store()
        .conn()
        .execute_batch(&format!(
            "UPDATE orders SET quantity = 'lots' WHERE trade_id = {id} AND role = 'STOP_LOSS';
             UPDATE trades SET due_ms = 0 WHERE id = {id};"
        ))
        .unwrap();
    // `status` cannot read the edited row back, so the trade's state is read from its own row.
    let halted = wait_for(Duration::from_secs(60), Duration::from_millis(300), || {
        let (state, reason): (String, Option<String>) = workspace
            .store()
            .conn()
            .query_row(
                "SELECT state, close_reason FROM trades WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        (state == "HALTED" || state == "RECOVERING").then(|| (state, reason.unwrap_or_default()))
    });
    let (state, reason) = halted.unwrap_or_else(|| panic!("not halted in 60 s: {}", agent.log()));
    eprintln!("forced: trade {id} on {FAILED_SYMBOL} is {state} ({reason})");
    id
}

/// Every query of the dashboard's panels (rows' panels included): (panel title, expression).
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut panels: Vec<&Value> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let mut queries = Vec::new();
    for panel in panels.into_iter().filter(|panel| panel["type"] != "row") {
        let title = panel["title"].as_str().unwrap().to_string();
        let targets = panel["targets"].as_array();
        assert!(targets.is_some_and(|t| !t.is_empty()), "no query: {title}");
        for target in targets.into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            assert!(!expr.is_empty(), "a query without expr in {title}");
            queries.push((title.clone(), expr.to_string()));
        }
    }
    queries
}

/// The `label_values(SELECTOR, LABEL)` query variables: (name, selector, label).
fn variable_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut variables = Vec::new();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap().to_string();
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .unwrap();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {name}: not label_values(…): {query}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        variables.push((name, selector.trim().into(), label.trim().into()));
    }
    variables
}

/// `expr` with Grafana's variables replaced as the dashboard would: `$instance` and `$symbol`
/// by `instance` and `symbol` (regular expressions, since the queries match with `=~`).
fn substitute(expr: &str, instance: &str, symbol: &str) -> String {
    let done = expr
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__range", "1h")
        .replace("$__interval", "15s")
        .replace("${instance}", instance)
        .replace("$instance", instance)
        .replace("${symbol}", symbol)
        .replace("$symbol", symbol);
    assert!(!done.contains('$'), "a variable left unreplaced in {done}");
    done
}

/// The alerting rules Prometheus loaded, once every one has been evaluated without error:
/// (name, expression, state).
fn loaded_alert_rules(prometheus: &Prometheus) -> Vec<(String, String, String)> {
    let rules = wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        let answer = prometheus.api("/api/v1/rules", &[("type", "alert")]);
        assert_eq!(answer["status"], "success", "{answer:#}");
        let rules: Vec<Value> = answer["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["rules"].as_array().unwrap().clone())
            .collect();
        let evaluated = rules.iter().all(|rule| {
            rule["health"] == "ok" && rule["lastError"].as_str().unwrap_or("").is_empty()
        });
        (!rules.is_empty() && evaluated).then_some(rules)
    })
    .unwrap_or_else(|| {
        panic!(
            "rules not all healthy in 30 s: {:#}",
            prometheus.api("/api/v1/rules", &[])
        )
    });
    rules
        .iter()
        .map(|rule| {
            let text = |key: &str| rule[key].as_str().unwrap().to_string();
            (text("name"), text("query"), text("state"))
        })
        .collect()
}

/// How many alerts `dashboards/alerts.yml` defines, counted in its text.
fn alerts_in_rule_file() -> usize {
    std::fs::read_to_string(manifest_path("dashboards/alerts.yml"))
        .unwrap()
        .lines()
        .filter(|line| line.trim_start().starts_with("- alert:"))
        .count()
}

/// The forced events as Prometheus scraped them: the protection failure and the agent's trip
/// on FAILED_SYMBOL, and both breakers open.
fn check_forced_series(prometheus: &Prometheus) {
    let limit = Duration::from_secs(30);
    let failures = prometheus.wait_for_data(
        &format!("fillguard_protection_failures_total{{symbol=\"{FAILED_SYMBOL}\"}} > 0"),
        limit,
    );
    let trips = prometheus.wait_for_data(
        &format!("fillguard_circuit_breaker_trips_total{{symbol=\"{FAILED_SYMBOL}\"}} > 0"),
        limit,
    );
    let open = wait_for(limit, Duration::from_millis(500), || {
        let result = prometheus.query(&format!(
            "fillguard_circuit_breaker_open{{symbol=~\"{FAILED_SYMBOL}|{TRIPPED_SYMBOL}\"}} == 1"
        ));
        (result.len() == 2).then_some(result)
    });
    assert!(open.is_some(), "both breakers not open in {limit:?}");
    for sample in failures.iter().chain(&trips) {
        eprintln!("scraped: {} = {}", sample["metric"], sample_value(sample));
    }
}

/// Runs every panel query twice — every instance and symbol (`.*`), then this instance and
/// FAILED_SYMBOL — and every variable's selector; all must succeed, and the queries on the
/// protection-failure and breaker series must return the forced events. Returns the number
/// of queries run.
fn check_panel_queries(prometheus: &Prometheus, dashboard: &Value, instance: &str) -> usize {
    let escaped_instance = instance.replace('.', "\\\\.");
    let variants = [(".*", ".*"), (escaped_instance.as_str(), FAILED_SYMBOL)];
    let mut count = 0;
    for (title, expr) in panel_queries(dashboard) {
        for (instance, symbol) in variants {
            let query = substitute(&expr, instance, symbol);
            let result = prometheus.query(&query);
            count += 1;
            eprintln!("panel {title:?}: {} series: {query}", result.len());
            let on_forced = ["protection_failures_total", "circuit_breaker"]
                .iter()
                .any(|name| query.contains(name));
            assert!(!on_forced || !result.is_empty(), "no data: {query}");
            if query.contains("fillguard_circuit_breaker_open") && symbol == ".*" {
                let open: Vec<&Value> = result
                    .iter()
                    .filter(|sample| sample_value(sample) == 1.0)
                    .map(|sample| &sample["metric"]["symbol"])
                    .collect();
                assert_eq!(open.len(), 2, "{query}: {result:?}");
            }
        }
    }
    let failures_since_start = substitute(
        "sum by (symbol, reason) (fillguard_protection_failures_total{instance=~\"$instance\", symbol=~\"$symbol\"})",
        ".*",
        FAILED_SYMBOL,
    );
    assert!(
        panel_queries(dashboard)
            .iter()
            .any(|(_, expr)| substitute(expr, ".*", FAILED_SYMBOL) == failures_since_start),
        "the dashboard lost its failures-since-start panel"
    );
    let result = prometheus.query(&failures_since_start);
    assert!(
        result.iter().any(|sample| sample_value(sample) >= 1.0),
        "{result:?}"
    );
    for (name, selector, label) in variable_queries(dashboard) {
        let query = format!("group by ({label}) ({})", substitute(&selector, ".*", ".*"));
        let result = prometheus.query(&query);
        count += 1;
        let values: Vec<&str> = result
            .iter()
            .filter_map(|sample| sample["metric"][&label].as_str())
            .collect();
        eprintln!("variable {name}: {values:?}: {query}");
        let wanted = if name == "instance" {
            instance
        } else {
            FAILED_SYMBOL
        };
        assert!(values.contains(&wanted), "variable {name}: {values:?}");
    }
    count
}

/// Every alerting rule Prometheus loaded from dashboards/alerts.yml, evaluated without error
/// by Prometheus and once more through `/api/v1/query`; the protection-failure and breaker
/// rules hold the forced events. Returns the number of expressions.
fn check_alert_expressions(prometheus: &Prometheus) -> usize {
    let rules = loaded_alert_rules(prometheus);
    assert_eq!(rules.len(), alerts_in_rule_file(), "{rules:?}");
    for (name, expr, state) in &rules {
        let result = prometheus.query(expr);
        eprintln!("alert {name} ({state}): {} series", result.len());
        // A running agent that is scraped and whose database takes writes.
        if QUIET_ALERTS.contains(&name.as_str()) {
            assert!(
                result.is_empty(),
                "{name} holds for a healthy agent: {result:?}"
            );
        }
    }
    let expr_of = |wanted: &str| {
        let (_, expr, _) = rules.iter().find(|(name, _, _)| name == wanted).unwrap();
        expr.clone()
    };
    // A label set first seen a minute after the first scrape: the rule's new-series clause.
    let failed = wait_for(Duration::from_secs(60), Duration::from_secs(1), || {
        let result = prometheus.query(&expr_of("FillguardProtectionFailed"));
        result
            .iter()
            .any(|sample| sample["metric"]["symbol"] == FAILED_SYMBOL)
            .then_some(result)
    });
    let failed = failed.expect("FillguardProtectionFailed's expression found no failure in 60 s");
    eprintln!(
        "FillguardProtectionFailed expression: {}",
        failed[0]["metric"]
    );
    let open = prometheus.query(&expr_of("FillguardBreakerOpen"));
    let mut symbols: Vec<&str> = open
        .iter()
        .filter_map(|sample| sample["metric"]["symbol"].as_str())
        .collect();
    symbols.sort_unstable();
    assert_eq!(symbols, [FAILED_SYMBOL, TRIPPED_SYMBOL]);
    rules.len()
}

#[test]
fn every_panel_query_and_alert_expression_runs_on_a_real_prometheus_scraping_the_agent() {
    let Some(binary) = on_path("prometheus") else {
        eprintln!(
            "SKIPPED: prometheus is not on PATH (scripts/test.sh installs Debian's prometheus when run as root)"
        );
        return;
    };
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_path("dashboards/fillguard.json")).unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    let (workspace, listen) = workspace();
    let mut agent = workspace.spawn_run("agent.log");
    wait_for_metrics(&mut agent, &listen);
    let dir = workspace.path("prometheus");
    std::fs::create_dir(&dir).unwrap();
    let prometheus = Prometheus::start(&binary, &dir, &listen);
    let up = prometheus.wait_for_data("up{job=\"fillguard\"} == 1", Duration::from_secs(60));
    let scraping_since = Instant::now();
    let instance = up[0]["metric"]["instance"].as_str().unwrap().to_string();
    assert_eq!(instance, listen);

    // The failure comes over a minute after the first scrape, as in production: the alert
    // rule's `up offset 1m` then holds, and a new label set is taken for a new failure.
    force_protection_failure(
        &workspace,
        &mut agent,
        scraping_since + Duration::from_secs(65),
    );
    workspace.run_ok(&["breaker", "trip", TRIPPED_SYMBOL, "--reason", "maintenance"]);
    check_forced_series(&prometheus);

    let queries = check_panel_queries(&prometheus, &dashboard, &instance);
    let alerts = check_alert_expressions(&prometheus);
    assert!(agent.is_running(), "the agent exited: {}", agent.log());
    eprintln!(
        "{queries} dashboard queries ({} panel expressions, each for all and for {instance} / {FAILED_SYMBOL}, and the variables) and {alerts} alert expressions ran on prometheus {}; {:?} in all",
        panel_queries(&dashboard).len(),
        prometheus.address,
        started.elapsed()
    );
}
