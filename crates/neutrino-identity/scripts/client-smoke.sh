#!/usr/bin/env bash
# Real OpenStack clients against the embedded identity service: the
# `openstack` CLI (python-openstackclient) and keystonemiddleware's
# auth_token (what neutron-server uses to validate tokens).
#
#   crates/neutrino-identity/scripts/client-smoke.sh
#
# Builds the `identity-server` example, starts it on 127.0.0.1:${PORT:-5055}
# with a temp state dir, runs the checks, prints "N passed, M failed", and
# stops the server and removes the temp dir on exit. The client venv
# (default /tmp/osc-venv) is kept as a cache.
set -uo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
VENV="${OSC_VENV:-/tmp/osc-venv}"
PORT="${PORT:-5055}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-identity}"
WORK="$(mktemp -d /tmp/neutrino-client-smoke.XXXXXX)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ ! -x "$VENV/bin/openstack" ] || [ ! -d "$VENV/lib/python3"*/site-packages/keystonemiddleware ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q python-openstackclient keystonemiddleware webob || exit 1
fi
(cd "$ROOT" && cargo build -q -p neutrino-identity --example identity-server) || exit 1
"$CARGO_TARGET_DIR/debug/examples/identity-server" --state-dir "$WORK" --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -f "$WORK/openrc" ] && curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done

PASS=0; FAIL=0
check() { # description, expected substring, command...
  local what="$1" want="$2"; shift 2
  local out; out="$("$@" 2>&1)"
  if grep -q -- "$want" <<<"$out"; then PASS=$((PASS+1)); echo "ok   $what"
  else FAIL=$((FAIL+1)); echo "FAIL $what: wanted '$want' in:"; sed 's/^/     /' <<<"$out"; fi
}

# shellcheck disable=SC1091
. "$WORK/openrc"
O="$VENV/bin/openstack"
check "token issue" "project_id" "$O" token issue -f json
check "catalog has network" "neutron" "$O" catalog list
check "endpoint list" "http://127.0.0.1:9696" "$O" endpoint list
check "role list" "reader" "$O" role list
check "domain list" "Default" "$O" domain list
check "project create" "demo" "$O" project create demo
check "user create" "demo" "$O" user create --password demo-pw --project demo demo
check "role add" "" "$O" role add --project demo --user demo member
check "effective assignments" "reader" "$O" role assignment list --names --user demo --effective
check "demo token" "project_id" env OS_USERNAME=demo OS_PASSWORD=demo-pw OS_PROJECT_NAME=demo "$O" token issue -f json
check "demo sees its project" "demo" env OS_USERNAME=demo OS_PASSWORD=demo-pw OS_PROJECT_NAME=demo "$O" project list
check "demo cannot list users" "403" env OS_USERNAME=demo OS_PASSWORD=demo-pw OS_PROJECT_NAME=demo "$O" user list
check "password reset" "" "$O" user set --password new-pw demo
check "old password refused" "401" env OS_USERNAME=demo OS_PASSWORD=demo-pw OS_PROJECT_NAME=demo "$O" token issue
check "service user" "neutron" "$O" user create --password neutron-pw --project service neutron
check "service role" "" "$O" role add --project service --user neutron service

cat > "$WORK/ksm.py" <<'PY'
import json, os, webob
from keystonemiddleware import auth_token
from keystoneauth1 import session, identity
url = os.environ["OS_AUTH_URL"].rsplit("/v3", 1)[0]
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({k: environ.get(k) for k in ("HTTP_X_PROJECT_ID", "HTTP_X_ROLES", "HTTP_X_IDENTITY_STATUS")}).encode()]
mw = auth_token.AuthProtocol(app, {"www_authenticate_uri": url, "auth_url": url, "auth_type": "password",
    "username": "neutron", "password": "neutron-pw", "project_name": "service", "user_domain_name": "Default",
    "project_domain_name": "Default"})
auth = identity.Password(auth_url=os.environ["OS_AUTH_URL"], username="demo", password="new-pw", project_name="demo",
                         user_domain_name="Default", project_domain_name="Default")
tok = session.Session(auth=auth).get_token()
r = webob.Request.blank("/v2.0/networks", headers={"X-Auth-Token": tok}).get_response(mw)
print("valid", r.status, r.body.decode())
r = webob.Request.blank("/v2.0/networks", headers={"X-Auth-Token": "garbage"}).get_response(mw)
print("invalid", r.status, r.headers.get("WWW-Authenticate"))
PY
KSM="$("$VENV/bin/python" "$WORK/ksm.py" 2>/dev/null)"
check "keystonemiddleware accepts a user token" '"HTTP_X_ROLES": "member,reader"' echo "$KSM"
check "keystonemiddleware refuses garbage" "invalid 401 Unauthorized Keystone uri" echo "$KSM"
check "user delete" "" "$O" user delete demo
check "project delete" "" "$O" project delete demo
check "project gone" "No Project found for demo" "$O" project show demo

echo "client-smoke: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
