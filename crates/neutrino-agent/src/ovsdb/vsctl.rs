//! `ovs-vsctl`-like operations on [`Client`] (the role of ovsdbapp's
//! `add_br`, `add_port`, `db_set`), each a single OVSDB transaction:
//! bridges, ports, interfaces and the root row's `external_ids`/`other_config`.

use std::collections::BTreeMap;

use super::client::{inserted_uuid, rows_of, Client};
use super::datum::{Atom, Datum, Row};
use super::monitor::col_str;
use super::ops::{Condition, Mutation, Operation};
use super::vswitch::{BridgeInfo, BridgeSpec, Commit, Interface, InterfaceSpec, PortInfo, PortSpec, INTERFACE_COLUMNS};
use crate::error::{Error, Result};

fn uuid_of(r: &Row) -> String {
    r.get("_uuid").and_then(|d| d.first()).map(|a| a.to_string()).unwrap_or_default()
}

fn map_update_ops(table: &str, cond: Vec<Condition>, column: &str, kv: &BTreeMap<String, String>) -> Vec<Operation> {
    if kv.is_empty() {
        return Vec::new();
    }
    // "insert" does not overwrite existing keys: delete the keys first.
    vec![
        Operation::mutate(
            table,
            cond.clone(),
            vec![Mutation::delete(column, Datum::Set(kv.keys().map(|k| Atom::String(k.clone())).collect()))],
        ),
        Operation::mutate(table, cond, vec![Mutation::insert(column, Datum::string_map(kv))]),
    ]
}

impl Client {
    async fn commit(&self, ops: &[Operation], commit: Commit) -> Result<Vec<serde_json::Value>> {
        match commit {
            Commit::NoWait => self.transact(ops).await,
            Commit::Wait(t) => self.transact_and_wait(ops, t).await,
        }
    }

    /// Creates the `Open_vSwitch` root row if the database has none (`ovs-vsctl init`).
    /// Returns its UUID.
    pub async fn init_db(&self) -> Result<String> {
        let rows = self.select("Open_vSwitch", vec![], &["_uuid"]).await?;
        if let Some(r) = rows.first() {
            return Ok(uuid_of(r));
        }
        let res = self
            .transact(&[
                Operation::wait_absent("Open_vSwitch", vec![]),
                Operation::insert_named("Open_vSwitch", Row::new(), "root"),
            ])
            .await?;
        inserted_uuid(res.get(1)).ok_or_else(|| Error::Protocol("insert without uuid".into()))
    }

    /// Sets keys of `Open_vSwitch.external_ids` (other keys are kept).
    pub async fn set_ovs_external_ids(&self, kv: &BTreeMap<String, String>) -> Result<()> {
        self.transact(&map_update_ops("Open_vSwitch", vec![], "external_ids", kv)).await.map(|_| ())
    }

    /// Sets keys of `Open_vSwitch.other_config` (other keys are kept).
    pub async fn set_ovs_other_config(&self, kv: &BTreeMap<String, String>) -> Result<()> {
        self.transact(&map_update_ops("Open_vSwitch", vec![], "other_config", kv)).await.map(|_| ())
    }

    /// Reads `Open_vSwitch.external_ids`.
    pub async fn ovs_external_ids(&self) -> Result<BTreeMap<String, String>> {
        let rows = self.select("Open_vSwitch", vec![], &["external_ids"]).await?;
        Ok(rows.first().and_then(|r| r.get("external_ids")).map(Datum::to_string_map).unwrap_or_default())
    }

