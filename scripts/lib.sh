# Shared helpers of neutrino's scripts (sourced).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[neutrino] %s\n' "$*" >&2; }

# Installs Debian packages that are missing (no daemon is started by the packages).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ $guard = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# Makes sure a Rust toolchain is on PATH.
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if ! command -v cargo >/dev/null; then
    log "installing Rust (rustup)"
    apt_install curl ca-certificates gcc
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    . "$HOME/.cargo/env"
  fi
}

# Starts PostgreSQL if it is not answering.
ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 2>/dev/null; then return 0; fi
  log "starting PostgreSQL"
  apt_install postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 && return 0; sleep 1; done
  log "PostgreSQL did not come up"; return 1
}

# Starts RabbitMQ if it is not answering.
ensure_rabbitmq() {
  if (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then return 0; fi
  log "starting RabbitMQ"
  apt_install rabbitmq-server
  rabbitmq-server -detached || true
  for _ in $(seq 1 90); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && return 0; sleep 1; done
  log "RabbitMQ did not come up"; return 1
}
