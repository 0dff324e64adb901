//! The L3 plugin's half of the southbound protocol: what L3 agents ask.

use std::sync::Arc;

use neutrino_lib::defs::agent::AGENT_TYPE_L3;
use neutrino_lib::resource::stamp;
use neutrino_lib::southbound::{methods, FixedIp, FloatingIpInfo, RouterInfo, RouterPort};
use neutrino_lib::Map;
use neutrino_ml2::notify::{Action, Outbox};
use neutrino_ml2::Core;
use neutrino_rpc::{CallContext, MethodRouter, RemoteError};
use neutrino_store::scheduling::ROUTER_L3;
use neutrino_store::schema::{AGENTS, FLOATINGIPS, NETWORKS, ROUTERS, SUBNETS};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::L3Error;
use crate::{fixed_ips, router_ports, s, OWNER_GATEWAY, OWNER_INTERFACE};

fn remote(e: impl Into<neutrino_lib::Fault>) -> RemoteError {
    let f: neutrino_lib::Fault = e.into();
    RemoteError::new(f.kind.to_string(), f.message)
}

#[derive(Deserialize)]
struct HostArgs {
    host: String,
}

#[derive(Deserialize)]
struct SyncArgs {
    #[allow(dead_code)]
    host: String,
    router_ids: Vec<String>,
}

#[derive(Deserialize)]
struct FipStatusArgs {
    #[allow(dead_code)]
    router_id: String,
    fip_statuses: std::collections::BTreeMap<String, String>,
}

async fn router_port(core: &Core, p: &Map) -> Result<RouterPort, L3Error> {
    let mut subnets = vec![];
    for (sid, _) in fixed_ips(p) {
        if let Some(sn) = core.store.get(&SUBNETS, &sid).await? {
            subnets.push(json!({"id": sid, "cidr": sn.get("cidr"), "gateway_ip": sn.get("gateway_ip"), "ip_version": sn.get("ip_version"),
                "ipv6_ra_mode": sn.get("ipv6_ra_mode"), "ipv6_address_mode": sn.get("ipv6_address_mode")}));
        }
    }
    let mtu = core
        .store
        .get(&NETWORKS, s(p, "network_id"))
        .await?
        .and_then(|n| n.get("mtu").and_then(Value::as_i64))
        .unwrap_or(1500);
    Ok(RouterPort {
        id: s(p, "id").into(),
        network_id: s(p, "network_id").into(),
        mac_address: s(p, "mac_address").into(),
        fixed_ips: fixed_ips(p).into_iter().map(|(subnet_id, ip_address)| FixedIp { subnet_id, ip_address }).collect(),
        subnets,
        mtu,
    })
}

/// Everything an L3 agent needs to build a router.
pub async fn router_info(core: &Core, id: &str) -> Result<Option<RouterInfo>, L3Error> {
    let Some(r) = core.store.get(&ROUTERS, id).await? else { return Ok(None) };
    let mut tx = core.store.begin().await?;
    let gw = router_ports(&mut tx, id, OWNER_GATEWAY).await?;
    let ifaces = router_ports(&mut tx, id, OWNER_INTERFACE).await?;
    drop(tx);
    let mut interfaces = vec![];
    for p in &ifaces {
        interfaces.push(router_port(core, p).await?);
    }
    let gw_port = match gw.first() {
        Some(p) => Some(router_port(core, p).await?),
        None => None,
    };
    let fips = core.store.list(&FLOATINGIPS, &[("router_id", vec![id.to_string()])]).await?;
    Ok(Some(RouterInfo {
        id: id.into(),
        admin_state_up: stamp::bool_of(&r, "admin_state_up"),
        enable_snat: r
            .get("external_gateway_info")
            .and_then(|g| g.get("enable_snat"))
            .and_then(Value::as_bool)
            .unwrap_or(true),
        gw_port,
        interfaces,
        routes: r.get("routes").and_then(Value::as_array).cloned().unwrap_or_default(),
        floating_ips: fips
            .iter()
            .filter(|f| f.get("port_id").is_some_and(|p| !p.is_null()))
            .map(|f| FloatingIpInfo {
                id: s(f, "id").into(),
                floating_ip_address: s(f, "floating_ip_address").into(),
                fixed_ip_address: s(f, "fixed_ip_address").into(),
                port_id: s(f, "port_id").into(),
            })
            .collect(),
    }))
}

/// The L3 plugin's RPC handlers (topic `q-l3-plugin`).
pub fn handlers(core: &Arc<Core>) -> Vec<(&'static str, MethodRouter)> {
    let c1 = core.clone();
    let c2 = core.clone();
    let c3 = core.clone();
    let router = MethodRouter::new()
        .typed(methods::GET_ROUTER_IDS, move |_ctx: CallContext, a: HostArgs| {
            let c = c1.clone();
            async move {
                let agents = c
                    .store
                    .list(&AGENTS, &[("agent_type", vec![AGENT_TYPE_L3.to_string()]), ("host", vec![a.host])])
                    .await
                    .map_err(|e| remote(L3Error::from(e)))?;
                let mut ids = vec![];
                for ag in agents {
                    ids.extend(c.store.hosted_by(ROUTER_L3, s(&ag, "id")).await.map_err(|e| remote(L3Error::from(e)))?);
                }
                Ok::<_, RemoteError>(json!({ "routers": ids }))
            }
        })
        .typed(methods::SYNC_ROUTERS, move |_ctx: CallContext, a: SyncArgs| {
            let c = c2.clone();
            async move {
                let mut out = vec![];
                for id in a.router_ids {
                    if let Some(r) = router_info(&c, &id).await.map_err(remote)? {
                        out.push(r);
                    }
                }
                Ok::<_, RemoteError>(json!({ "routers": out }))
            }
        })
        .typed(methods::UPDATE_FLOATINGIP_STATUSES, move |_ctx: CallContext, a: FipStatusArgs| {
            let c = c3.clone();
            async move {
                let mut tx = c.store.begin().await.map_err(|e| remote(L3Error::from(e)))?;
                let mut out = Outbox::default();
                for (id, status) in a.fip_statuses {
                    if let Some(mut f) = tx.get(&FLOATINGIPS, &id).await.map_err(|e| remote(L3Error::from(e)))? {
                        if s(&f, "status") != status {
                            f.insert("status".into(), json!(status));
                            stamp::changed(&mut f);
                            tx.update(&FLOATINGIPS, &f).await.map_err(|e| remote(L3Error::from(e)))?;
                            out.push("floatingip_status", Action::Update, &f);
                        }
                    }
                }
                c.commit(tx, out).await.map_err(remote)?;
                Ok::<_, RemoteError>(Value::Null)
            }
        });
    vec![(neutrino_rpc::topics::L3_PLUGIN, router)]
}