    /// Creates a bridge (with its internal port), or updates the given settings
    /// of an existing one (`--may-exist`). Returns the bridge UUID.
    pub async fn add_bridge(&self, spec: &BridgeSpec, commit: Commit) -> Result<String> {
        let existing = self.find_bridge(&spec.name).await?;
        let cond = vec![Condition::eq("name", spec.name.as_str())];
        let mut settings = Row::new();
        if let Some(d) = spec.datapath_type {
            settings.insert("datapath_type".into(), Datum::scalar(d.as_str()));
        }
        if let Some(f) = spec.fail_mode {
            settings.insert("fail_mode".into(), Datum::scalar(f.as_str()));
        }
        if !spec.protocols.is_empty() {
            settings.insert("protocols".into(), Datum::string_set(spec.protocols.iter().cloned()));
        }
        if let Some(b) = existing {
            let mut ops = Vec::new();
            if !settings.is_empty() {
                ops.push(Operation::update("Bridge", cond.clone(), settings));
            }
            ops.extend(map_update_ops("Bridge", cond.clone(), "other_config", &spec.other_config));
            ops.extend(map_update_ops("Bridge", cond, "external_ids", &spec.external_ids));
            if !ops.is_empty() {
                self.commit(&ops, commit).await?;
            }
            tracing::debug!(bridge = %spec.name, "bridge exists, settings updated");
            return Ok(b.uuid);
        }
        let mut brow = settings;
        brow.insert("name".into(), Datum::scalar(spec.name.as_str()));
        brow.insert("ports".into(), Datum::named_uuid("port"));
        if !spec.other_config.is_empty() {
            brow.insert("other_config".into(), Datum::string_map(&spec.other_config));
        }
        if !spec.external_ids.is_empty() {
            brow.insert("external_ids".into(), Datum::string_map(&spec.external_ids));
        }
        let iface = InterfaceSpec::internal(spec.name.as_str());
        let ops = vec![
            Operation::wait_absent("Bridge", cond),
            Operation::insert_named("Interface", iface.row(), "iface"),
            Operation::insert_named(
                "Port",
                PortSpec::single(iface.clone()).row(vec![Atom::NamedUuid("iface".into())]),
                "port",
            ),
            Operation::insert_named("Bridge", brow, "br"),
            Operation::mutate("Open_vSwitch", vec![], vec![Mutation::insert("bridges", Datum::named_uuid("br"))]),
        ];
        let res = self.commit(&ops, commit).await?;
        tracing::info!(bridge = %spec.name, "bridge created");
        inserted_uuid(res.get(3)).ok_or_else(|| Error::Protocol("bridge insert without uuid".into()))
    }

    /// Looks a bridge up by name.
    pub async fn find_bridge(&self, name: &str) -> Result<Option<BridgeInfo>> {
        let rows = self.select("Bridge", vec![Condition::eq("name", name)], &[]).await?;
        Ok(rows.first().map(BridgeInfo::from_row))
    }

    /// All bridges.
    pub async fn list_bridges(&self) -> Result<Vec<BridgeInfo>> {
        Ok(self.select("Bridge", vec![], &[]).await?.iter().map(BridgeInfo::from_row).collect())
    }

    /// Deletes a bridge (and, by garbage collection, its ports and interfaces).
    /// Returns false if it did not exist (`--if-exists`).
    pub async fn del_bridge(&self, name: &str, commit: Commit) -> Result<bool> {
        let Some(b) = self.find_bridge(name).await? else {
            return Ok(false);
        };
        self.commit(
            &[Operation::mutate("Open_vSwitch", vec![], vec![Mutation::delete("bridges", Datum::uuid(&b.uuid))])],
            commit,
        )
        .await?;
        tracing::info!(bridge = name, "bridge deleted");
        Ok(true)
    }

