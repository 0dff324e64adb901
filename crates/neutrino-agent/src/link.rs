//! Links, addresses and routes through iproute2, batched with `ip -batch`.
//!
//! One `ip` process costs 2–3 ms here; a batch of a hundred lines costs about
//! the same as a few single commands (see the port-wiring timing experiment),
//! so everything that configures several things in one namespace goes through
//! an [`IpBatch`]. The builder methods use the idempotent forms where iproute2
//! has them (`addr replace`, `route replace`, `link set`); creation and
//! deletion are made idempotent by [`ensure_veth`] and [`delete_link`].

use serde_json::Value;

use crate::cmd::Cmd;
use crate::error::{Error, Result};

/// Maximum length of a Linux interface name.
pub const IFNAMSIZ_MAX: usize = 15;

/// Checks an interface name (1..=15 bytes, no `/`, whitespace or `:`).
pub fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > IFNAMSIZ_MAX
        || name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(Error::Invalid(format!("bad interface name {name:?} (1..=15 chars, no '/', ':' or spaces)")));
    }
    Ok(())
}

/// A batch of `ip` commands run in one namespace by one process.
#[derive(Debug, Clone, Default)]
pub struct IpBatch {
    netns: Option<String>,
    lines: Vec<String>,
}

impl IpBatch {
    /// A batch for namespace `netns` (`None` = the caller's namespace).
    pub fn new(netns: Option<&str>) -> IpBatch {
        IpBatch { netns: netns.map(str::to_string), lines: Vec::new() }
    }

    /// A batch run in the caller's namespace (for `netns add/del` lines).
    pub fn root() -> IpBatch {
        IpBatch::new(None)
    }

    /// Appends a raw line (without the leading `ip`).
    pub fn line(&mut self, l: impl Into<String>) -> &mut Self {
        self.lines.push(l.into());
        self
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Creates a veth pair `name` ↔ `peer`; the peer is created directly in
    /// `peer_netns` (so it never appears in the caller's namespace), with
    /// `peer_mac` if given. Both ends get `mtu` if given.
    pub fn veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<&str>,
        peer_mac: Option<&str>,
        mtu: Option<u32>,
    ) -> &mut Self {
        let mut l = format!("link add {name}");
        if let Some(m) = mtu {
            l.push_str(&format!(" mtu {m}"));
        }
        l.push_str(&format!(" type veth peer name {peer}"));
        if let Some(ns) = peer_netns {
            l.push_str(&format!(" netns {ns}"));
        }
        if let Some(mac) = peer_mac {
            l.push_str(&format!(" address {mac}"));
        }
        if let Some(m) = mtu {
            l.push_str(&format!(" mtu {m}"));
        }
        self.line(l)
    }

    /// Creates a Linux bridge.
    pub fn bridge(&mut self, name: &str) -> &mut Self {
        self.line(format!("link add {name} type bridge"))
    }

    /// `link set <name> up`.
    pub fn link_up(&mut self, name: &str) -> &mut Self {
        self.line(format!("link set {name} up"))
    }

    /// `link set <name> down`.
    pub fn link_down(&mut self, name: &str) -> &mut Self {
        self.line(format!("link set {name} down"))
    }

    /// Sets the MAC address.
    pub fn set_mac(&mut self, name: &str, mac: &str) -> &mut Self {
        self.line(format!("link set {name} address {mac}"))
    }

    /// Sets the MTU.
    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> &mut Self {
        self.line(format!("link set {name} mtu {mtu}"))
    }

    /// Moves the link into namespace `netns`.
    pub fn set_netns(&mut self, name: &str, netns: &str) -> &mut Self {
        self.line(format!("link set {name} netns {netns}"))
    }

    /// Enslaves the link to bridge `master`.
    pub fn set_master(&mut self, name: &str, master: &str) -> &mut Self {
        self.line(format!("link set {name} master {master}"))
    }

    /// Renames a (down) link.
    pub fn rename(&mut self, name: &str, new_name: &str) -> &mut Self {
        self.line(format!("link set {name} name {new_name}"))
    }

    /// Adds or keeps an address (`addr replace <cidr> dev <dev>`).
    pub fn addr_replace(&mut self, dev: &str, cidr: &str) -> &mut Self {
        self.line(format!("addr replace {cidr} dev {dev}"))
    }

    /// Removes all addresses of a link.
    pub fn addr_flush(&mut self, dev: &str) -> &mut Self {
        self.line(format!("addr flush dev {dev}"))
    }

    /// Adds or updates a route (`route replace <dst> [via <gw>] [dev <dev>]`).
    pub fn route_replace(&mut self, dst: &str, via: Option<&str>, dev: Option<&str>) -> &mut Self {
        let mut l = format!("route replace {dst}");
        if let Some(g) = via {
            l.push_str(&format!(" via {g}"));
        }
        if let Some(d) = dev {
            l.push_str(&format!(" dev {d}"));
        }
        self.line(l)
    }

    /// Deletes a link (fails if missing; see [`delete_link`] for the idempotent form).
    pub fn link_del(&mut self, name: &str) -> &mut Self {
        self.line(format!("link del {name}"))
    }

