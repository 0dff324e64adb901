//! IPv6 router advertisements: like Neutron, a `radvd` per router namespace
//! advertises the IPv6 subnets of its interfaces whose `ipv6_ra_mode` is
//! set, with the flags that mode asks for:
//!
//! | ipv6_ra_mode | M (managed) | O (other config) | prefix autonomous (SLAAC) |
//! |---|---|---|---|
//! | `slaac` | off | off | on |
//! | `dhcpv6-stateless` | off | on | on |
//! | `dhcpv6-stateful` | on | off | off |
//!
//! The configuration lives in `<state_path>/ra/<router>.radvd.conf`; a
//! change is applied with SIGHUP, no prefix left stops the daemon.

use std::path::{Path, PathBuf};

use neutrino_lib::southbound::RouterPort;
use serde_json::Value;

use super::error::Result;
use super::model::{short_id, INTERNAL_DEV_PREFIX};
use crate::cmd::Cmd;
use crate::netns::Netns;

/// One advertised prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RaPrefix {
    /// The `qr-` device.
    pub dev: String,
    /// The subnet, e.g. `fd00:1::/64`.
    pub prefix: String,
    /// `slaac`, `dhcpv6-stateless` or `dhcpv6-stateful`.
    pub mode: String,
    /// Link MTU advertised.
    pub mtu: u32,
}

