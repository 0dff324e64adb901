//! The L3 plugin's part in port changes: router and floating IP ports are
//! not deleted through the port API, and a deleted port loses its floating IPs.

use async_trait::async_trait;
use neutrino_lib::resource::stamp;
use neutrino_lib::Map;
use neutrino_ml2::notify::{Action, Outbox};
use neutrino_ml2::{Ml2Error, PortObserver};
use neutrino_store::schema::{FLOATINGIPS, ROUTERS};
use neutrino_store::Tx;
use serde_json::Value;

use crate::{s, OWNER_FLOATINGIP, OWNER_GATEWAY, OWNER_INTERFACE};

/// Watches port deletions for the L3 plugin.
pub struct L3PortObserver;

#[async_trait]
impl PortObserver for L3PortObserver {
    async fn before_port_delete(
        &self,
        tx: &mut Tx,
        out: &mut Outbox,
        port: &Map,
        via_api: bool,
    ) -> Result<(), Ml2Error> {
        let owner = s(port, "device_owner");
        let device = s(port, "device_id");
        if via_api {
            let owned = match owner {
                OWNER_INTERFACE
                | OWNER_GATEWAY
                | "network:router_interface_distributed"
                | "network:ha_router_replicated_interface" => tx.peek(&ROUTERS, device).await?.is_some(),
                OWNER_FLOATINGIP => tx.peek(&FLOATINGIPS, device).await?.is_some(),
                _ => false,
            };
            if owned {
                return Err(Ml2Error::Fault(
                    crate::L3Error::L3PortInUse { port: s(port, "id").into(), owner: owner.into() }.into(),
                ));
            }
        }
        for mut fip in tx.list(&FLOATINGIPS, &[("port_id", vec![s(port, "id").to_string()])]).await? {
            let router = fip.get("router_id").cloned().filter(|r| !r.is_null());
            for k in ["port_id", "fixed_ip_address", "router_id", "port_details"] {
                fip.insert(k.into(), Value::Null);
            }
            fip.insert("status".into(), Value::String("DOWN".into()));
            stamp::changed(&mut fip);
            tx.update(&FLOATINGIPS, &fip).await?;
            // The router's L3 agent must drop the NAT of this floating IP.
            let mut ev = fip.clone();
            if let Some(r) = router {
                ev.insert("_previous_router_id".into(), r);
            }
            out.push("floatingip", Action::Update, &ev);
        }
        Ok(())
    }

    /// Deleting an external network deletes its unassociated floating IPs
    /// (associated ones keep the network in use).
    async fn before_network_delete(
        &self,
        core: &neutrino_ml2::Core,
        tx: &mut Tx,
        out: &mut Outbox,
        network: &Map,
    ) -> Result<(), Ml2Error> {
        let net = s(network, "id").to_string();
        for fip in tx.list(&FLOATINGIPS, &[("floating_network_id", vec![net.clone()])]).await? {
            if fip.get("port_id").is_some_and(|p| !p.is_null()) {
                continue;
            }
            let fid = s(&fip, "id").to_string();
            tx.delete(&FLOATINGIPS, &fid).await?;
            for p in tx.list(&neutrino_store::schema::PORTS, &[("device_id", vec![fid.clone()])]).await? {
                if s(&p, "device_owner") == OWNER_FLOATINGIP {
                    neutrino_ml2::port::delete_in(core, tx, out, &p).await?;
                }
            }
            out.push("floatingip", Action::Delete, &fip);
        }
        Ok(())
    }

    /// Router ports keep their IPv4 addresses (l3-port-ip-change-not-allowed).
    async fn before_port_update(&self, tx: &mut Tx, port: &Map, changes: &Map) -> Result<(), Ml2Error> {
        let Some(Value::Array(new)) = changes.get("fixed_ips") else { return Ok(()) };
        if !matches!(s(port, "device_owner"), OWNER_INTERFACE | OWNER_GATEWAY)
            || tx.peek(&ROUTERS, s(port, "device_id")).await?.is_none()
        {
            return Ok(());
        }
        let v4 = |l: Vec<String>| -> Vec<String> {
            let mut v: Vec<String> = l.into_iter().filter(|ip| ip.contains('.')).collect();
            v.sort();
            v
        };
        // What the update would leave: an entry naming only a subnet keeps the
        // port's address on that subnet, as the core plugin does.
        let mut remaining = crate::fixed_ips(port);
        let mut after = vec![];
        for f in new {
            match f.get("ip_address").and_then(Value::as_str) {
                Some(ip) => {
                    remaining.retain(|(_, o)| o != ip);
                    after.push(ip.to_string());
                }
                None => {
                    let sid = f.get("subnet_id").and_then(Value::as_str).unwrap_or("");
                    match remaining.iter().position(|(sn, _)| sn == sid) {
                        Some(i) => after.push(remaining.remove(i).1),
                        None => after.push(format!("new:{sid}.")),
                    }
                }
            }
        }
        let old = v4(crate::fixed_ips(port).into_iter().map(|(_, ip)| ip).collect());
        if v4(after) != old {
            return Err(Ml2Error::Fault(neutrino_lib::Fault::new(
                400,
                "IPAddressChangeNotAllowed",
                format!("IP updates for port {} are not allowed", s(port, "id")),
            )));
        }
        Ok(())
    }
}
