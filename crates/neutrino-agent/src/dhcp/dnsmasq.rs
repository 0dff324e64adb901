//! One dnsmasq per network: its command line (modelled on Neutron's dnsmasq
//! driver), its files in `<state_dir>/<network id>/`, and the process —
//! spawned in the qdhcp namespace, reloaded with SIGHUP when only hosts or
//! options changed, restarted when its command line changed, adopted after
//! an agent restart when it is still the right one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Child;

use super::config::DhcpAgentConfig;
use super::error::{DhcpError, Result};
use super::files;
use super::model::NetModel;

/// The files of one network's dnsmasq.
#[derive(Debug, Clone)]
pub struct ConfDir {
    dir: PathBuf,
}

impl ConfDir {
    /// `<state_dir>/<network_id>`.
    pub fn new(state_dir: &Path, network_id: &str) -> ConfDir {
        ConfDir { dir: state_dir.join(network_id) }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A file of the directory (`host`, `opts`, `pid`, ...).
    pub fn file(&self, kind: &str) -> PathBuf {
        self.dir.join(kind)
    }

    /// Creates the directory (readable by dnsmasq after it dropped privileges).
    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| DhcpError::io(format!("mkdir {}", self.dir.display()), e))
    }

    /// Replaces `kind` with `content` atomically unless it already has it.
    /// Returns whether the file changed.
    pub fn write_if_changed(&self, kind: &str, content: &str) -> Result<bool> {
        let path = self.file(kind);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == content) {
            return Ok(false);
        }
        let tmp = self.file(&format!(".{kind}.tmp"));
        std::fs::write(&tmp, content).map_err(|e| DhcpError::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path).map_err(|e| DhcpError::io(format!("rename to {}", path.display()), e))?;
        Ok(true)
    }

    /// Reads a file ("" when missing).
    pub fn read(&self, kind: &str) -> String {
        std::fs::read_to_string(self.file(kind)).unwrap_or_default()
    }

    /// Removes the directory.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(DhcpError::io(format!("rm -r {}", self.dir.display()), e)),
        }
    }
}

/// The rendered files of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `host`.
    pub hosts: String,
    /// `addn_hosts`.
    pub addn_hosts: String,
    /// `opts`.
    pub opts: String,
}

impl Rendered {
    /// Renders the files of `net`.
    pub fn of(net: &NetModel) -> Rendered {
        Rendered { hosts: files::hosts_file(net), addn_hosts: files::addn_hosts_file(net), opts: files::opts_file(net) }
    }

    /// Whether any file on disk differs from these.
    pub fn differs(&self, dir: &ConfDir) -> bool {
        dir.read("host") != self.hosts || dir.read("addn_hosts") != self.addn_hosts || dir.read("opts") != self.opts
    }

    /// Writes what changed; returns whether anything did.
    pub fn write(&self, dir: &ConfDir) -> Result<bool> {
        let a = dir.write_if_changed("host", &self.hosts)?;
        let b = dir.write_if_changed("addn_hosts", &self.addn_hosts)?;
        let c = dir.write_if_changed("opts", &self.opts)?;
        Ok(a || b || c)
    }
}

/// dnsmasq's arguments (without the program name) for `net` on `interface`.
pub fn command_line(cfg: &DhcpAgentConfig, net: &NetModel, dir: &ConfDir, interface: &str) -> Vec<String> {
    let f = |k: &str| dir.file(k).display().to_string();
    let mut a: Vec<String> = vec!["--keep-in-foreground".into(), "--no-hosts".into()];
    if !cfg.dns_servers.is_empty() || !cfg.dnsmasq_local_resolv {
        a.push("--no-resolv".into());
    }
    a.extend([
        format!("--pid-file={}", f("pid")),
        format!("--dhcp-hostsfile={}", f("host")),
        format!("--addn-hosts={}", f("addn_hosts")),
        format!("--dhcp-optsfile={}", f("opts")),
        format!("--dhcp-leasefile={}", f("leases")),
        "--dhcp-match=set:ipxe,175".into(),
        "--dhcp-userclass=set:ipxe6,iPXE".into(),
        "--local-service".into(),
        "--bind-dynamic".into(),
        format!("--interface={interface}"),
        "--except-interface=lo".into(),
    ]);
    let (ranges, possible) = files::dhcp_ranges(net, cfg.lease_duration);
    a.extend(ranges);
    if net.mtu > 0 {
        a.push(format!("--dhcp-option-force=option:mtu,{}", net.mtu));
    }
    a.push(format!("--dhcp-lease-max={}", possible.min(u128::from(cfg.dnsmasq_lease_max))));
    if cfg.dhcp_renewal_time > 0 {
        a.push(format!("--dhcp-option-force=option:T1,{}s", cfg.dhcp_renewal_time));
    }
    if cfg.dhcp_rebinding_time > 0 {
        a.push(format!("--dhcp-option-force=option:T2,{}s", cfg.dhcp_rebinding_time));
    }
    a.push(format!(
        "--conf-file={}",
        cfg.dnsmasq_config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "/dev/null".into())
    ));
    a.extend(cfg.dns_servers.iter().map(|s| format!("--server={s}")));
    if !net.dns_domain.is_empty() {
        a.push(format!("--domain={}", net.dns_domain));
    }
    if cfg.dhcp_broadcast_reply {
        a.push("--dhcp-broadcast".into());
    }
    if let Some(u) = &cfg.dnsmasq_user {
        a.push(format!("--user={u}"));
    }
    a.push(format!("--log-facility={}", f("dnsmasq.log")));
    if cfg.dnsmasq_log_dhcp {
        a.push("--log-dhcp".into());
    }
    a
}