/// The prefixes a router interface advertises.
pub fn prefixes_of(p: &RouterPort) -> Vec<RaPrefix> {
    let dev = format!("{INTERNAL_DEV_PREFIX}{}", short_id(&p.id));
    p.subnets
        .iter()
        .filter(|s| s.get("ip_version").and_then(Value::as_i64) == Some(6))
        .filter_map(|s| {
            let mode = s.get("ipv6_ra_mode")?.as_str()?;
            if !matches!(mode, "slaac" | "dhcpv6-stateless" | "dhcpv6-stateful") {
                return None;
            }
            Some(RaPrefix {
                dev: dev.clone(),
                prefix: s.get("cidr")?.as_str()?.to_string(),
                mode: mode.to_string(),
                mtu: u32::try_from(p.mtu).ok().filter(|m| *m >= 1280).unwrap_or(1500),
            })
        })
        .collect()
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// radvd's configuration for `prefixes` (`None`: nothing to advertise).
pub fn render(prefixes: &[RaPrefix]) -> Option<String> {
    if prefixes.is_empty() {
        return None;
    }
    let mut sorted = prefixes.to_vec();
    sorted.sort();
    let mut out = String::from("# written by neutrino agent l3\n");
    let mut devs: Vec<&str> = sorted.iter().map(|p| p.dev.as_str()).collect();
    devs.dedup();
    for dev in devs {
        let mine: Vec<&RaPrefix> = sorted.iter().filter(|p| p.dev == dev).collect();
        let managed = mine.iter().any(|p| p.mode == "dhcpv6-stateful");
        let other = mine.iter().any(|p| p.mode == "dhcpv6-stateless");
        out.push_str(&format!(
            "interface {dev}\n{{\n    AdvSendAdvert on;\n    MinRtrAdvInterval 30;\n    MaxRtrAdvInterval 100;\n    \
             AdvLinkMTU {};\n    AdvManagedFlag {};\n    AdvOtherConfigFlag {};\n",
            mine[0].mtu,
            on(managed),
            on(other)
        ));
        for p in mine {
            out.push_str(&format!(
                "    prefix {}\n    {{\n        AdvOnLink on;\n        AdvAutonomous {};\n    }};\n",
                p.prefix,
                on(p.mode != "dhcpv6-stateful")
            ));
        }
        out.push_str("};\n");
    }
    Some(out)
}

/// The files of a router's radvd.
fn files(dir: &Path, router_id: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{router_id}.radvd.conf")), dir.join(format!("{router_id}.radvd.pid")))
}

fn running(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()?;
    crate::simhost::cleanup::alive(pid).then_some(pid)
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) of the radvd whose PID file we own.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Makes the router's radvd advertise `conf` (start, reload on change, stop
/// when `None`). Without radvd installed, logs once per call and does nothing.
pub async fn apply(ns: &Netns, dir: &Path, router_id: &str, conf: Option<&str>) -> Result<()> {
    let (conf_file, pid_file) = files(dir, router_id);
    let Some(conf) = conf else {
        if let Some(pid) = running(&pid_file) {
            signal(pid, libc::SIGTERM);
            tracing::info!(router = router_id, pid, "radvd stopped");
        }
        let _ = std::fs::remove_file(&conf_file);
        let _ = std::fs::remove_file(&pid_file);
        return Ok(());
    };
    if !crate::cmd::which("radvd") {
        tracing::warn!(router = router_id, "radvd is not installed: no IPv6 router advertisements");
        return Ok(());
    }
    let changed = std::fs::read_to_string(&conf_file).ok().as_deref() != Some(conf);
    if changed {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(format!("mkdir {}", dir.display()), e))?;
        std::fs::write(&conf_file, conf)
            .map_err(|e| crate::Error::io(format!("writing {}", conf_file.display()), e))?;
    }
    match running(&pid_file) {
        Some(pid) if changed => {
            signal(pid, libc::SIGHUP);
            tracing::info!(router = router_id, pid, "radvd reloaded");
        }
        Some(_) => {}
        None => {
            let conf_s = conf_file.display().to_string();
            let pid_s = pid_file.display().to_string();
            Cmd::new("ip")
                .args(["netns", "exec", ns.name(), "radvd", "-C", &conf_s, "-p", &pid_s, "-m", "syslog"])
                .run()
                .await?;
            tracing::info!(router = router_id, "radvd started");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use neutrino_lib::southbound::FixedIp;
    use serde_json::json;

    fn port(subnets: Vec<Value>) -> RouterPort {
        RouterPort {
            id: "aaaaaaaaaaaa-1".into(),
            network_id: "n".into(),
            mac_address: "fa:16:3e:00:00:01".into(),
            fixed_ips: vec![FixedIp { subnet_id: "s6".into(), ip_address: "fd00:1::1".into() }],
            subnets,
            mtu: 1450,
        }
    }

    #[test]
    fn modes_set_the_flags() {
        let p = port(vec![
            json!({"id": "s4", "cidr": "10.0.0.0/24", "ip_version": 4}),
            json!({"id": "s6", "cidr": "fd00:1::/64", "ip_version": 6, "ipv6_ra_mode": "slaac"}),
            json!({"id": "s7", "cidr": "fd00:2::/64", "ip_version": 6, "ipv6_ra_mode": null}),
        ]);
        let got = prefixes_of(&p);
        assert_eq!(got.len(), 1, "only subnets with an RA mode");
        let c = render(&got).unwrap();
        assert!(c.contains("interface qr-aaaaaaaaaaa\n"), "{c}");
        assert!(c.contains("AdvManagedFlag off;") && c.contains("AdvOtherConfigFlag off;"), "{c}");
        assert!(c.contains("prefix fd00:1::/64") && c.contains("AdvAutonomous on;"), "{c}");
        assert!(c.contains("AdvLinkMTU 1450;"), "{c}");

        let stateful =
            port(vec![json!({"id": "s6", "cidr": "fd00:1::/64", "ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateful"})]);
        let c = render(&prefixes_of(&stateful)).unwrap();
        assert!(c.contains("AdvManagedFlag on;") && c.contains("AdvAutonomous off;"), "{c}");
        let stateless =
            port(vec![json!({"id": "s6", "cidr": "fd00:1::/64", "ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateless"})]);
        let c = render(&prefixes_of(&stateless)).unwrap();
        assert!(c.contains("AdvOtherConfigFlag on;") && c.contains("AdvAutonomous on;"), "{c}");
        assert!(render(&[]).is_none());
    }
}
