#!/usr/bin/env bash
# Sets everything up, starts a Pushgateway on 127.0.0.1, records a short deployment history
# with deployctl and shows what the gateway now holds. The gateway is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2

port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
prometheus-pushgateway --web.listen-address="127.0.0.1:$port" --persistence.file= --log.level=warn &
gateway_pid=$!
DEPLOYCTL_STATE_DIR=$(mktemp -d)
export DEPLOYCTL_STATE_DIR
trap 'kill $gateway_pid 2>/dev/null || true; rm -rf "$DEPLOYCTL_STATE_DIR"' EXIT
export DEPLOYCTL_PUSHGATEWAY_URL="http://127.0.0.1:$port"
for _ in $(seq 50); do curl -fs "$DEPLOYCTL_PUSHGATEWAY_URL/-/ready" >/dev/null && break; sleep 0.1; done

echo "== Pushgateway on $DEPLOYCTL_PUSHGATEWAY_URL; recording four deployments of checkout/api to production"
deployctl() { node bin/deployctl "$@"; }
deployctl record --service checkout/api --env production --status success --version 1.4.0 --duration 83
deployctl record --service checkout/api --env production --status failure --version 1.5.0 --duration 41
deployctl record --service checkout/api --env production --status success --version 1.5.1 --duration 95
deployctl record --service checkout/api --env production --status success --version 1.6.0 --started-at "$(( $(date +%s) - 190 ))"
deployctl run --service checkout/web --env staging --version 2.0.0 -- sh -c 'echo "  (the wrapped deploy command runs here)"; sleep 0.3'

echo
echo "== deployctl status"
deployctl status

echo
echo "== what a record would push next (--dry-run sends nothing)"
deployctl record --service checkout/api --env production --status success --version 1.7.0 --dry-run | head -8

echo
echo "== the gateway now serves"
curl -s "$DEPLOYCTL_PUSHGATEWAY_URL/metrics" | grep -E '^deployctl_(deployments_total|deployment_duration_seconds_(count|sum)|deployment_info|last_success)'
