//! The server's half of the southbound protocol (docs/southbound.md): RPC
//! handlers answering the agents, and the notifier that turns committed
//! changes into fan-out messages and casts to the agents concerned.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use neutrino_lib::defs::agent::{AGENT_TYPE_DHCP, AGENT_TYPE_OVS};
use neutrino_lib::resource::stamp;
use neutrino_lib::southbound::*;
use neutrino_lib::{Context, Map};
use neutrino_rpc::{CallContext, MethodRouter, RemoteError, RpcClient, Target, Transport};
use neutrino_store::scheduling::NETWORK_DHCP;
use neutrino_store::schema::{AGENTS, NETWORKS, PORTS, SECURITY_GROUPS, SECURITY_GROUP_RULES, SUBNETS};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::agents::AgentState as CoreAgentState;
use crate::binding::{PROVISIONING_DHCP, PROVISIONING_L2};
use crate::error::Ml2Error;
use crate::notify::{Action, Event, Notifier};
use crate::Core;

/// The port attributes the DHCP agent uses.
pub const DHCP_PORT_FIELDS: &[&str] = &[
    "id",
    "mac_address",
    "device_id",
    "device_owner",
    "binding:host_id",
    "status",
    "revision_number",
    "fixed_ips",
    "extra_dhcp_opts",
    "dns_assignment",
];

fn remote(e: impl Into<neutrino_lib::Fault>) -> RemoteError {
    let f: neutrino_lib::Fault = e.into();
    RemoteError::new(f.kind.to_string(), f.message)
}

fn s<'a>(m: &'a Map, k: &str) -> &'a str {
    stamp::str_of(m, k)
}

fn port_ref(p: &Map) -> PortRef {
    PortRef {
        id: s(p, "id").into(),
        network_id: s(p, "network_id").into(),
        host: s(p, "binding:host_id").into(),
        revision_number: stamp::revision(p),
    }
}

fn fixed_ips(p: &Map) -> Vec<FixedIp> {
    p.get("fixed_ips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(FixedIp {
                subnet_id: f.get("subnet_id")?.as_str()?.into(),
                ip_address: f.get("ip_address")?.as_str()?.into(),
            })
        })
        .collect()
}

fn segment_of(v: &Value) -> Option<BoundSegment> {
    Some(BoundSegment {
        network_type: v.get("network_type")?.as_str()?.to_string(),
        physical_network: v.get("physical_network").and_then(Value::as_str).map(String::from),
        segmentation_id: v.get("segmentation_id").and_then(Value::as_i64),
    })
}

/// Device details of a port (the segment only when bound to `host`).
fn device_details(p: &Map, net_mtu: i64, host: Option<&str>) -> DeviceDetails {
    let bound_here = host.is_none_or(|h| s(p, "binding:host_id") == h);
    let mac = s(p, "mac_address").to_string();
    DeviceDetails {
        port_id: s(p, "id").into(),
        network_id: s(p, "network_id").into(),
        segment: if bound_here { p.get("_segment").and_then(segment_of) } else { None },
        host: s(p, "binding:host_id").into(),
        mtu: net_mtu,
        mac_address: mac.clone(),
        fixed_ips: fixed_ips(p),
        admin_state_up: stamp::bool_of(p, "admin_state_up"),
        device_owner: s(p, "device_owner").into(),
        port_security_enabled: p.get("port_security_enabled").and_then(Value::as_bool).unwrap_or(true),
        security_groups: p
            .get("security_groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        allowed_address_pairs: p
            .get("allowed_address_pairs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                Some(AddressPair {
                    ip_address: a.get("ip_address")?.as_str()?.into(),
                    mac_address: a.get("mac_address").and_then(Value::as_str).unwrap_or(&mac).into(),
                })
            })
            .collect(),
        revision_number: stamp::revision(p),
    }
}

#[derive(Deserialize)]
struct HostArgs {
    host: String,
}

#[derive(Deserialize)]
struct DevicesArgs {
    devices: Vec<String>,
    #[serde(default)]
    host: Option<String>,
}

#[derive(Deserialize)]
struct DeviceListArgs {
    #[serde(default)]
    devices_up: Vec<String>,
    #[serde(default)]
    devices_down: Vec<String>,
    host: String,
}

#[derive(Deserialize)]
struct TunnelArgs {
    host: String,
}

