#!/usr/bin/env bash
# The full Tempest network API suite against a fresh `neutrino up --sim-hosts 2`
# (about ten minutes). Prints Tempest's summary last. Extra arguments: a
# Tempest regex (default ^tempest\.api\.network).
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
TEMPEST_VENV=${TEMPEST_VENV:-/opt/neutrino-tempest}
if [ ! -x "$TEMPEST_VENV/bin/tempest" ]; then
  log "installing tempest 47.0.0 in $TEMPEST_VENV"
  python3 -m venv "$TEMPEST_VENV" && "$TEMPEST_VENV/bin/pip" install -q tempest==47.0.0
fi
cargo build --release -p neutrino
STATE=$(mktemp -d)
trap 'kill $UP 2>/dev/null; wait $UP 2>/dev/null; rm -rf "$STATE"' EXIT
target/release/neutrino up --sim-hosts 2 --state-dir "$STATE" --admin-password conformance \
  --api-bind 127.0.0.1:9696 --identity-bind 127.0.0.1:5000 >/dev/null 2>"$STATE/up.log" &
UP=$!
for _ in $(seq 1 120); do [ -f "$STATE/openrc" ] && break; sleep 1; done
TEMPEST_VENV=$TEMPEST_VENV REFSTACK=${REFSTACK:-/tmp/neutrino-refstack} \
  bash tests/conformance/run-tempest.sh http://127.0.0.1:5000/v3 admin conformance "${1:-^tempest\.api\.network}"
