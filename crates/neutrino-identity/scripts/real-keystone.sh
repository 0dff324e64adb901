#!/usr/bin/env bash
# Runs neutrino-identity's KeystoneAuth against a REAL Keystone (30.x from
# PyPI, SQLite backend, Fernet tokens) on 127.0.0.1:35357, then stops it.
#
#   crates/neutrino-identity/scripts/real-keystone.sh            # set up, test, clean up
#   KEYSTONE_VENV=/path/venv ... real-keystone.sh                # reuse another venv
#   real-keystone.sh --serve                                     # set up and keep Keystone
#                                                                 # running until Ctrl-C
#
# What it does: creates (or reuses) a virtualenv with keystone and gunicorn,
# writes a minimal keystone.conf in a temp dir (SQLite database, Fernet key
# repository), runs `keystone-manage db_sync`, `fernet_setup`, `bootstrap`,
# starts Keystone with gunicorn on the loopback address only, and runs the
# ignored test `real_keystone` with NEUTRINO_REAL_KEYSTONE_URL set. The
# Keystone process and the temp dir are removed on exit, whatever happens.
# The venv is kept as a cache (default /tmp/keystone-venv).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="${KEYSTONE_VENV:-/tmp/keystone-venv}"
PORT="${KEYSTONE_PORT:-35357}"
PYTHON="${PYTHON:-python3}"
KEYSTONE_SPEC="${KEYSTONE_SPEC:-keystone>=30,<31}"
ADMIN_PASSWORD="neutrino-real-keystone-$RANDOM$RANDOM"
SERVE=0
[ "${1:-}" = "--serve" ] && SERVE=1

log() { printf '[real-keystone %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

WORK="$(mktemp -d /tmp/neutrino-real-keystone.XXXXXX)"
KS_PID=""
cleanup() {
  local rc=$?
  if [ -n "$KS_PID" ] && kill -0 "$KS_PID" 2>/dev/null; then
    log "stopping keystone (pid $KS_PID)"
    kill "$KS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$KS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$KS_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

T0="$(now)"
if [ ! -x "$VENV/bin/keystone-manage" ] || [ ! -x "$VENV/bin/gunicorn" ]; then
  log "creating $VENV and installing $KEYSTONE_SPEC + gunicorn (first run only)"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "$KEYSTONE_SPEC" gunicorn
fi
T_VENV="$(since "$T0")"
log "keystone $("$VENV/bin/pip" show keystone 2>/dev/null | awk '/^Version/ {print $2}') ready in ${T_VENV}s"

T1="$(now)"
mkdir -p "$WORK/fernet-keys" "$WORK/credential-keys" "$WORK/log"
cat > "$WORK/keystone.conf" <<CONF
[DEFAULT]
log_dir = $WORK/log
[database]
connection = sqlite:///$WORK/keystone.db
[token]
provider = fernet
expiration = 3600
[fernet_tokens]
key_repository = $WORK/fernet-keys
max_active_keys = 3
[fernet_receipts]
key_repository = $WORK/fernet-keys
[credential]
key_repository = $WORK/credential-keys
[cache]
enabled = false
CONF
KM=("$VENV/bin/keystone-manage" --config-file "$WORK/keystone.conf")
"${KM[@]}" db_sync >"$WORK/log/db_sync.log" 2>&1
"${KM[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$WORK/log/manage.log" 2>&1
"${KM[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)" >>"$WORK/log/manage.log" 2>&1
"${KM[@]}" bootstrap \
  --bootstrap-password "$ADMIN_PASSWORD" \
  --bootstrap-admin-url "http://127.0.0.1:$PORT/v3/" \
  --bootstrap-internal-url "http://127.0.0.1:$PORT/v3/" \
  --bootstrap-public-url "http://127.0.0.1:$PORT/v3/" \
  --bootstrap-region-id RegionOne >>"$WORK/log/manage.log" 2>&1

# Keystone parses sys.argv with oslo.config: hide gunicorn's arguments.
cat > "$WORK/keystone_app.py" <<'PY'
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
PY
log "starting keystone on 127.0.0.1:$PORT"
OS_KEYSTONE_CONFIG_FILES="$WORK/keystone.conf" "$VENV/bin/gunicorn" \
  --chdir "$WORK" --bind "127.0.0.1:$PORT" --workers 2 --timeout 120 \
  --access-logfile "$WORK/log/access.log" --error-logfile "$WORK/log/gunicorn.log" \
  keystone_app:application 2>"$WORK/log/gunicorn.stderr" &
KS_PID=$!
for _ in $(seq 300); do
  code="$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/" || true)"
  [ "$code" = "300" ] && break
  kill -0 "$KS_PID" 2>/dev/null || { tail -n 40 "$WORK/log/gunicorn.log" "$WORK/log/gunicorn.stderr" >&2; log "keystone died"; exit 1; }
  sleep 0.2
done
[ "$code" = "300" ] || { tail -n 40 "$WORK/log/gunicorn.log" "$WORK/log/gunicorn.stderr" >&2; log "keystone did not answer"; exit 1; }
T_KS="$(since "$T1")"
log "keystone up in ${T_KS}s (db_sync, fernet_setup, bootstrap, start)"

export NEUTRINO_REAL_KEYSTONE_URL="http://127.0.0.1:$PORT"
export NEUTRINO_REAL_KEYSTONE_ADMIN_PASSWORD="$ADMIN_PASSWORD"
if [ "$SERVE" = 1 ]; then
  log "serving; NEUTRINO_REAL_KEYSTONE_URL=$NEUTRINO_REAL_KEYSTONE_URL NEUTRINO_REAL_KEYSTONE_ADMIN_PASSWORD=$ADMIN_PASSWORD; Ctrl-C stops"
  wait "$KS_PID"
  exit 0
fi

T2="$(now)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-identity}"
set +e
cargo test -p neutrino-identity --test real_keystone -- --ignored --nocapture
RC=$?
set -e
T_TEST="$(since "$T2")"
log "keystone calls seen: $(wc -l < "$WORK/log/access.log" | tr -d ' ')"
log "timing: venv ${T_VENV}s, keystone setup ${T_KS}s, test ${T_TEST}s, total $(since "$T0")s"
if [ "$RC" = 0 ]; then log "PASSED"; else log "FAILED (rc=$RC)"; tail -n 40 "$WORK/log/gunicorn.log" >&2 || true; fi
exit "$RC"
