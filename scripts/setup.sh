#!/usr/bin/env bash
# Installs what deployctl's tests, demo and benchmark need: Debian's Pushgateway, Prometheus
# (with promtool), VictoriaMetrics, Alertmanager, faketime and tmux, GNU time for the benchmark's peak memory, and the npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus-pushgateway >/dev/null || missing+=(prometheus-pushgateway)
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || missing+=(prometheus)
[ -x /usr/bin/time ] || missing+=(time)
command -v victoria-metrics >/dev/null || missing+=(victoria-metrics)
{ command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; } || missing+=(prometheus-alertmanager)
command -v faketime >/dev/null || missing+=(faketime)
command -v tmux >/dev/null || missing+=(tmux)
command -v curl >/dev/null || missing+=(curl)
command -v git >/dev/null || missing+=(git)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi
npm run --silent build
