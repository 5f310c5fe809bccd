#!/usr/bin/env sh
# A deploy script instrumented with deployctl: each step timed, the rollout wrapped, and a
# deployment that is not one command (the database migration) recorded after the fact.
#
#   DEPLOYCTL_PUSHGATEWAY_URL=http://localhost:9091 VERSION=1.4.2 ./examples/deploy.sh
#
# Set DEPLOYCTL to the deployctl command if it is not on PATH.
set -eu

: "${DEPLOYCTL:=deployctl}"
: "${VERSION:=0.0.0-dev}"
export DEPLOYCTL_SERVICE="${DEPLOYCTL_SERVICE:-example/api}"
export DEPLOYCTL_ENV="${DEPLOYCTL_ENV:-staging}"

# Steps of the deploy: each one lands in deployctl_step_duration_seconds{step=...}.
$DEPLOYCTL step build -- sh -c 'echo "building $0"; sleep 0.2' "$VERSION"
$DEPLOYCTL step test -- sh -c 'echo "running smoke tests"'

# The database schema is its own deployment target, deployed by a tool we do not wrap.
started=$(date +%s)
if sh -c 'echo "migrating schema"; sleep 0.1'; then migration=success; else migration=failure; fi
$DEPLOYCTL record --service "$DEPLOYCTL_SERVICE-schema" --status "$migration" --started-at "$started" --version "$VERSION"

# The rollout itself: deployctl exits with the rollout's exit code, so `set -e` still works.
$DEPLOYCTL run --version "$VERSION" -- sh -c 'echo "rolling out"; sleep 0.3'