#[derive(Deserialize)]
struct PeersArgs {
    networks: Vec<String>,
    host: String,
}

#[derive(Deserialize)]
struct ReportArgs {
    agent_state: AgentState,
}

#[derive(Deserialize)]
struct NetworkArgs {
    network_id: String,
}

#[derive(Deserialize)]
struct DhcpPortArgs {
    network_id: String,
    host: String,
    device_id: String,
}

#[derive(Deserialize)]
struct ReleaseArgs {
    network_id: String,
    device_id: String,
}

#[derive(Deserialize)]
struct ReadyArgs {
    port_ids: Vec<String>,
}

impl Core {
    async fn net_mtu(&self, network_id: &str) -> Result<i64, Ml2Error> {
        Ok(self
            .store
            .get(&NETWORKS, network_id)
            .await?
            .and_then(|n| n.get("mtu").and_then(Value::as_i64))
            .unwrap_or(1500))
    }

    /// The tunnel endpoint of each host with a live L2 agent.
    async fn tunnel_ips(&self) -> Result<BTreeMap<String, String>, Ml2Error> {
        let mut out = BTreeMap::new();
        for a in self.live_agents(AGENT_TYPE_OVS, None).await? {
            if let Some(ip) = a.get("configurations").and_then(|c| c.get("tunneling_ip")).and_then(Value::as_str) {
                out.insert(s(&a, "host").to_string(), ip.to_string());
            }
        }
        Ok(out)
    }

    /// Details of the given ports as seen from `host`.
    pub async fn devices_details(
        &self,
        devices: &[String],
        host: Option<&str>,
    ) -> Result<(Vec<DeviceDetails>, Vec<String>), Ml2Error> {
        let mut found = vec![];
        let mut failed = vec![];
        let ports = self.store.list(&PORTS, &[("id", devices.to_vec())]).await?;
        let mut mtus: BTreeMap<String, i64> = BTreeMap::new();
        for id in devices {
            match ports.iter().find(|p| s(p, "id") == id) {
                Some(p) => {
                    let net = s(p, "network_id").to_string();
                    let mtu = match mtus.get(&net) {
                        Some(m) => *m,
                        None => {
                            let m = self.net_mtu(&net).await?;
                            mtus.insert(net, m);
                            m
                        }
                    };
                    found.push(device_details(p, mtu, host));
                }
                None => failed.push(id.clone()),
            }
        }
        Ok((found, failed))
    }

    /// Peers of networks as seen from `host`.
    pub async fn network_peers(
        &self,
        networks: &[String],
        host: &str,
    ) -> Result<BTreeMap<String, NetworkPeers>, Ml2Error> {
        let tunnels = self.tunnel_ips().await?;
        let mut out = BTreeMap::new();
        for net_id in networks {
            let Some(net) = self.store.get(&NETWORKS, net_id).await? else { continue };
            let segs =
                self.store.list(&neutrino_store::schema::SEGMENTS, &[("network_id", vec![net_id.clone()])]).await?;
            let segment = segs.first().map(|sg| Value::Object(sg.clone())).as_ref().and_then(segment_of);
            let mut by_host: BTreeMap<String, Vec<PeerPort>> = BTreeMap::new();
            for p in self.store.list(&PORTS, &[("network_id", vec![net_id.clone()])]).await? {
                let h = s(&p, "binding:host_id");
                if h.is_empty() || h == host || s(&p, "binding:vif_type") != "ovs" {
                    continue;
                }
                by_host.entry(h.to_string()).or_default().push(PeerPort {
                    mac_address: s(&p, "mac_address").into(),
                    ip_addresses: fixed_ips(&p).into_iter().map(|f| f.ip_address).collect(),
                });
            }
            let peers = by_host
                .into_iter()
                .map(|(h, ports)| Peer { tunnel_ip: tunnels.get(&h).cloned(), host: h, ports })
                .collect();
            out.insert(
                net_id.clone(),
                NetworkPeers { segment, mtu: net.get("mtu").and_then(Value::as_i64).unwrap_or(1500), peers },
            );
        }
        Ok(out)
    }

