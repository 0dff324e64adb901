//! The router's NAT in nftables: one `ip neutrino-l3` table per router
//! namespace, replaced atomically with `nft -f` (conntrack keeps the NAT
//! bindings of established connections across replacements).
//!
//! The rules carry Neutron's iptables semantics over:
//!
//! | Neutron (iptables) | here (nftables) |
//! | --- | --- |
//! | mangle `mark`: `-i qg -j MARK --set-xmark 0x2/0xffff` | `mangle_prerouting`: packets entering from the gateway get mark 0x2 |
//! | nat `PREROUTING`/`OUTPUT`: `-d fip -j DNAT --to fixed` | `prerouting`/`output`: `dnat to ip daddr map { fip : fixed }` |
//! | nat `POSTROUTING`: `! -i qg ! -o qg ! --ctstate DNAT -j ACCEPT` | same, first rule of `postrouting` |
//! | nat `float-snat`: `-s fixed -j SNAT --to fip` | `snat to ip saddr map { fixed : fip }` |
//! | nat `snat`: `-o qg -j SNAT --to gw` (when enable_snat) | `oifname qg snat to gw` |
//! | nat `snat`: `mark != 0x2 --ctstate DNAT -j SNAT --to gw` | same: hairpin and router-originated traffic to a floating IP come back through the router |
//!
//! nft 1.0.6 quirks honoured: every `}` on its own line; no chain named `fwd`.

use super::error::{L3Error, Result};
use super::model::DesiredRouter;
use crate::netns::Netns;

/// Name of the table in each router namespace.
pub const TABLE: &str = "neutrino-l3";
/// Mark of packets that entered through the gateway (Neutron's `external_ingress_mark`).
pub const EXTERNAL_INGRESS_MARK: u32 = 0x2;
/// Mask of that mark.
pub const ROUTER_MARK_MASK: u32 = 0xffff;

/// The table for a router, or `None` when it needs no NAT (no gateway, or administratively down).
pub fn render(d: &DesiredRouter) -> Option<String> {
    if !d.admin_up {
        return None;
    }
    let g = d.gateway.as_ref()?;
    let qg = &g.device.name;
    let mark = EXTERNAL_INGRESS_MARK;
    let mask = ROUTER_MARK_MASK;
    let fips = &d.floating_ips;
    let mut t = String::new();
    t.push_str(&format!("table ip {TABLE} {{\n"));
    t.push_str("\tchain mangle_prerouting {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n");
    t.push_str(&format!("\t\tiifname \"{qg}\" meta mark set meta mark & 0x{:08x} | 0x{mark:08x}\n\t}}\n", !mask));
    let dnat_map: Vec<String> = fips.iter().map(|f| format!("{} : {}", f.floating, f.fixed)).collect();
    let snat_map: Vec<String> = fips.iter().map(|f| format!("{} : {}", f.fixed, f.floating)).collect();
    for (chain, hook, prio) in [("prerouting", "prerouting", "dstnat"), ("output", "output", "-100")] {
        t.push_str(&format!("\tchain {chain} {{\n\t\ttype nat hook {hook} priority {prio}; policy accept;\n"));
        if !fips.is_empty() {
            t.push_str(&format!("\t\tdnat to ip daddr map {{ {} }}\n", dnat_map.join(", ")));
        }
        t.push_str("\t}\n");
    }
    t.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    t.push_str(&format!("\t\tiifname != \"{qg}\" oifname != \"{qg}\" ct status & dnat == 0 accept\n"));
    if !fips.is_empty() {
        t.push_str(&format!("\t\tsnat to ip saddr map {{ {} }}\n", snat_map.join(", ")));
    }
    if let Some(gw) = g.snat_ip {
        if d.enable_snat {
            t.push_str(&format!("\t\toifname \"{qg}\" snat to {gw}\n"));
        }
        t.push_str(&format!("\t\tmeta mark & 0x{mask:08x} != 0x{mark:08x} ct status & dnat != 0 snat to {gw}\n"));
    }
    t.push_str("\t}\n}\n");
    Some(t)
}

/// The `nft -f` script that makes the namespace's table exactly `table`
/// (or removes it), in one atomic transaction.
pub fn script(table: Option<&str>) -> String {
    let mut s = format!("table ip {TABLE}\ndelete table ip {TABLE}\n");
    if let Some(t) = table {
        s.push_str(t);
    }
    s
}

/// Installs (or removes, with `None`) the router's table in `ns`.
pub async fn apply(ns: &Netns, table: Option<&str>) -> Result<()> {
    let out = ns.cmd(&["nft", "-f", "-"]).stdin(script(table)).output().await?;
    if !out.success {
        return Err(L3Error::Nft { netns: ns.name().to_string(), stderr: out.stderr });
    }
    Ok(())
}

/// Forgets the connections of an address that stops being NATed (a removed
/// or moved floating IP, a removed gateway address), as Neutron does: entries
/// to it and entries whose replies go to it.
pub async fn flush_conntrack(ns: &Netns, ip: &str) {
    if !crate::cmd::which("conntrack") {
        return;
    }
    for flag in ["-d", "-q"] {
        // Exit status 1 means "nothing matched": fine.
        if let Err(e) = ns.output(&["conntrack", "-D", flag, ip]).await {
            tracing::debug!(netns = %ns.name(), %ip, error = %e, "conntrack flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::config::L3Config;
    use crate::l3::model::tests::router;

    #[test]
    fn renders_neutron_semantics() {
        let d = DesiredRouter::from_info(&L3Config::new("h"), &router()).unwrap();
        let t = render(&d).unwrap();
        assert!(t.contains("iifname \"qg-ggggggggggg\" meta mark set meta mark & 0xffff0000 | 0x00000002"));
        assert!(t.contains("dnat to ip daddr map { 203.0.113.50 : 10.1.0.11 }"));
        assert!(t.contains("snat to ip saddr map { 10.1.0.11 : 203.0.113.50 }"));
        assert!(t.contains("oifname \"qg-ggggggggggg\" snat to 203.0.113.10"));
        assert!(t.contains("ct status & dnat != 0 snat to 203.0.113.10"));
        // nft 1.0.6: a closing brace never follows a rule on the same line.
        for l in t.lines() {
            let l = l.trim();
            assert!(l == "}" || !l.ends_with('}') || l.ends_with(" }") && l.contains("map {"), "line {l:?}");
        }
        let s = script(Some(&t));
        assert!(s.starts_with("table ip neutrino-l3\ndelete table ip neutrino-l3\ntable ip neutrino-l3 {"));
    }

    #[test]
    fn snat_disabled_keeps_floating_ips() {
        let mut r = router();
        r.enable_snat = false;
        let d = DesiredRouter::from_info(&L3Config::new("h"), &r).unwrap();
        let t = render(&d).unwrap();
        assert!(!t.contains("oifname \"qg-ggggggggggg\" snat"));
        assert!(t.contains("dnat to ip daddr map"));
        let mut r = router();
        r.gw_port = None;
        assert!(render(&DesiredRouter::from_info(&L3Config::new("h"), &r).unwrap()).is_none());
    }
}
