//! The flow model (table, priority, cookie, match, actions), rendered to and
//! parsed from `ovs-ofctl` syntax.
//!
//! Flows compare by their rendered text. Because OVS normalises what it is
//! given (`mod_vlan_vid:5` becomes `set_field:4101->vlan_vid` under
//! OpenFlow 1.3, `dl_type=0x0800` becomes `ip`, ...), desired flows are
//! canonicalised through `ovs-ofctl parse-flows` before being compared with a
//! dump (see [`super::Ofctl::canonicalize`]).

use std::fmt;

use crate::error::{Error, Result};

/// The default OpenFlow priority (omitted by OVS when printing).
pub const DEFAULT_PRIORITY: u16 = 32768;

/// One match field: `name=value`, or a bare keyword such as `ip` or `arp`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchField {
    /// Field name or keyword.
    pub name: String,
    /// Value (with optional `/mask`), `None` for keywords.
    pub value: Option<String>,
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// An ordered list of match fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Match(pub Vec<MatchField>);

impl Match {
    /// Matches everything.
    pub fn any() -> Match {
        Match(Vec::new())
    }

    /// Adds `name=value`.
    pub fn field(mut self, name: &str, value: impl fmt::Display) -> Match {
        self.0.push(MatchField { name: name.to_string(), value: Some(value.to_string()) });
        self
    }

    /// Adds a keyword (`ip`, `arp`, `tcp`, ...).
    pub fn proto(mut self, kw: &str) -> Match {
        self.0.push(MatchField { name: kw.to_string(), value: None });
        self
    }

    /// `in_port=<ofport>`.
    pub fn in_port(self, port: u32) -> Match {
        self.field("in_port", port)
    }

    /// `dl_vlan=<vid>` (frames tagged with this VLAN).
    pub fn dl_vlan(self, vid: u16) -> Match {
        self.field("dl_vlan", vid)
    }

    /// `vlan_tci=0x0000/0x1fff` (untagged frames).
    pub fn untagged(self) -> Match {
        self.field("vlan_tci", "0x0000/0x1fff")
    }

    /// `dl_dst=<mac>`.
    pub fn dl_dst(self, mac: &str) -> Match {
        self.field("dl_dst", mac)
    }

    /// `dl_src=<mac>`.
    pub fn dl_src(self, mac: &str) -> Match {
        self.field("dl_src", mac)
    }

    /// `tun_id=<id>`.
    pub fn tun_id(self, id: u64) -> Match {
        self.field("tun_id", format!("{id:#x}"))
    }

    /// Parses `a=b,c,d=e` (no priority).
    pub fn parse(s: &str) -> Match {
        Match(
            split_top_level(s)
                .into_iter()
                .filter(|t| !t.is_empty())
                .map(|t| match t.split_once('=') {
                    Some((n, v)) => MatchField { name: n.trim().to_string(), value: Some(v.trim().to_string()) },
                    None => MatchField { name: t.trim().to_string(), value: None },
                })
                .collect(),
        )
    }

