#!/usr/bin/env bash
# Checks dashboards/: the alert rules (promtool check rules, promtool test rules), the Grafana
# dashboard's structure (jq: the DS_PROMETHEUS input, the instance and symbol variables, every
# panel with queries on ${DS_PROMETHEUS}, every metric the dashboard must show), and the
# dashboard against Grafana's published schema (@grafana/schema, type-checked with TypeScript;
# packages from dashboards/schema/package-lock.json, installed under the target directory).
# The queries themselves run against a real Prometheus in tests/prometheus.rs.
#
#   scripts/check-dashboards.sh
#
# Needs promtool and jq; the schema check needs node and npm and is skipped, saying so, without
# them. Honours CARGO_TARGET_DIR (default target/).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DASHBOARD=dashboards/fillguard.json
RULES=dashboards/alerts.yml

for tool in promtool jq; do
    if ! command -v "$tool" >/dev/null; then
        echo "check-dashboards.sh: $tool not found (install Debian's prometheus and jq; scripts/test.sh does as root)" >&2
        exit 1
    fi
done

echo "--- promtool check rules $RULES"
promtool check rules "$RULES"

echo "--- promtool check config dashboards/provisioning/prometheus.yml (the example)"
promtool check config dashboards/provisioning/prometheus.yml

echo "--- promtool test rules dashboards/alerts_test.yml"
(cd dashboards && promtool test rules alerts_test.yml)

echo "--- structure of $DASHBOARD"
# Each check prints the offending items (an empty list means it holds); all run, then any
# failure stops the script.
STRUCTURE_FAILED=0
check() {
    local what="$1" filter="$2"
    local found
    found=$(jq -c "$filter" "$DASHBOARD")
    if [[ "$found" != "[]" ]]; then
        echo "FAILED: $DASHBOARD: $what: $found" >&2
        STRUCTURE_FAILED=1
        return 0
    fi
    echo "ok: $what"
}
jq -e . "$DASHBOARD" >/dev/null
check "an __inputs entry DS_PROMETHEUS for a prometheus data source" \
    '[.__inputs // [] | map(select(.name == "DS_PROMETHEUS" and .type == "datasource" and .pluginId == "prometheus")) | length | select(. != 1)]'
check "query variables instance and symbol from label_values on \${DS_PROMETHEUS}" \
    '[("instance", "symbol") as $name | [.templating.list[] | select(.name == $name and .type == "query"
        and .datasource.uid == "${DS_PROMETHEUS}" and (.query.query // .query | test("^label_values\\(")))]
      | select(length != 1) | $name]'
check "panels not on the \${DS_PROMETHEUS} data source" \
    '[.panels[] | select(.type != "row") | select(.datasource.uid != "${DS_PROMETHEUS}") | .title]'
check "panels without a query" \
    '[.panels[] | select(.type != "row") | select((.targets // []) | map(select((.expr // "") != "")) | length == 0) | .title]'
check "queries without an expression or not on \${DS_PROMETHEUS}" \
    '[.panels[] | select(.type != "row") | .title as $t | .targets[]
      | select((.expr // "") == "" or .datasource.uid != "${DS_PROMETHEUS}") | $t]'
check "panel ids used twice" \
    '[.panels | map(.id) | group_by(.) | .[] | select(length > 1) | .[0]]'
check "metrics the dashboard must show but no query uses" \
    '[([.panels[].targets[]?.expr] | join("\n")) as $all
      | ("fillguard_positions_unprotected", "fillguard_open_trades", "fillguard_unprotected_seconds_bucket",
         "fillguard_circuit_breaker_open", "fillguard_circuit_breaker_trips_total",
         "fillguard_protection_failures_total", "fillguard_fill_poll_attempts_bucket",
         "fillguard_orders_total", "fillguard_exchange_requests_total",
         "fillguard_exchange_request_duration_seconds_bucket", "fillguard_last_loop_timestamp_seconds",
         "fillguard_loop_duration_seconds_bucket", "fillguard_store_write_failures_total",
         "fillguard_reconciliations_total", "fillguard_alerts_pending", "fillguard_alerts_total",
         "fillguard_risk_used", "fillguard_risk_limit", "fillguard_risk_refusals_total",
         "fillguard_webhook_requests_total", "fillguard_watchlist_symbols")
      | select(($all | contains(.)) | not)]'
if [[ $STRUCTURE_FAILED -ne 0 ]]; then
    exit 1
fi
echo "$DASHBOARD: $(jq '[.panels[] | select(.type != "row")] | length' "$DASHBOARD") panels, $(jq '[.panels[].targets[]?] | length' "$DASHBOARD") queries"

echo "--- $DASHBOARD against @grafana/schema"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIPPED: node and npm are not installed, so the schema check cannot run"
    exit 0
fi
WORK="${CARGO_TARGET_DIR:-target}/dashboard-schema"
mkdir -p "$WORK"
# Reinstalled only when the lock file changed.
if ! cmp -s dashboards/schema/package-lock.json "$WORK/package-lock.json" || [[ ! -d "$WORK/node_modules" ]]; then
    cp dashboards/schema/package.json dashboards/schema/package-lock.json "$WORK/"
    (cd "$WORK" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
fi
timeout 300 node dashboards/schema/check.mjs "$DASHBOARD" "$WORK"