    /// Security groups of devices: rules and the membership of remote groups.
    pub async fn security_group_info(&self, devices: &[String]) -> Result<SecurityGroupInfo, Ml2Error> {
        let (details, _) = self.devices_details(devices, None).await?;
        let mut info = SecurityGroupInfo::default();
        let mut groups: BTreeSet<String> = BTreeSet::new();
        for d in details {
            groups.extend(d.security_groups.iter().cloned());
            info.devices.insert(d.port_id.clone(), d);
        }
        let mut remote: BTreeSet<String> = BTreeSet::new();
        if !groups.is_empty() {
            let sgs = self.store.list(&SECURITY_GROUPS, &[("id", groups.iter().cloned().collect())]).await?;
            let rules = self
                .store
                .list(&SECURITY_GROUP_RULES, &[("security_group_id", groups.iter().cloned().collect())])
                .await?;
            for g in &sgs {
                let id = s(g, "id").to_string();
                let mine: Vec<SgRule> = rules
                    .iter()
                    .filter(|r| s(r, "security_group_id") == id)
                    .map(|r| SgRule {
                        id: s(r, "id").into(),
                        direction: s(r, "direction").into(),
                        ethertype: s(r, "ethertype").into(),
                        protocol: r.get("protocol").and_then(Value::as_str).map(String::from),
                        port_range_min: r.get("port_range_min").and_then(Value::as_i64),
                        port_range_max: r.get("port_range_max").and_then(Value::as_i64),
                        remote_ip_prefix: r.get("normalized_cidr").and_then(Value::as_str).map(String::from),
                        remote_group_id: r.get("remote_group_id").and_then(Value::as_str).map(String::from),
                    })
                    .collect();
                remote.extend(mine.iter().filter_map(|r| r.remote_group_id.clone()));
                info.security_groups.insert(
                    id,
                    SgInfo { stateful: g.get("stateful").and_then(Value::as_bool).unwrap_or(true), rules: mine },
                );
            }
        }
        if !remote.is_empty() {
            for p in self.store.list(&PORTS, &[]).await? {
                let member_of: Vec<String> = p
                    .get("security_groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .filter(|g| remote.contains(g))
                    .collect();
                if member_of.is_empty() {
                    continue;
                }
                let mut addrs: Vec<String> = fixed_ips(&p).into_iter().map(|f| f.ip_address).collect();
                addrs.extend(
                    p.get("allowed_address_pairs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.get("ip_address")?.as_str().map(String::from)),
                );
                for g in member_of {
                    let entry = info.sg_member_ips.entry(g).or_default();
                    for a in &addrs {
                        let fam = if a.contains(':') { "IPv6" } else { "IPv4" };
                        entry.entry(fam.into()).or_default().push(a.clone());
                    }
                }
            }
        }
        Ok(info)
    }

    /// The DHCP data of a network (ports reduced to [`DHCP_PORT_FIELDS`]).
    pub async fn dhcp_network(&self, network_id: &str) -> Result<Option<DhcpNetwork>, Ml2Error> {
        let Some(net) = self.store.get(&NETWORKS, network_id).await? else { return Ok(None) };
        let subnets = self.store.list(&SUBNETS, &[("network_id", vec![network_id.to_string()])]).await?;
        let ports = self.store.list(&PORTS, &[("network_id", vec![network_id.to_string()])]).await?;
        let clean = |mut m: Map| {
            m.retain(|k, _| !k.starts_with('_'));
            Value::Object(m)
        };
        // What the DHCP agent reads of a port: a network of thousands of
        // ports stays a message of a few hundred bytes per port.
        let slim = |mut m: Map| {
            m.retain(|k, _| DHCP_PORT_FIELDS.contains(&k.as_str()));
            Value::Object(m)
        };
        Ok(Some(DhcpNetwork {
            id: network_id.into(),
            mtu: net.get("mtu").and_then(Value::as_i64).unwrap_or(1500),
            dns_domain: if s(&net, "dns_domain").is_empty() {
                self.cfg.dns_domain.clone()
            } else {
                s(&net, "dns_domain").into()
            },
            subnets: subnets.into_iter().map(clean).collect(),
            ports: ports.into_iter().map(slim).collect(),
        }))
    }

    async fn dhcp_agent_id(&self, host: &str) -> Result<Option<String>, Ml2Error> {
        Ok(self
            .store
            .list(&AGENTS, &[("agent_type", vec![AGENT_TYPE_DHCP.to_string()]), ("host", vec![host.to_string()])])
            .await?
            .first()
            .map(|a| s(a, "id").to_string()))
    }
}

/// The RPC handlers of the core plugin, per topic: (`q-reports-plugin`,
/// `q-plugin`, `q-dhcp-notifer`).
pub fn handlers(core: &Arc<Core>) -> Vec<(&'static str, MethodRouter)> {
    let c = core.clone();
    let reports = MethodRouter::new().typed(methods::REPORT_STATE, move |_ctx: CallContext, a: ReportArgs| {
        let c = c.clone();
        async move {
            let st = CoreAgentState {
                agent_type: a.agent_state.agent_type,
                binary: a.agent_state.binary,
                host: a.agent_state.host,
                topic: a.agent_state.topic,
                availability_zone: a.agent_state.availability_zone,
                configurations: a.agent_state.configurations,
                start_flag: a.agent_state.start_flag,
            };
            let (outcome, _) = c.report_state(&st).await.map_err(remote)?;
            let status = match outcome {
                crate::agents::Reported::New => "new",
                crate::agents::Reported::Revived => "revived",
                crate::agents::Reported::Alive => "alive",
            };
            Ok::<_, RemoteError>(json!({ "status": status }))
        }
    });

    let c1 = core.clone();
    let c2 = core.clone();
    let c3 = core.clone();
    let c4 = core.clone();
    let c5 = core.clone();
    let c6 = core.clone();
    let plugin = MethodRouter::new()
        .typed(methods::GET_PORTS_ON_HOST, move |_ctx: CallContext, a: HostArgs| {
            let c = c1.clone();
            async move {
                let ports = c.store.list(&PORTS, &[("binding:host_id", vec![a.host])]).await.map_err(|e| remote(Ml2Error::from(e)))?;
                Ok::<_, RemoteError>(json!({ "ports": ports.iter().map(port_ref).collect::<Vec<_>>() }))
            }
        })
        .typed(methods::GET_DEVICES_DETAILS_LIST, move |_ctx: CallContext, a: DevicesArgs| {
            let c = c2.clone();
            async move {
                let (devices, failed) = c.devices_details(&a.devices, a.host.as_deref()).await.map_err(remote)?;
                Ok::<_, RemoteError>(json!({ "devices": devices, "failed_devices": failed }))
            }
        })
        .typed(methods::UPDATE_DEVICE_LIST, move |_ctx: CallContext, a: DeviceListArgs| {
            let c = c3.clone();
            async move {
                let mut up = vec![];
                let mut failed_up = vec![];
                for id in a.devices_up {
                    match c.store.get(&PORTS, &id).await {
                        Ok(Some(p)) if s(&p, "binding:host_id") == a.host => match c.provisioning_complete(&id, PROVISIONING_L2).await {
                            Ok(_) => up.push(id),
                            Err(_) => failed_up.push(id),
                        },
                        _ => failed_up.push(id),
                    }
                }
                let mut down = vec![];
                let mut failed_down = vec![];
                for id in a.devices_down {
                    match c.store.get(&PORTS, &id).await {
                        Ok(Some(p)) if s(&p, "binding:host_id") == a.host => match c.set_port_status(&id, "DOWN").await {
                            Ok(_) => down.push(id),
                            Err(_) => failed_down.push(id),
                        },
                        Ok(_) => down.push(id),
                        Err(_) => failed_down.push(id),
                    }
                }
                Ok::<_, RemoteError>(json!({"devices_up": up, "devices_down": down, "failed_devices_up": failed_up, "failed_devices_down": failed_down}))
            }
        })
        .typed(methods::TUNNEL_SYNC, move |_ctx: CallContext, a: TunnelArgs| {
            let c = c4.clone();
            async move {
                let tunnels: Vec<Value> = c
                    .tunnel_ips()
                    .await
                    .map_err(remote)?
                    .into_iter()
                    .filter(|(h, _)| *h != a.host)
                    .map(|(h, ip)| json!({"host": h, "ip_address": ip}))
                    .collect();
                Ok::<_, RemoteError>(json!({ "tunnels": tunnels }))
            }
        })
        .typed(methods::GET_NETWORK_PEERS, move |_ctx: CallContext, a: PeersArgs| {
            let c = c5.clone();
            async move { Ok::<_, RemoteError>(json!({ "networks": c.network_peers(&a.networks, &a.host).await.map_err(remote)? })) }
        })
        .typed(methods::SECURITY_GROUP_INFO_FOR_DEVICES, move |_ctx: CallContext, a: DevicesArgs| {
            let c = c6.clone();
            async move { c.security_group_info(&a.devices).await.map_err(remote) }
        });

    let d1 = core.clone();
    let d2 = core.clone();
    let d3 = core.clone();
    let d4 = core.clone();
    let d5 = core.clone();
    let dhcp = MethodRouter::new()
        .typed(methods::GET_ACTIVE_NETWORKS, move |_ctx: CallContext, a: HostArgs| {
            let c = d1.clone();
            async move {
                let nets = match c.dhcp_agent_id(&a.host).await.map_err(remote)? {
                    Some(id) => c.store.hosted_by(NETWORK_DHCP, &id).await.map_err(|e| remote(Ml2Error::from(e)))?,
                    None => vec![],
                };
                Ok::<_, RemoteError>(json!({ "networks": nets }))
            }
        })
        .typed(methods::GET_NETWORK_INFO, move |_ctx: CallContext, a: NetworkArgs| {
            let c = d2.clone();
            async move { Ok::<_, RemoteError>(json!(c.dhcp_network(&a.network_id).await.map_err(remote)?)) }
        })
        .typed(methods::CREATE_DHCP_PORT, move |_ctx: CallContext, a: DhcpPortArgs| {
            let c = d3.clone();
            async move { c.ensure_dhcp_port(&a.network_id, &a.host, &a.device_id).await.map_err(remote) }
        })
        .typed(methods::RELEASE_DHCP_PORT, move |_ctx: CallContext, a: ReleaseArgs| {
            let c = d4.clone();
            async move {
                c.release_dhcp_port(&a.network_id, &a.device_id).await.map_err(remote)?;
                Ok::<_, RemoteError>(Value::Null)
            }
        })
        .typed(methods::DHCP_READY_ON_PORTS, move |_ctx: CallContext, a: ReadyArgs| {
            let c = d5.clone();
            async move {
                for id in a.port_ids {
                    c.provisioning_complete(&id, PROVISIONING_DHCP).await.map_err(remote)?;
                }
                Ok::<_, RemoteError>(Value::Null)
            }
        });
    vec![
        (neutrino_rpc::topics::REPORTS, reports),
        (neutrino_rpc::topics::PLUGIN, plugin),
        (neutrino_rpc::topics::DHCP_PLUGIN, dhcp),
    ]
}

impl Core {
    /// The DHCP port of an agent on a network: reused when it exists (bound
    /// to the agent's host), created otherwise with one address per
    /// DHCP-enabled subnet.
    pub async fn ensure_dhcp_port(
        self: &Arc<Self>,
        network_id: &str,
        host: &str,
        device_id: &str,
    ) -> Result<Value, Ml2Error> {
        let existing = self
            .store
            .list(&PORTS, &[("network_id", vec![network_id.to_string()]), ("device_id", vec![device_id.to_string()])])
            .await?;
        let mut tx = self.store.begin().await?;
        let mut out = crate::notify::Outbox::default();
        let subnets: Vec<Map> = tx
            .list(&SUBNETS, &[("network_id", vec![network_id.to_string()])])
            .await?
            .into_iter()
            .filter(|s| stamp::bool_of(s, "enable_dhcp"))
            .collect();
        let port = match existing.into_iter().find(|p| s(p, "device_owner") == neutrino_lib::defs::DEVICE_OWNER_DHCP) {
            Some(p) => {
                let have: BTreeSet<String> = fixed_ips(&p).into_iter().map(|f| f.subnet_id).collect();
                let mut ch = Map::new();
                if s(&p, "binding:host_id") != host {
                    ch.insert("binding:host_id".into(), json!(host));
                }
                if subnets.iter().any(|sn| !have.contains(s(sn, "id"))) || have.len() != subnets.len() {
                    let mut ips: Vec<Value> = fixed_ips(&p)
                        .into_iter()
                        .filter(|f| subnets.iter().any(|sn| s(sn, "id") == f.subnet_id))
                        .map(|f| json!({"subnet_id": f.subnet_id, "ip_address": f.ip_address}))
                        .collect();
                    for sn in &subnets {
                        if !have.contains(s(sn, "id")) {
                            ips.push(json!({"subnet_id": s(sn, "id")}));
                        }
                    }
                    ch.insert("fixed_ips".into(), Value::Array(ips));
                }
                if ch.is_empty() {
                    p
                } else {
                    crate::port::update_in(self, &mut tx, &mut out, &p, ch).await?
                }
            }
            None => {
                let net = tx
                    .peek(&NETWORKS, network_id)
                    .await?
                    .ok_or_else(|| Ml2Error::NetworkNotFound(network_id.into()))?;
                let mut req = Map::new();
                req.insert("network_id".into(), json!(network_id));
                req.insert("project_id".into(), json!(s(&net, "project_id")));
                req.insert("device_id".into(), json!(device_id));
                req.insert("device_owner".into(), json!(neutrino_lib::defs::DEVICE_OWNER_DHCP));
                req.insert("binding:host_id".into(), json!(host));
                req.insert(
                    "fixed_ips".into(),
                    Value::Array(subnets.iter().map(|sn| json!({"subnet_id": s(sn, "id")})).collect()),
                );
                crate::port::create_in(self, &Context::admin(), &mut tx, &mut out, req).await?
            }
        };
        self.commit(tx, out).await?;
        let mut p = port;
        p.retain(|k, _| !k.starts_with('_'));
        Ok(Value::Object(p))
    }

    /// Deletes an agent's DHCP port on a network.
    pub async fn release_dhcp_port(&self, network_id: &str, device_id: &str) -> Result<(), Ml2Error> {
        let mut tx = self.store.begin().await?;
        let mut out = crate::notify::Outbox::default();
        for p in tx
            .list(&PORTS, &[("network_id", vec![network_id.to_string()]), ("device_id", vec![device_id.to_string()])])
            .await?
        {
            if s(&p, "device_owner") == neutrino_lib::defs::DEVICE_OWNER_DHCP {
                crate::port::delete_in(self, &mut tx, &mut out, &p).await?;
            }
        }
        self.commit(tx, out).await
    }
}

/// Serves the core plugin's topics on a transport, as `server` (the server's
/// host name). Keep the handles: dropping them stops serving.
pub async fn serve(
    core: &Arc<Core>,
    bus: &Arc<dyn Transport>,
    server: &str,
) -> Result<Vec<neutrino_rpc::ServerHandle>, neutrino_rpc::RpcError> {
    let mut handles = vec![];
    for (topic, router) in handlers(core) {
        handles.push(bus.serve(topic, server, Arc::new(router), neutrino_rpc::ServerOptions::default()).await?);
    }
    Ok(handles)
}

/// One message for the agents.
#[derive(Debug)]
enum Outgoing {
    Fanout { topic: &'static str, method: &'static str, args: Value },
    Cast { topic: &'static str, host: String, method: &'static str, args: Value },
}

/// Turns committed changes into messages to agents. Messages go out in
/// commit order from one task, so an agent never sees a delete before the
/// create it follows. Changes come with their outbox rows (written in the
/// change's transaction); a row is deleted once its messages are on the bus.
/// A sweeper delivers the rows nobody delivered in time: those of a server
/// that died between commit and delivery, or that could not reach the bus.
pub struct RpcNotifier {
    tx: mpsc::UnboundedSender<Event>,
}

/// How often the outbox is swept for rows whose lease ran out.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(1000);

impl RpcNotifier {
    /// Starts the notifier over a transport; `store` answers who hosts what
    /// and holds the outbox.
    pub fn start(bus: Arc<dyn Transport>, store: neutrino_store::Store) -> Arc<RpcNotifier> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (b, st) = (bus.clone(), store.clone());
        tokio::spawn(async move {
            // Rows of delivered changes are deleted in batches: whatever
            // was delivered before the queue ran empty, in one transaction.
            while let Some(ev) = rx.recv().await {
                let mut done = vec![];
                done.extend(deliver(&b, &st, ev).await);
                while done.len() < 256 {
                    match rx.try_recv() {
                        Ok(ev) => done.extend(deliver(&b, &st, ev).await),
                        Err(_) => break,
                    }
                }
                if let Err(e) = st.outbox_done(&done).await {
                    tracing::warn!(error = %e, "delivered notifications left in the outbox (they will be sent again)");
                }
            }
        });
        let sweeper_tx = tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match store.outbox_claim(500).await {
                    Ok(rows) => {
                        if !rows.is_empty() {
                            tracing::info!(count = rows.len(), "delivering notifications left in the outbox");
                        }
                        for r in rows {
                            match Event::from_body(&r.id, &r.body) {
                                // Through the same queue, in order with live changes.
                                Some(ev) => {
                                    let _ = sweeper_tx.send(ev);
                                }
                                None => {
                                    tracing::error!(id = %r.id, "unreadable outbox row dropped");
                                    let _ = store.outbox_done(&[r.id]).await;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "outbox sweep failed"),
                }
            }
        });
        Arc::new(RpcNotifier { tx })
    }
}

/// Sends one change's messages; returns its outbox row when all went out.
async fn deliver(bus: &Arc<dyn Transport>, store: &neutrino_store::Store, ev: Event) -> Option<String> {
    let ctx = CallContext::admin();
    let msgs = match translate(store, &ev).await {
        Ok(m) => m,
        Err(e) => {
            // The store is unreachable: leave the row for the sweeper.
            tracing::warn!(error = %e, resource = ev.resource, "cannot translate a change for the agents");
            return None;
        }
    };
    let mut sent = true;
    for m in msgs {
        let r = match &m {
            Outgoing::Fanout { topic, method, args } => {
                RpcClient::new(bus.clone(), Target::topic(*topic).fanout()).cast(&ctx, method, args.clone()).await
            }
            Outgoing::Cast { topic, host, method, args } => {
                RpcClient::new(bus.clone(), Target::topic(*topic).server(host)).cast(&ctx, method, args.clone()).await
            }
        };
        if let Err(e) = r {
            sent = false;
            tracing::warn!(error = %e, message = ?m, "notification to agents not sent");
        }
    }
    if sent {
        ev.outbox_id
    } else {
        None
    }
}

impl Notifier for RpcNotifier {
    fn notify(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    fn durable(&self) -> bool {
        true
    }
}

async fn dhcp_hosts(store: &neutrino_store::Store, network_id: &str) -> Result<Vec<String>, Ml2Error> {
    let mut hosts = vec![];
    for id in store.hosts_of(NETWORK_DHCP, network_id).await? {
        if let Some(a) = store.get(&AGENTS, &id).await? {
            hosts.push(s(&a, "host").to_string());
        }
    }
    Ok(hosts)
}

/// The port's groups, and the ones it just left (`_previous_security_groups`).
fn groups_of(doc: &Map) -> Vec<String> {
    let mut g: Vec<String> = ["security_groups", "_previous_security_groups"]
        .iter()
        .filter_map(|k| doc.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect();
    g.sort();
    g.dedup();
    g
}

/// Tells the L2 agents that the ports of `net` changed (l2population).
fn peers_changed(out: &mut Vec<Outgoing>, net: &str) {
    out.push(Outgoing::Fanout {
        topic: topics::L2POP,
        method: methods::PEERS_CHANGED,
        args: json!({"network_id": net}),
    });
}

/// Tells the L2 agents that the membership of the port's security groups changed.
fn members_updated(out: &mut Vec<Outgoing>, port: &Map) {
    let g = groups_of(port);
    if !g.is_empty() {
        out.push(Outgoing::Fanout {
            topic: topics::SECURITY_GROUP,
            method: methods::SG_MEMBER_UPDATED,
            args: json!({"security_groups": g}),
        });
    }
}

async fn translate(store: &neutrino_store::Store, ev: &Event) -> Result<Vec<Outgoing>, Ml2Error> {
    let d = &ev.doc;
    let mut out = vec![];
    let dhcp_changed = |out: &mut Vec<Outgoing>, hosts: Vec<String>, net: &str| {
        for h in hosts {
            out.push(Outgoing::Cast {
                topic: neutrino_rpc::topics::DHCP_AGENT,
                host: h,
                method: methods::NETWORK_CHANGED,
                args: json!({"network_id": net}),
            });
        }
    };
    match (ev.resource, ev.action) {
        ("port", Action::Status) => {
            // The port's own agents reported it; only the network's peers
            // care (l2population), and only if the port is bound somewhere.
            if !s(d, "binding:host_id").is_empty() {
                peers_changed(&mut out, s(d, "network_id"));
            }
        }
        ("port", Action::Create | Action::Update) => {
            let net = s(d, "network_id");
            out.push(Outgoing::Fanout {
                topic: topics::PORT_UPDATE,
                method: methods::PORT_UPDATE,
                args: json!({"port": port_ref(d)}),
            });
            if !s(d, "binding:host_id").is_empty() {
                peers_changed(&mut out, net);
            }
            members_updated(&mut out, d);
            dhcp_changed(&mut out, dhcp_hosts(store, net).await?, net);
        }
        ("port", Action::Delete) => {
            let net = s(d, "network_id");
            out.push(Outgoing::Fanout {
                topic: topics::PORT_DELETE,
                method: methods::PORT_DELETE,
                args: json!({"port_id": d.get("id"), "network_id": net}),
            });
            peers_changed(&mut out, net);
            members_updated(&mut out, d);
            dhcp_changed(&mut out, dhcp_hosts(store, net).await?, net);
        }
        ("network", Action::Update) => {
            out.push(Outgoing::Fanout {
                topic: topics::NETWORK_UPDATE,
                method: methods::NETWORK_UPDATE,
                args: json!({"network_id": d.get("id")}),
            });
        }
        ("network", Action::Delete) => {
            out.push(Outgoing::Fanout {
                topic: topics::NETWORK_DELETE,
                method: methods::NETWORK_DELETE,
                args: json!({"network_id": d.get("id")}),
            });
        }
        ("subnet", _) => {
            let net = s(d, "network_id");
            dhcp_changed(&mut out, dhcp_hosts(store, net).await?, net);
        }
        ("security_group_rule", _) => {
            out.push(Outgoing::Fanout {
                topic: topics::SECURITY_GROUP,
                method: methods::SG_RULE_UPDATED,
                args: json!({"security_groups": [d.get("security_group_id")]}),
            });
        }
        ("security_group", Action::Update | Action::Delete) => {
            out.push(Outgoing::Fanout {
                topic: topics::SECURITY_GROUP,
                method: methods::SG_RULE_UPDATED,
                args: json!({"security_groups": [d.get("id")]}),
            });
        }
        ("dhcp_network_hosted", action) => {
            let method = if action == Action::Delete { methods::NETWORK_REMOVED } else { methods::NETWORK_CHANGED };
            out.push(Outgoing::Cast {
                topic: neutrino_rpc::topics::DHCP_AGENT,
                host: s(d, "host").into(),
                method,
                args: json!({"network_id": d.get("network_id")}),
            });
        }
        ("agent", Action::Create | Action::Update) if s(d, "agent_type") == AGENT_TYPE_OVS => {
            if let Some(ip) = d.get("configurations").and_then(|c| c.get("tunneling_ip")).and_then(Value::as_str) {
                out.push(Outgoing::Fanout {
                    topic: topics::TUNNEL,
                    method: methods::TUNNEL_UPDATE,
                    args: json!({"tunnel_ip": ip, "host": d.get("host"), "tunnel_type": d.get("configurations").and_then(|c| c.get("tunnel_types"))}),
                });
            }
        }
        ("router", Action::Create | Action::Update) | ("router_touched", _) => {
            for h in l3_hosts(store, s(d, "id")).await? {
                out.push(Outgoing::Cast {
                    topic: neutrino_rpc::topics::L3_AGENT,
                    host: h,
                    method: methods::ROUTERS_UPDATED,
                    args: json!({"routers": [d.get("id")]}),
                });
            }
        }
        ("floatingip", _) => {
            for r in [d.get("router_id"), d.get("_previous_router_id")].into_iter().flatten().filter_map(Value::as_str)
            {
                for h in l3_hosts(store, r).await? {
                    out.push(Outgoing::Cast {
                        topic: neutrino_rpc::topics::L3_AGENT,
                        host: h,
                        method: methods::ROUTERS_UPDATED,
                        args: json!({"routers": [r]}),
                    });
                }
            }
        }
        ("l3_router_hosted", action) => {
            let (method, args) = if action == Action::Delete {
                (methods::ROUTER_REMOVED, json!({"router_id": d.get("router_id")}))
            } else {
                (methods::ROUTERS_UPDATED, json!({"routers": [d.get("router_id")]}))
            };
            out.push(Outgoing::Cast { topic: neutrino_rpc::topics::L3_AGENT, host: s(d, "host").into(), method, args });
        }
        _ => {}
    }
    Ok(out)
}

async fn l3_hosts(store: &neutrino_store::Store, router_id: &str) -> Result<Vec<String>, Ml2Error> {
    let mut hosts = vec![];
    for id in store.hosts_of(neutrino_store::scheduling::ROUTER_L3, router_id).await? {
        if let Some(a) = store.get(&AGENTS, &id).await? {
            hosts.push(s(&a, "host").to_string());
        }
    }
    Ok(hosts)
}
