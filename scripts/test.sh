#!/usr/bin/env bash
# Runs neutrino's whole test suite on a Debian machine (as root): installs
# what the tests need, starts PostgreSQL and RabbitMQ if they are down, then
# runs every crate's tests with cargo-nextest.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
apt_install ca-certificates gcc pkg-config iproute2 postgresql-client
# the dataplane tests: Open vSwitch (userspace datapath), namespaces, probes
apt_install openvswitch-switch iputils-ping iputils-arping tcpdump ethtool socat nftables dnsmasq-base isc-dhcp-client udhcpc conntrack radvd
ensure_rust
ensure_postgres
ensure_rabbitmq
if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest
fi
OSC_VENV=${NEUTRINO_OSC_VENV:-/opt/neutrino-osc}
if [ ! -x "$OSC_VENV/bin/openstack" ]; then
  log "installing python-openstackclient and openstacksdk in $OSC_VENV"
  apt_install python3-venv
  python3 -m venv "$OSC_VENV"
  "$OSC_VENV/bin/pip" install -q python-openstackclient==10.5.0 openstacksdk==4.22.0
fi
export NEUTRINO_OSC_VENV="$OSC_VENV"
TEMPEST_VENV=${TEMPEST_VENV:-/opt/neutrino-tempest}
if [ ! -x "$TEMPEST_VENV/bin/tempest" ]; then
  log "installing tempest 47.0.0 in $TEMPEST_VENV"
  python3 -m venv "$TEMPEST_VENV"
  "$TEMPEST_VENV/bin/pip" install -q tempest==47.0.0
fi
export TEMPEST_VENV
log "running the test suite"
cargo nextest run --workspace --profile ci "$@"
