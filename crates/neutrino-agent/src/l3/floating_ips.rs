//! Floating IP bookkeeping: which statuses to send back to the server
//! (`update_floatingip_statuses`), and gratuitous ARPs for new external
//! addresses so the outside learns the gateway's MAC at once.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::model::DesiredRouter;
use crate::netns::Netns;

/// The floating IP is configured.
pub const ACTIVE: &str = "ACTIVE";
/// The floating IP is not configured (any more).
pub const DOWN: &str = "DOWN";
/// The agent could not configure it.
pub const ERROR: &str = "ERROR";

/// What was last reported for one floating IP of a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    /// The status sent.
    pub status: &'static str,
    /// The mapping it was sent for (`None` for ERROR).
    pub mapping: Option<(Ipv4Addr, Ipv4Addr)>,
}

/// The statuses to send after configuring a router (`ok`: whether its NAT and
/// addresses are in place), given what was reported before; updates `reported`.
/// A floating IP that is new or moved to another internal address is
/// reported again; one that disappeared is reported DOWN.
pub fn status_changes(
    reported: &mut BTreeMap<String, Reported>,
    desired: Option<&DesiredRouter>,
    ok: bool,
) -> BTreeMap<String, String> {
    let mut now: BTreeMap<String, Reported> = BTreeMap::new();
    if let Some(d) = desired {
        for f in &d.floating_ips {
            let status = if ok { ACTIVE } else { ERROR };
            now.insert(f.id.clone(), Reported { status, mapping: Some((f.floating, f.fixed)) });
        }
        for id in &d.bad_floating_ips {
            now.insert(id.clone(), Reported { status: ERROR, mapping: None });
        }
    }
    let mut changes = BTreeMap::new();
    for (id, r) in &now {
        if reported.get(id) != Some(r) {
            changes.insert(id.clone(), r.status.to_string());
        }
    }
    for id in reported.keys() {
        if !now.contains_key(id) {
            changes.insert(id.clone(), DOWN.to_string());
        }
    }
    *reported = now;
    changes
}

/// Sends `count` rounds of gratuitous ARP (iputils `arping -U`, integer
/// deadline) for `ips` from `dev` in the background. Failures are logged only:
/// the namespace may be gone by then.
pub fn send_garp(ns: &Netns, dev: &str, ips: Vec<Ipv4Addr>, count: u32) {
    if count == 0 || ips.is_empty() {
        return;
    }
    if !crate::cmd::which("arping") {
        tracing::warn!("arping not found (install iputils-arping): no gratuitous ARP sent");
        return;
    }
    let ns = ns.clone();
    let dev = dev.to_string();
    tokio::spawn(async move {
        for round in 0..count {
            if round > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            if !ns.exists() {
                return;
            }
            let runs = ips.iter().map(|ip| {
                let ip = ip.to_string();
                let ns = ns.clone();
                let dev = dev.clone();
                async move {
                    let r = ns.output(&["arping", "-U", "-I", &dev, "-c", "1", "-w", "1", &ip]).await;
                    if let Err(e) = r {
                        tracing::debug!(netns = %ns.name(), %ip, error = %e, "arping failed");
                    }
                }
            });
            futures::future::join_all(runs).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::config::L3Config;
    use crate::l3::model::tests::router;

    #[test]
    fn statuses_follow_configuration() {
        let cfg = L3Config::new("h");
        let d = DesiredRouter::from_info(&cfg, &router()).unwrap();
        let mut rep = BTreeMap::new();
        let c = status_changes(&mut rep, Some(&d), true);
        assert_eq!(c.get("f1").map(String::as_str), Some(ACTIVE));
        assert_eq!(c.get("f2").map(String::as_str), Some(ERROR));
        // Nothing changed: nothing to send.
        assert!(status_changes(&mut rep, Some(&d), true).is_empty());
        // Moved to another fixed address: reported again.
        let mut r = router();
        r.floating_ips[0].fixed_ip_address = "10.1.0.99".into();
        let d2 = DesiredRouter::from_info(&cfg, &r).unwrap();
        assert_eq!(status_changes(&mut rep, Some(&d2), true).get("f1").map(String::as_str), Some(ACTIVE));
        // Disassociated: DOWN.
        let mut r = router();
        r.floating_ips.clear();
        let d3 = DesiredRouter::from_info(&cfg, &r).unwrap();
        let c = status_changes(&mut rep, Some(&d3), true);
        assert_eq!(c.get("f1").map(String::as_str), Some(DOWN));
        assert_eq!(c.get("f2").map(String::as_str), Some(DOWN));
        // Router gone: nothing left to report.
        assert!(status_changes(&mut rep, None, true).is_empty());
    }

    #[test]
    fn failures_are_errors() {
        let d = DesiredRouter::from_info(&L3Config::new("h"), &router()).unwrap();
        let mut rep = BTreeMap::new();
        assert_eq!(status_changes(&mut rep, Some(&d), false).get("f1").map(String::as_str), Some(ERROR));
        assert_eq!(status_changes(&mut rep, Some(&d), true).get("f1").map(String::as_str), Some(ACTIVE));
    }
}