    /// Runs the batch (`ip [-n ns] -batch -`). Nothing to do is success.
    pub async fn run(&self) -> Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let mut text = self.lines.join("\n");
        text.push('\n');
        let mut c = Cmd::new("ip");
        if let Some(ns) = &self.netns {
            c = c.args(["-n", ns.as_str()]);
        }
        c.args(["-batch", "-"]).stdin(text).run().await?;
        tracing::trace!(netns = ?self.netns, lines = self.lines.len(), "ip batch done");
        Ok(())
    }
}

/// A link as reported by `ip -j -d link show`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkInfo {
    /// Interface index.
    pub ifindex: u32,
    /// Name.
    pub name: String,
    /// MAC address.
    pub mac: Option<String>,
    /// MTU.
    pub mtu: u32,
    /// `UP`, `DOWN`, `UNKNOWN`, ...
    pub operstate: String,
    /// Flags such as `UP`, `LOWER_UP`.
    pub flags: Vec<String>,
    /// Bridge it is enslaved to.
    pub master: Option<String>,
    /// Link kind (`veth`, `bridge`, `tun`, ...).
    pub kind: Option<String>,
}

impl LinkInfo {
    fn from_json(v: &Value) -> Option<LinkInfo> {
        Some(LinkInfo {
            ifindex: v.get("ifindex")?.as_u64()? as u32,
            name: v.get("ifname")?.as_str()?.to_string(),
            mac: v.get("address").and_then(Value::as_str).map(str::to_string),
            mtu: v.get("mtu").and_then(Value::as_u64).unwrap_or(0) as u32,
            operstate: v.get("operstate").and_then(Value::as_str).unwrap_or("").to_string(),
            flags: v
                .get("flags")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect())
                .unwrap_or_default(),
            master: v.get("master").and_then(Value::as_str).map(str::to_string),
            kind: v.get("linkinfo").and_then(|l| l.get("info_kind")).and_then(Value::as_str).map(str::to_string),
        })
    }

    /// Whether the link is administratively up.
    pub fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }
}

fn ip_cmd(netns: Option<&str>) -> Cmd {
    let c = Cmd::new("ip");
    match netns {
        Some(ns) => c.args(["-n", ns]),
        None => c,
    }
}

/// All links of a namespace.
pub async fn links(netns: Option<&str>) -> Result<Vec<LinkInfo>> {
    let out = ip_cmd(netns).args(["-j", "-d", "link", "show"]).run().await?;
    let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|_| Error::parse("ip -j link", &out.stdout))?;
    Ok(v.as_array().map(|a| a.iter().filter_map(LinkInfo::from_json).collect()).unwrap_or_default())
}

/// One link by name, if it exists.
pub async fn link(netns: Option<&str>, name: &str) -> Result<Option<LinkInfo>> {
    check_ifname(name)?;
    let out = ip_cmd(netns).args(["-j", "-d", "link", "show", "dev", name]).output().await?;
    if !out.success {
        if out.stderr.contains("does not exist") || out.stderr.contains("Cannot find device") {
            return Ok(None);
        }
        return Err(Error::Command {
            command: format!("ip link show dev {name}"),
            status: out.status,
            stderr: out.stderr,
        });
    }
    let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|_| Error::parse("ip -j link", &out.stdout))?;
    Ok(v.as_array().and_then(|a| a.first()).and_then(LinkInfo::from_json))
}

/// The IPv4/IPv6 addresses (`addr/prefixlen`) of a link.
pub async fn addresses(netns: Option<&str>, dev: &str) -> Result<Vec<String>> {
    let out = ip_cmd(netns).args(["-j", "addr", "show", "dev", dev]).run().await?;
    let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|_| Error::parse("ip -j addr", &out.stdout))?;
    let mut addrs = Vec::new();
    for l in v.as_array().into_iter().flatten() {
        for a in l.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(ip), Some(p)) =
                (a.get("local").and_then(Value::as_str), a.get("prefixlen").and_then(Value::as_u64))
            {
                addrs.push(format!("{ip}/{p}"));
            }
        }
    }
    Ok(addrs)
}

/// Creates a veth pair unless `name` already exists in `netns`. Returns
/// whether it was created. Both ends are brought up.
pub async fn ensure_veth(netns: Option<&str>, name: &str, peer: &str, peer_netns: Option<&str>) -> Result<bool> {
    check_ifname(name)?;
    check_ifname(peer)?;
    if link(netns, name).await?.is_some() {
        return Ok(false);
    }
    let mut b = IpBatch::new(netns);
    b.veth(name, peer, peer_netns, None, None).link_up(name);
    if peer_netns.is_none() || peer_netns == netns {
        b.link_up(peer);
    }
    b.run().await?;
    if let Some(pns) = peer_netns.filter(|p| Some(*p) != netns) {
        IpBatch::new(Some(pns)).link_up(peer).run().await?;
    }
    Ok(true)
}

/// Deletes a link if it exists (a veth takes its peer with it). Returns whether it existed.
pub async fn delete_link(netns: Option<&str>, name: &str) -> Result<bool> {
    check_ifname(name)?;
    let out = ip_cmd(netns).args(["link", "del", name]).output().await?;
    if out.success {
        return Ok(true);
    }
    if out.stderr.contains("Cannot find device") || out.stderr.contains("does not exist") {
        return Ok(false);
    }
    Err(Error::Command { command: format!("ip link del {name}"), status: out.status, stderr: out.stderr })
}
