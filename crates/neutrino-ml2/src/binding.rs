//! Port binding: mechanism drivers bind a port to the agent on its host,
//! choosing the segment the agent can reach; provisioning blocks keep the
//! port DOWN until every component (L2 agent, DHCP) has reported.

use neutrino_lib::defs::agent::AGENT_TYPE_OVS;
use neutrino_lib::resource::stamp;
use neutrino_lib::Map;
use neutrino_store::schema::{AGENTS, PORTS};
use neutrino_store::Tx;
use serde_json::{json, Value};

use crate::error::Result;
use crate::notify::{Action, Outbox};
use crate::types::TypeManager;
use crate::{segments, Core};

/// Provisioning entity of the L2 agent.
pub const PROVISIONING_L2: &str = "L2";
/// Provisioning entity of the DHCP agent.
pub const PROVISIONING_DHCP: &str = "DHCP";

/// Can an Open vSwitch agent with this configuration reach the segment?
fn ovs_reaches(conf: &Value, seg: &Map) -> bool {
    let t = stamp::str_of(seg, "network_type");
    match t {
        "local" => true,
        "flat" | "vlan" => {
            let physnet = stamp::str_of(seg, "physical_network");
            conf.get("bridge_mappings").and_then(Value::as_object).is_some_and(|m| m.contains_key(physnet))
        }
        _ if TypeManager::is_tunnel(t) => {
            conf.get("tunnel_types").and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x.as_str() == Some(t)))
        }
        _ => false,
    }
}

/// (Re)binds a port document to its host. Sets `binding:vif_type`,
/// `binding:vif_details`, the bound segment and the provisioning blocks.
pub async fn bind(core: &Core, tx: &mut Tx, port: &mut Map) -> Result<()> {
    let host = stamp::str_of(port, "binding:host_id").to_string();
    if host.is_empty() {
        port.insert("binding:vif_type".into(), json!("unbound"));
        port.insert("binding:vif_details".into(), json!({}));
        port.remove("_segment");
        port.remove("_provisioning");
        return Ok(());
    }
    let vnic = stamp::str_of(port, "binding:vnic_type");
    let segs = segments::of_network(tx, stamp::str_of(port, "network_id")).await?;
    let mut bound = None;
    for driver in &core.cfg.mechanism_drivers {
        if driver != "openvswitch" || !(vnic.is_empty() || vnic == "normal") {
            continue;
        }
        let agents =
            tx.list(&AGENTS, &[("agent_type", vec![AGENT_TYPE_OVS.to_string()]), ("host", vec![host.clone()])]).await?;
        for a in agents.iter().filter(|a| core.agent_alive(a) && stamp::bool_of(a, "admin_state_up")) {
            let conf = a.get("configurations").cloned().unwrap_or(json!({}));
            if let Some(seg) = segs.iter().find(|s| ovs_reaches(&conf, s)) {
                let datapath = conf.get("datapath_type").and_then(Value::as_str).unwrap_or("system");
                let details = json!({
                    "connectivity": "l2",
                    "port_filter": true,
                    "ovs_hybrid_plug": false,
                    "datapath_type": datapath,
                    "bridge_name": conf.get("integration_bridge").and_then(Value::as_str).unwrap_or("br-int"),
                });
                bound = Some((seg.clone(), details));
                break;
            }
        }
        if bound.is_some() {
            break;
        }
    }
    match bound {
        Some((seg, details)) => {
            port.insert("binding:vif_type".into(), json!("ovs"));
            port.insert("binding:vif_details".into(), details);
            port.insert(
                "_segment".into(),
                json!({
                    "id": seg.get("id"),
                    "network_type": seg.get("network_type"),
                    "physical_network": seg.get("physical_network"),
                    "segmentation_id": seg.get("segmentation_id"),
                }),
            );
            let mut blocks = vec![json!(PROVISIONING_L2)];
            let net = stamp::str_of(port, "network_id").to_string();
            let dhcp_served = !tx.hosts_of(neutrino_store::scheduling::NETWORK_DHCP, &net).await?.is_empty()
                && tx
                    .list(&neutrino_store::schema::SUBNETS, &[("network_id", vec![net.clone()])])
                    .await?
                    .iter()
                    .any(|s| stamp::bool_of(s, "enable_dhcp"));
            if dhcp_served
                && stamp::str_of(port, "device_owner") != neutrino_lib::defs::DEVICE_OWNER_DHCP
                && !port.get("fixed_ips").and_then(Value::as_array).is_none_or(|a| a.is_empty())
            {
                blocks.push(json!(PROVISIONING_DHCP));
            }
            port.insert("_provisioning".into(), Value::Array(blocks));
            port.insert("status".into(), json!("DOWN"));
        }
        None => {
            port.insert("binding:vif_type".into(), json!("binding_failed"));
            port.insert("binding:vif_details".into(), json!({}));
            port.remove("_segment");
            port.remove("_provisioning");
        }
    }
    Ok(())
}