    /// Whether it has no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

/// One action. Variants render exactly as OVS prints them; anything else is [`Action::Raw`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// `output:<port>`
    Output(u32),
    /// `NORMAL` (L2 learning switch, honours access-port tags)
    Normal,
    /// `drop` (an empty action list)
    Drop,
    /// `IN_PORT`
    InPort,
    /// `LOCAL`
    Local,
    /// `resubmit(,<table>)`
    Resubmit(u8),
    /// `goto_table:<table>`
    GotoTable(u8),
    /// `mod_vlan_vid:<vid>` (pushes a tag if the frame has none)
    ModVlanVid(u16),
    /// `strip_vlan`
    StripVlan,
    /// `pop_vlan` (what OVS prints for `strip_vlan` under OpenFlow 1.3)
    PopVlan,
    /// `push_vlan:<ethertype>`
    PushVlan(u16),
    /// `set_tunnel:<id>` (tunnel key / VNI)
    SetTunnel(u64),
    /// `set_field:<value>-><field>`
    SetField {
        /// Value.
        value: String,
        /// Field.
        field: String,
    },
    /// `load:<value>-><dst>`
    Load {
        /// Value.
        value: String,
        /// Destination (e.g. `NXM_NX_TUN_ID[]`).
        dst: String,
    },
    /// `learn(...)` with the inner specification.
    Learn(String),
    /// Any other action, verbatim.
    Raw(String),
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output(p) => write!(f, "output:{p}"),
            Action::Normal => f.write_str("NORMAL"),
            Action::Drop => f.write_str("drop"),
            Action::InPort => f.write_str("IN_PORT"),
            Action::Local => f.write_str("LOCAL"),
            Action::Resubmit(t) => write!(f, "resubmit(,{t})"),
            Action::GotoTable(t) => write!(f, "goto_table:{t}"),
            Action::ModVlanVid(v) => write!(f, "mod_vlan_vid:{v}"),
            Action::StripVlan => f.write_str("strip_vlan"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::PushVlan(e) => write!(f, "push_vlan:{e:#06x}"),
            Action::SetTunnel(id) => write!(f, "set_tunnel:{id:#x}"),
            Action::SetField { value, field } => write!(f, "set_field:{value}->{field}"),
            Action::Load { value, dst } => write!(f, "load:{value}->{dst}"),
            Action::Learn(spec) => write!(f, "learn({spec})"),
            Action::Raw(s) => f.write_str(s),
        }
    }
}

impl Action {
    /// Parses one action as printed by OVS (round-trips: `parse(x).to_string() == x`).
    pub fn parse(s: &str) -> Action {
        let s = s.trim();
        let exact = |a: Action| if a.to_string() == s { a } else { Action::Raw(s.to_string()) };
        match s {
            "NORMAL" => return Action::Normal,
            "drop" => return Action::Drop,
            "IN_PORT" => return Action::InPort,
            "LOCAL" => return Action::Local,
            "strip_vlan" => return Action::StripVlan,
            "pop_vlan" => return Action::PopVlan,
            _ => {}
        }
        if let Some(p) = s.strip_prefix("output:").and_then(|p| p.parse().ok()) {
            return exact(Action::Output(p));
        }
        if let Some(t) = s.strip_prefix("resubmit(,").and_then(|t| t.strip_suffix(')')).and_then(|t| t.parse().ok()) {
            return exact(Action::Resubmit(t));
        }
        if let Some(t) = s.strip_prefix("goto_table:").and_then(|t| t.parse().ok()) {
            return exact(Action::GotoTable(t));
        }
        if let Some(v) = s.strip_prefix("mod_vlan_vid:").and_then(|v| v.parse().ok()) {
            return exact(Action::ModVlanVid(v));
        }
        if let Some(e) = s.strip_prefix("push_vlan:0x").and_then(|e| u16::from_str_radix(e, 16).ok()) {
            return exact(Action::PushVlan(e));
        }
        if let Some(id) = s.strip_prefix("set_tunnel:0x").and_then(|e| u64::from_str_radix(e, 16).ok()) {
            return exact(Action::SetTunnel(id));
        }
        if let Some((v, fld)) = s.strip_prefix("set_field:").and_then(|r| r.split_once("->")) {
            return exact(Action::SetField { value: v.into(), field: fld.into() });
        }
        if let Some((v, d)) = s.strip_prefix("load:").and_then(|r| r.split_once("->")) {
            return exact(Action::Load { value: v.into(), dst: d.into() });
        }
        if let Some(spec) = s.strip_prefix("learn(").and_then(|r| r.strip_suffix(')')) {
            return exact(Action::Learn(spec.into()));
        }
        Action::Raw(s.to_string())
    }
}

/// Renders an action list (`drop` when empty).
pub fn render_actions(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "drop".into();
    }
    actions.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

/// Parses an action list as printed by OVS.
pub fn parse_actions(s: &str) -> Vec<Action> {
    let s = s.trim();
    if s == "drop" || s.is_empty() {
        return vec![Action::Drop];
    }
    split_top_level(s).into_iter().map(Action::parse).collect()
}

/// Splits on commas that are not inside parentheses or brackets.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// An OpenFlow flow entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Table id.
    pub table: u8,
    /// Priority (higher wins).
    pub priority: u16,
    /// Cookie (identifies the owner; sync can be scoped to a cookie).
    pub cookie: u64,
    /// Idle timeout in seconds (0 = none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0 = none).
    pub hard_timeout: u16,
    /// The match.
    pub matches: Match,
    /// The actions, in order.
    pub actions: Vec<Action>,
}