    /// Adds a port to `bridge`, or, if a port of that name is already on that
    /// bridge, updates its tag and its interfaces' type/options/external_ids
    /// (`--may-exist`). A port of that name on another bridge is an error.
    /// Returns the port UUID.
    pub async fn add_port(&self, bridge: &str, port: &PortSpec, commit: Commit) -> Result<String> {
        self.add_ports(bridge, std::slice::from_ref(port), commit)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Protocol("add_ports returned no uuid".into()))
    }

    /// Adds several ports to `bridge` in one transaction (see [`Client::add_port`]).
    /// Returns the port UUIDs in order.
    pub async fn add_ports(&self, bridge: &str, ports: &[PortSpec], commit: Commit) -> Result<Vec<String>> {
        if ports.is_empty() {
            return Ok(Vec::new());
        }
        let br =
            self.find_bridge(bridge).await?.ok_or_else(|| Error::NotFound { kind: "bridge", name: bridge.into() })?;
        // Which of the ports exist already, and where?
        let existing: BTreeMap<String, PortInfo> = if ports.len() == 1 {
            self.select("Port", vec![Condition::eq("name", ports[0].name.as_str())], &[])
                .await?
                .iter()
                .map(|r| (col_str(r, "name"), PortInfo::from_row(r)))
                .collect()
        } else {
            self.select("Port", vec![], &[])
                .await?
                .iter()
                .map(|r| (col_str(r, "name"), PortInfo::from_row(r)))
                .collect()
        };
        let mut ops = Vec::new();
        // (index in result of the port insert) or the known uuid
        let mut slots: Vec<std::result::Result<usize, String>> = Vec::new();
        let mut new_refs = Vec::new();
        for (pi, p) in ports.iter().enumerate() {
            if let Some(e) = existing.get(&p.name) {
                if !br.ports.contains(&e.uuid) {
                    return Err(Error::AlreadyExists { kind: "port (on another bridge)", name: p.name.clone() });
                }
                let pc = vec![Condition::uuid(&e.uuid)];
                let mut prow = Row::new();
                prow.insert("tag".into(), p.tag.map(|t| Datum::scalar(i64::from(t))).unwrap_or_default());
                ops.push(Operation::update("Port", pc.clone(), prow));
                ops.extend(map_update_ops("Port", pc.clone(), "external_ids", &p.external_ids));
                ops.extend(map_update_ops("Port", pc, "other_config", &p.other_config));
                for i in &p.interfaces {
                    let ic = vec![Condition::eq("name", i.name.as_str())];
                    let mut irow = Row::new();
                    irow.insert("type".into(), Datum::scalar(i.kind.as_str()));
                    if !i.options.is_empty() {
                        irow.insert("options".into(), Datum::string_map(&i.options));
                    }
                    ops.push(Operation::update("Interface", ic.clone(), irow));
                    ops.extend(map_update_ops("Interface", ic, "external_ids", &i.external_ids));
                }
                slots.push(Err(e.uuid.clone()));
                continue;
            }
            let mut refs = Vec::new();
            for (ii, i) in p.interfaces.iter().enumerate() {
                let n = format!("i{pi}_{ii}");
                ops.push(Operation::insert_named("Interface", i.row(), n.clone()));
                refs.push(Atom::NamedUuid(n));
            }
            let pn = format!("p{pi}");
            slots.push(Ok(ops.len()));
            ops.push(Operation::insert_named("Port", p.row(refs), pn.clone()));
            new_refs.push(Atom::NamedUuid(pn));
        }
        let mutate_idx = ops.len();
        if !new_refs.is_empty() {
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::uuid(&br.uuid)],
                vec![Mutation::insert("ports", Datum::Set(new_refs))],
            ));
        }
        let res = self.commit(&ops, commit).await?;
        if mutate_idx < res.len() && res[mutate_idx].get("count").and_then(serde_json::Value::as_i64) == Some(0) {
            return Err(Error::NotFound { kind: "bridge", name: bridge.into() });
        }
        tracing::debug!(bridge, ports = ports.len(), "ports added");
        slots
            .into_iter()
            .map(|s| match s {
                Ok(i) => inserted_uuid(res.get(i)).ok_or_else(|| Error::Protocol("port insert without uuid".into())),
                Err(u) => Ok(u),
            })
            .collect()
    }

    /// Deletes ports by name from whatever bridge holds them. Returns how many existed.
    pub async fn del_ports(&self, names: &[&str], commit: Commit) -> Result<usize> {
        let rows = if names.len() == 1 {
            self.select("Port", vec![Condition::eq("name", names[0])], &["_uuid", "name"]).await?
        } else {
            self.select("Port", vec![], &["_uuid", "name"]).await?
        };
        let uuids: Vec<Atom> = rows
            .iter()
            .filter(|r| names.contains(&col_str(r, "name").as_str()))
            .map(|r| Atom::Uuid(uuid_of(r)))
            .collect();
        if uuids.is_empty() {
            return Ok(0);
        }
        let n = uuids.len();
        let mut ops = Vec::new();
        for u in &uuids {
            ops.push(Operation::mutate(
                "Bridge",
                vec![Condition::includes("ports", Datum::Set(vec![u.clone()]))],
                vec![Mutation::delete("ports", Datum::Set(vec![u.clone()]))],
            ));
        }
        self.commit(&ops, commit).await?;
        tracing::debug!(ports = n, "ports deleted");
        Ok(n)
    }

    /// Deletes one port by name. Returns false if it did not exist.
    pub async fn del_port(&self, name: &str, commit: Commit) -> Result<bool> {
        Ok(self.del_ports(&[name], commit).await? > 0)
    }

    /// Looks a port up by name.
    pub async fn find_port(&self, name: &str) -> Result<Option<PortInfo>> {
        let rows = self.select("Port", vec![Condition::eq("name", name)], &[]).await?;
        Ok(rows.first().map(PortInfo::from_row))
    }

    /// The ports of a bridge.
    pub async fn list_ports(&self, bridge: &str) -> Result<Vec<PortInfo>> {
        let br =
            self.find_bridge(bridge).await?.ok_or_else(|| Error::NotFound { kind: "bridge", name: bridge.into() })?;
        let mut ports: Vec<PortInfo> = self
            .select("Port", vec![], &[])
            .await?
            .iter()
            .map(PortInfo::from_row)
            .filter(|p| br.ports.contains(&p.uuid))
            .collect();
        ports.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ports)
    }

    /// Looks an interface up by name.
    pub async fn find_interface(&self, name: &str) -> Result<Option<Interface>> {
        let mut cols = INTERFACE_COLUMNS.to_vec();
        cols.push("_uuid");
        let rows = self.select("Interface", vec![Condition::eq("name", name)], &cols).await?;
        Ok(rows.first().map(|r| Interface::from_row(&uuid_of(r), r)))
    }

    /// All interfaces.
    pub async fn list_interfaces(&self) -> Result<Vec<Interface>> {
        let mut cols = INTERFACE_COLUMNS.to_vec();
        cols.push("_uuid");
        let rows = self.select("Interface", vec![], &cols).await?;
        Ok(rows.iter().map(|r| Interface::from_row(&uuid_of(r), r)).collect())
    }

    /// The OpenFlow port number of interface `name` (error if unassigned or -1).
    pub async fn ofport(&self, name: &str) -> Result<u32> {
        let i =
            self.find_interface(name).await?.ok_or_else(|| Error::NotFound { kind: "interface", name: name.into() })?;
        i.valid_ofport().ok_or_else(|| {
            Error::Invalid(format!("interface {name} has no valid ofport ({:?}, error {:?})", i.ofport, i.error))
        })
    }

    /// Sets keys of an interface's `external_ids` (others are kept).
    pub async fn set_interface_external_ids(&self, name: &str, kv: &BTreeMap<String, String>) -> Result<()> {
        let ops = map_update_ops("Interface", vec![Condition::eq("name", name)], "external_ids", kv);
        self.transact(&ops).await.map(|_| ())
    }

    /// Sets (or clears) a port's access VLAN.
    pub async fn set_port_tag(&self, name: &str, tag: Option<u16>) -> Result<()> {
        let mut r = Row::new();
        r.insert("tag".into(), tag.map(|t| Datum::scalar(i64::from(t))).unwrap_or_default());
        let res = self.transact(&[Operation::update("Port", vec![Condition::eq("name", name)], r)]).await?;
        if res.first().and_then(|v| v.get("count")).and_then(serde_json::Value::as_i64) == Some(0) {
            return Err(Error::NotFound { kind: "port", name: name.into() });
        }
        Ok(())
    }

    /// Reads rows of any table (escape hatch; columns empty = all).
    pub async fn rows(&self, table: &str, conditions: Vec<Condition>, columns: &[&str]) -> Result<Vec<Row>> {
        let r = self.transact(&[Operation::select(table, conditions, columns)]).await?;
        rows_of(r.first())
    }
}