impl Core {
    /// Rebinds the ports of a host whose binding failed (an agent appeared).
    pub async fn rebind_host(&self, host: &str) -> Result<usize> {
        let mut tx = self.store.begin().await?;
        let mut out = Outbox::default();
        let mut n = 0;
        for mut p in tx.list(&PORTS, &[("binding:host_id", vec![host.to_string()])]).await? {
            if stamp::str_of(&p, "binding:vif_type") != "binding_failed" {
                continue;
            }
            bind(self, &mut tx, &mut p).await?;
            if stamp::str_of(&p, "binding:vif_type") != "binding_failed" {
                stamp::changed(&mut p);
                tx.update(&PORTS, &p).await?;
                out.push("port", Action::Update, &p);
                n += 1;
            }
        }
        self.commit(tx, out).await?;
        Ok(n)
    }

    /// A provisioning component (L2 agent, DHCP) finished with a port; when
    /// none is left the port goes ACTIVE. Returns the port if it changed.
    pub async fn provisioning_complete(&self, port_id: &str, entity: &str) -> Result<Option<Map>> {
        let mut tx = self.store.begin().await?;
        let Some(mut p) = tx.get(&PORTS, port_id).await? else { return Ok(None) };
        let mut blocks: Vec<Value> = p.get("_provisioning").and_then(Value::as_array).cloned().unwrap_or_default();
        let before = blocks.len();
        blocks.retain(|b| b.as_str() != Some(entity));
        p.insert("_provisioning".into(), Value::Array(blocks.clone()));
        let bound = stamp::str_of(&p, "binding:vif_type") == "ovs";
        let new_status = if blocks.is_empty() && bound && stamp::bool_of(&p, "admin_state_up") {
            "ACTIVE"
        } else {
            stamp::str_of(&p, "status")
        };
        let changed = new_status != stamp::str_of(&p, "status");
        if !changed && blocks.len() == before {
            // Nothing to record (an agent resyncing reports its ports up again).
            return Ok(None);
        }
        p.insert("status".into(), json!(new_status));
        if changed {
            stamp::changed(&mut p);
        }
        tx.update(&PORTS, &p).await?;
        let mut out = Outbox::default();
        if changed {
            out.push("port", Action::Status, &p);
        }
        self.commit(tx, out).await?;
        Ok(changed.then_some(p))
    }

    /// Sets a port's status (the L2 agent reports a device down).
    pub async fn set_port_status(&self, port_id: &str, status: &str) -> Result<Option<Map>> {
        let mut tx = self.store.begin().await?;
        let Some(mut p) = tx.get(&PORTS, port_id).await? else { return Ok(None) };
        if stamp::str_of(&p, "status") == status {
            return Ok(None);
        }
        p.insert("status".into(), json!(status));
        if status == "DOWN" && stamp::str_of(&p, "binding:vif_type") == "ovs" {
            // Back to waiting for the L2 agent.
            let mut blocks: Vec<Value> = p.get("_provisioning").and_then(Value::as_array).cloned().unwrap_or_default();
            if !blocks.iter().any(|b| b.as_str() == Some(PROVISIONING_L2)) {
                blocks.push(json!(PROVISIONING_L2));
            }
            p.insert("_provisioning".into(), Value::Array(blocks));
        }
        stamp::changed(&mut p);
        tx.update(&PORTS, &p).await?;
        let mut out = Outbox::default();
        out.push("port", Action::Status, &p);
        self.commit(tx, out).await?;
        Ok(Some(p))
    }
}