impl Flow {
    /// A flow in `table` at `priority` matching everything, with no actions yet (drop).
    pub fn new(table: u8, priority: u16) -> Flow {
        Flow {
            table,
            priority,
            cookie: 0,
            idle_timeout: 0,
            hard_timeout: 0,
            matches: Match::any(),
            actions: Vec::new(),
        }
    }

    /// Sets the cookie.
    pub fn cookie(mut self, c: u64) -> Flow {
        self.cookie = c;
        self
    }

    /// Sets the match.
    pub fn matching(mut self, m: Match) -> Flow {
        self.matches = m;
        self
    }

    /// Appends an action.
    pub fn action(mut self, a: Action) -> Flow {
        self.actions.push(a);
        self
    }

    /// Sets the actions.
    pub fn actions(mut self, a: Vec<Action>) -> Flow {
        self.actions = a;
        self
    }

    /// Sets the idle timeout.
    pub fn idle_timeout(mut self, s: u16) -> Flow {
        self.idle_timeout = s;
        self
    }

    /// Sets the hard timeout.
    pub fn hard_timeout(mut self, s: u16) -> Flow {
        self.hard_timeout = s;
        self
    }

    /// The match part with table and priority, as used by `delete_strict`
    /// and as the identity of a flow: `table=T,priority=P[,match]`.
    pub fn match_spec(&self) -> String {
        let mut s = format!("table={},priority={}", self.table, self.priority);
        if !self.matches.is_empty() {
            s.push(',');
            s.push_str(&self.matches.to_string());
        }
        s
    }

    /// The flow in `ovs-ofctl add-flow` syntax.
    pub fn render(&self) -> String {
        let mut s = format!("table={},priority={},cookie={:#x}", self.table, self.priority, self.cookie);
        if self.idle_timeout > 0 {
            s.push_str(&format!(",idle_timeout={}", self.idle_timeout));
        }
        if self.hard_timeout > 0 {
            s.push_str(&format!(",hard_timeout={}", self.hard_timeout));
        }
        if !self.matches.is_empty() {
            s.push(',');
            s.push_str(&self.matches.to_string());
        }
        s.push_str(",actions=");
        s.push_str(&render_actions(&self.actions));
        s
    }

    /// Identity of the flow in OpenFlow: table, priority and match.
    pub fn key(&self) -> FlowKey {
        FlowKey { table: self.table, priority: self.priority, matches: self.matches.to_string() }
    }

    /// Whether `other` has the same cookie, timeouts and actions (compared as text).
    pub fn same_content(&self, other: &Flow) -> bool {
        self.cookie == other.cookie
            && self.idle_timeout == other.idle_timeout
            && self.hard_timeout == other.hard_timeout
            && render_actions(&self.actions) == render_actions(&other.actions)
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// The OpenFlow identity of a flow (what `add` replaces and `delete_strict` removes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Table.
    pub table: u8,
    /// Priority.
    pub priority: u16,
    /// Canonical match text.
    pub matches: String,
}

/// A flow with the statistics of a dump.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowStats {
    /// The flow.
    pub flow: Flow,
    /// Seconds since it was installed (or last modified).
    pub duration: f64,
    /// Packets matched.
    pub n_packets: u64,
    /// Bytes matched.
    pub n_bytes: u64,
}

const FLAGS: &[&str] = &["send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts"];

fn parse_num<T: std::str::FromStr>(what: &'static str, s: &str) -> Result<T> {
    s.parse().map_err(|_| Error::parse(what, s))
}

fn parse_u64_auto(what: &'static str, s: &str) -> Result<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).map_err(|_| Error::parse(what, s)),
        None => parse_num(what, s),
    }
}

/// Splits a full match text (`priority=N,...`) into priority and fields.
fn split_priority(m: &str) -> Result<(u16, Match)> {
    let mut priority = DEFAULT_PRIORITY;
    let mut fields = Vec::new();
    for f in Match::parse(m).0 {
        if f.name == "priority" {
            priority = parse_num("priority", f.value.as_deref().unwrap_or(""))?;
        } else {
            fields.push(f);
        }
    }
    Ok((priority, Match(fields)))
}