/// Whether `pid` is a live process (zombies count as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X') | None),
        Err(_) => false,
    }
}

/// The arguments of a running process (without argv\[0\]).
pub fn process_args(pid: i32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut parts: Vec<String> =
        raw.split(|b| *b == 0).filter(|p| !p.is_empty()).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    if parts.is_empty() {
        return None;
    }
    parts.remove(0);
    Some(parts)
}

/// The live dnsmasq of a conf dir, if any: the pid file names a live process
/// whose command line uses this directory's pid file.
pub fn running_pid(dir: &ConfDir) -> Option<i32> {
    let pid: i32 = dir.read("pid").trim().parse().ok()?;
    if pid <= 1 || !alive(pid) {
        return None;
    }
    let marker = format!("--pid-file={}", dir.file("pid").display());
    process_args(pid).filter(|a| a.contains(&marker)).map(|_| pid)
}

fn signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) on a pid checked to be our dnsmasq just before.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Whether SIGHUP would crash a dnsmasq that loaded `hosts`: dnsmasq 2.90
/// (Debian 12) segfaults on SIGHUP once it has served a client whose
/// `--dhcp-hostsfile` entry sets a tag (`set:port-<id>`, the entries of
/// ports with `extra_dhcp_opts`) — reproduced here with a lease and one
/// SIGHUP. Such networks are reloaded by a restart instead.
pub fn reload_crashes(hosts: &str) -> bool {
    hosts.contains(",set:")
}

/// Asks dnsmasq to re-read its hosts and options files.
pub fn reload(pid: i32) -> Result<()> {
    if signal(pid, libc::SIGHUP) {
        Ok(())
    } else {
        Err(DhcpError::Dnsmasq(format!("SIGHUP to {pid}: {}", std::io::Error::last_os_error())))
    }
}

/// Stops a dnsmasq: SIGTERM, then SIGKILL after `grace`.
pub async fn stop(pid: i32, grace: Duration) {
    if !alive(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while alive(pid) {
        if tokio::time::Instant::now() > deadline {
            signal(pid, libc::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts dnsmasq in `netns` (as our child, in its own process group so a
/// terminal's Ctrl-C for the agent leaves DHCP running). Returns its pid.
/// Its stderr goes to `<dir>/dnsmasq.stderr` (a pipe would kill it with
/// SIGPIPE once the agent is gone).
pub fn spawn(cfg: &DhcpAgentConfig, dir: &ConfDir, netns: &str, args: &[String]) -> Result<(i32, Child)> {
    let errfile = dir.file("dnsmasq.stderr");
    let stderr =
        std::fs::File::create(&errfile).map_err(|e| DhcpError::io(format!("create {}", errfile.display()), e))?;
    let mut c = tokio::process::Command::new("ip");
    c.args(["netns", "exec", netns, cfg.dnsmasq_binary.as_str()])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    let child = c.spawn().map_err(|e| DhcpError::Dnsmasq(format!("spawn in {netns}: {e}")))?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).ok_or_else(|| DhcpError::Dnsmasq("no pid".into()))?;
    Ok((pid, child))
}

/// Waits (up to `within`) for a freshly spawned dnsmasq to either write its
/// pid file (it is serving) or exit (then its stderr says why).
pub async fn wait_started(dir: &ConfDir, pid: i32, child: &mut Child, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let err = dir.read("dnsmasq.stderr");
            return Err(DhcpError::Dnsmasq(format!("exited at start ({status}): {}", err.trim())));
        }
        if dir.read("pid").trim() == pid.to_string() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DhcpError::Dnsmasq(format!("pid {pid} did not start within {within:?}")));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_shape() {
        let cfg = DhcpAgentConfig::new("h1", "/srv/dhcp");
        let net = NetModel {
            id: "n1".into(),
            mtu: 1450,
            dns_domain: "openstacklocal".into(),
            subnets: vec![crate::dhcp::model::Subnet::from_doc(
                &serde_json::json!({"id": "s1", "cidr": "10.0.0.0/24", "enable_dhcp": true}),
            )
            .unwrap()],
            ports: vec![],
        };
        let dir = ConfDir::new(&cfg.state_dir, "n1");
        let a = command_line(&cfg, &net, &dir, "ns-abc");
        assert!(a.contains(&"--no-resolv".to_string()));
        assert!(a.contains(&"--dhcp-hostsfile=/srv/dhcp/n1/host".to_string()));
        assert!(a.contains(&"--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,86400s".to_string()));
        assert!(a.contains(&"--dhcp-option-force=option:mtu,1450".to_string()));
        assert!(a.contains(&"--dhcp-lease-max=256".to_string()));
        assert!(a.contains(&"--domain=openstacklocal".to_string()));
        assert!(a.contains(&"--interface=ns-abc".to_string()));
    }

    #[test]
    fn own_process_is_alive() {
        assert!(alive(std::process::id() as i32));
        assert!(process_args(std::process::id() as i32).is_some());
    }
}
