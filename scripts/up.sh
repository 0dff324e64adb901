#!/usr/bin/env bash
# Installs what neutrino needs on a Debian machine (as root), builds it, and
# brings it up on its embedded defaults. Extra arguments go to `neutrino up`.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
apt_install ca-certificates gcc pkg-config iproute2
# `neutrino up --sim-hosts N` (simulated hypervisors) and `neutrino vm`: Open vSwitch
# (userspace datapath; no daemon of the package is started), ping and ethtool in the VMs,
# dnsmasq (DHCP agent), nftables/conntrack/arping/radvd (L3 agent), udhcpc (VMs' DHCP client)
apt_install openvswitch-switch iputils-ping iputils-arping ethtool dnsmasq-base nftables conntrack radvd udhcpc
ensure_rust
log "building neutrino (release)"
cargo build --release -p neutrino
install -m 0755 target/release/neutrino /usr/local/bin/neutrino
log "starting: neutrino up $*"
exec /usr/local/bin/neutrino up "$@"