fn split_actions(line: &str) -> Result<(&str, &str)> {
    let idx = if line.starts_with("actions=") {
        0
    } else {
        line.find(" actions=").map(|i| i + 1).ok_or_else(|| Error::parse("flow (no actions)", line))?
    };
    Ok((line[..idx].trim(), &line[idx + "actions=".len()..]))
}

/// Parses one line of `ovs-ofctl dump-flows` (with or without `--no-stats`).
/// Returns `None` for header and empty lines.
pub fn parse_dump_line(line: &str) -> Result<Option<FlowStats>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with("OFPST_FLOW") || line.starts_with("NXST_FLOW") {
        return Ok(None);
    }
    let (prefix, actions) = split_actions(line)?;
    let mut flow = Flow::new(0, DEFAULT_PRIORITY);
    let mut stats = (0.0, 0u64, 0u64);
    let mut match_text = "";
    for tok in prefix.split_whitespace() {
        if let Some(kv) = tok.strip_suffix(',') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "cookie" => flow.cookie = parse_u64_auto("cookie", v)?,
                "duration" => stats.0 = parse_num("duration", v.trim_end_matches('s'))?,
                "table" => flow.table = parse_num("table", v)?,
                "n_packets" => stats.1 = parse_num("n_packets", v)?,
                "n_bytes" => stats.2 = parse_num("n_bytes", v)?,
                "idle_timeout" => flow.idle_timeout = parse_num("idle_timeout", v)?,
                "hard_timeout" => flow.hard_timeout = parse_num("hard_timeout", v)?,
                _ => {} // idle_age, hard_age, importance, ...
            }
        } else if FLAGS.contains(&tok) {
            // flags are not part of the model
        } else {
            match_text = tok;
        }
    }
    let (priority, m) = split_priority(match_text)?;
    flow.priority = priority;
    flow.matches = m;
    flow.actions = parse_actions(actions);
    Ok(Some(FlowStats { flow, duration: stats.0, n_packets: stats.1, n_bytes: stats.2 }))
}

/// Parses the output of `ovs-ofctl dump-flows`.
pub fn parse_dump(text: &str) -> Result<Vec<FlowStats>> {
    text.lines().filter_map(|l| parse_dump_line(l).transpose()).collect()
}

/// Parses one `OFPT_FLOW_MOD ... ADD ...` line of `ovs-ofctl parse-flows`.
/// Returns `None` for other lines.
pub fn parse_flow_mod_line(line: &str) -> Result<Option<Flow>> {
    let Some(rest) = line.split_once("): ").map(|(_, r)| r) else {
        return Ok(None);
    };
    if !line.starts_with("OFPT_FLOW_MOD") && !line.starts_with("NXT_FLOW_MOD") {
        return Ok(None);
    }
    let Some(rest) = rest.strip_prefix("ADD") else {
        return Err(Error::parse("flow mod (not ADD)", line));
    };
    let (prefix, actions) = split_actions(rest.trim())?;
    let mut flow = Flow::new(0, DEFAULT_PRIORITY);
    let mut match_text = "";
    for tok in prefix.split_whitespace() {
        if let Some((k, v)) = tok.split_once(':').filter(|(k, _)| !k.contains('=')) {
            match k {
                "table" => flow.table = parse_num("table", v)?,
                "cookie" => flow.cookie = parse_u64_auto("cookie", v)?,
                "idle" => flow.idle_timeout = parse_num("idle", v)?,
                "hard" => flow.hard_timeout = parse_num("hard", v)?,
                "pri" => flow.priority = parse_num("priority", v)?,
                _ => {}
            }
        } else if FLAGS.contains(&tok) {
        } else {
            match_text = tok;
        }
    }
    if !match_text.is_empty() {
        let (priority, m) = split_priority(match_text)?;
        flow.priority = priority;
        flow.matches = m;
    }
    flow.actions = parse_actions(actions);
    Ok(Some(flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines() {
        let s = parse_dump_line(" cookie=0x1234, duration=0.012s, table=22, n_packets=3, n_bytes=180, priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x3e9->tun_id,output:5,output:6").unwrap().unwrap();
        assert_eq!(s.flow.cookie, 0x1234);
        assert_eq!(s.flow.table, 22);
        assert_eq!(s.flow.priority, 1);
        assert_eq!(s.n_packets, 3);
        assert_eq!(s.flow.matches.to_string(), "dl_vlan=1");
        assert_eq!(s.flow.actions[0], Action::PopVlan);
        assert_eq!(s.flow.actions[1], Action::SetField { value: "0x3e9".into(), field: "tun_id".into() });
        assert_eq!(s.flow.actions[3], Action::Output(6));

        let s = parse_dump_line(" cookie=0x0, duration=0.012s, table=5, n_packets=0, n_bytes=0, actions=drop")
            .unwrap()
            .unwrap();
        assert_eq!((s.flow.table, s.flow.priority, s.flow.matches.is_empty()), (5, DEFAULT_PRIORITY, true));
        assert_eq!(s.flow.actions, vec![Action::Drop]);

        let s =
            parse_dump_line(" table=6, idle_timeout=50, hard_timeout=100, send_flow_rem tcp,tp_dst=80 actions=drop")
                .unwrap()
                .unwrap();
        assert_eq!((s.flow.idle_timeout, s.flow.hard_timeout), (50, 100));
        assert_eq!(s.flow.matches.to_string(), "tcp,tp_dst=80");

        let s = parse_dump_line(" priority=3,in_port=1,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4102->vlan_vid,goto_table:60").unwrap().unwrap();
        assert_eq!(s.flow.actions[0], Action::PushVlan(0x8100));
        assert_eq!(s.flow.actions[2], Action::GotoTable(60));
        assert!(parse_dump_line("OFPST_FLOW reply (OF1.3) (xid=0x2):").unwrap().is_none());
    }

    #[test]
    fn learn_roundtrip() {
        let a = "learn(table=20,hard_timeout=300,priority=1,cookie=0x77,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],output:OXM_OF_IN_PORT[]),output:1";
        let acts = parse_actions(a);
        assert_eq!(acts.len(), 2);
        assert!(matches!(acts[0], Action::Learn(_)));
        assert_eq!(render_actions(&acts), a);
    }

    #[test]
    fn flow_mod_lines() {
        let f = parse_flow_mod_line(
            "OFPT_FLOW_MOD (OF1.3) (xid=0x2): ADD table:6 tcp,tp_dst=80 idle:50 hard:100 send_flow_rem actions=drop",
        )
        .unwrap()
        .unwrap();
        assert_eq!((f.table, f.priority, f.idle_timeout, f.hard_timeout), (6, DEFAULT_PRIORITY, 50, 100));
        let f =
            parse_flow_mod_line("OFPT_FLOW_MOD (OF1.3) (xid=0x4): ADD priority=0 cookie:0x1234 actions=goto_table:60")
                .unwrap()
                .unwrap();
        assert_eq!((f.table, f.priority, f.cookie), (0, 0, 0x1234));
        let f = parse_flow_mod_line("OFPT_FLOW_MOD (OF1.3) (xid=0x1): ADD table:5 actions=drop").unwrap().unwrap();
        assert_eq!((f.table, f.priority), (5, DEFAULT_PRIORITY));
        assert!(parse_flow_mod_line("chosen protocol: OXM-OpenFlow13").unwrap().is_none());
    }

    #[test]
    fn render() {
        let f = Flow::new(20, 2)
            .cookie(0xab)
            .matching(Match::any().dl_vlan(1).dl_dst("fa:16:3e:00:00:01"))
            .action(Action::StripVlan)
            .action(Action::SetTunnel(1001))
            .action(Action::Output(5));
        assert_eq!(
            f.render(),
            "table=20,priority=2,cookie=0xab,dl_vlan=1,dl_dst=fa:16:3e:00:00:01,actions=strip_vlan,set_tunnel:0x3e9,output:5"
        );
        assert_eq!(f.match_spec(), "table=20,priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:00:01");
        for a in ["output:5", "resubmit(,60)", "mod_vlan_vid:7", "set_tunnel:0x3e9", "NORMAL", "ct(commit,zone=1)"] {
            assert_eq!(Action::parse(a).to_string(), a);
        }
    }
}
