//! ML2 and core-plugin configuration, read from Neutron's own files
//! (`neutron.conf`, `ml2_conf.ini`) when given.

use std::collections::BTreeMap;

use neutrino_lib::ini::{BadOption, Ini};

/// A VLAN physical network and its tenant range (none: provider networks only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanRange {
    /// Physical network name.
    pub physnet: String,
    /// Inclusive tenant range.
    pub range: Option<(u32, u32)>,
}

/// What the core plugin is configured with.
#[derive(Debug, Clone)]
pub struct Ml2Config {
    /// `[ml2] type_drivers`.
    pub type_drivers: Vec<String>,
    /// `[ml2] tenant_network_types`, in order of preference.
    pub tenant_network_types: Vec<String>,
    /// `[ml2] mechanism_drivers`.
    pub mechanism_drivers: Vec<String>,
    /// `[ml2] extension_drivers`.
    pub extension_drivers: Vec<String>,
    /// `[ml2_type_flat] flat_networks` (`*` allows any).
    pub flat_networks: Vec<String>,
    /// `[ml2_type_vlan] network_vlan_ranges`.
    pub vlan_ranges: Vec<VlanRange>,
    /// `[ml2_type_vxlan] vni_ranges`.
    pub vxlan_ranges: Vec<(u32, u32)>,
    /// `[ml2_type_gre] tunnel_id_ranges`.
    pub gre_ranges: Vec<(u32, u32)>,
    /// `[ml2_type_geneve] vni_ranges`.
    pub geneve_ranges: Vec<(u32, u32)>,
    /// `[ml2_type_geneve] max_header_size`.
    pub geneve_max_header_size: u32,
    /// `[DEFAULT] global_physnet_mtu`.
    pub global_physnet_mtu: u32,
    /// `[ml2] path_mtu` (0: use global_physnet_mtu).
    pub path_mtu: u32,
    /// `[ml2] physical_network_mtus`.
    pub physical_network_mtus: BTreeMap<String, u32>,
    /// `[DEFAULT] base_mac`: the first three octets used for generated MACs
    /// (the fourth too when not "00").
    pub base_mac: [u8; 6],
    /// How many leading octets of base_mac are fixed.
    pub base_mac_fixed: usize,
    /// `[DEFAULT] max_dns_nameservers`.
    pub max_dns_nameservers: usize,
    /// `[DEFAULT] max_subnet_host_routes`.
    pub max_subnet_host_routes: usize,
    /// `[DEFAULT] max_allowed_address_pair`.
    pub max_allowed_address_pair: usize,
    /// `[DEFAULT] dns_domain`.
    pub dns_domain: String,
    /// `[DEFAULT] ipv6_pd_enabled`.
    pub ipv6_pd_enabled: bool,
    /// `[quotas] quota_*` defaults (resource → limit).
    pub quota_defaults: BTreeMap<String, i64>,
    /// `[DEFAULT] agent_down_time` in seconds.
    pub agent_down_time: u64,
    /// `[DEFAULT] default_availability_zones`.
    pub default_availability_zones: Vec<String>,
    /// `[DEFAULT] dhcp_agents_per_network`.
    pub dhcp_agents_per_network: usize,
}

impl Default for Ml2Config {
    /// neutrino's standalone defaults: every type driver, tenant networks on
    /// VXLAN, a `physnet1` usable for flat and VLAN 100–199 networks.
    fn default() -> Self {
        Ml2Config {
            type_drivers: ["local", "flat", "vlan", "gre", "vxlan", "geneve"].map(String::from).to_vec(),
            tenant_network_types: vec!["vxlan".into()],
            mechanism_drivers: vec!["openvswitch".into()],
            extension_drivers: vec!["port_security".into(), "dns_domain_ports".into()],
            flat_networks: vec!["*".into()],
            vlan_ranges: vec![VlanRange { physnet: "physnet1".into(), range: Some((100, 199)) }],
            vxlan_ranges: vec![(1, 1000)],
            gre_ranges: vec![(1, 1000)],
            geneve_ranges: vec![(1, 1000)],
            geneve_max_header_size: 38,
            global_physnet_mtu: 1500,
            path_mtu: 0,
            physical_network_mtus: BTreeMap::new(),
            base_mac: [0xfa, 0x16, 0x3e, 0, 0, 0],
            base_mac_fixed: 3,
            max_dns_nameservers: 5,
            max_subnet_host_routes: 20,
            max_allowed_address_pair: 10,
            dns_domain: "openstacklocal.".into(),
            ipv6_pd_enabled: false,
            quota_defaults: neutrino_lib::defs::quota::DEFAULTS.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            agent_down_time: 75,
            default_availability_zones: vec![],
            dhcp_agents_per_network: 1,
        }
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value does not parse.
    #[error(transparent)]
    Bad(#[from] BadOption),
    /// A range is malformed.
    #[error("[{section}] {key}: invalid range '{value}'")]
    Range {
        /// Section.
        section: &'static str,
        /// Key.
        key: &'static str,
        /// Value.
        value: String,
    },
    /// A tenant network type is not a loaded type driver.
    #[error("tenant network type '{0}' is not among type_drivers")]
    TenantType(String),
}

fn parse_ranges(ini: &Ini, section: &'static str, key: &'static str) -> Result<Option<Vec<(u32, u32)>>, ConfigError> {
    let Some(items) = ini.list(section, key) else {
        return Ok(None);
    };
    let mut out = vec![];
    for it in items {
        let bad = || ConfigError::Range { section, key, value: it.clone() };
        let (a, b) = it.split_once(':').ok_or_else(bad)?;
        let a: u32 = a.trim().parse().map_err(|_| bad())?;
        let b: u32 = b.trim().parse().map_err(|_| bad())?;
        if a > b || a == 0 {
            return Err(bad());
        }
        out.push((a, b));
    }
    Ok(Some(out))
}

impl Ml2Config {
    /// Reads the configuration from parsed files over the defaults.
    pub fn from_ini(ini: &Ini) -> Result<Ml2Config, ConfigError> {
        let mut c = Ml2Config::default();
        if let Some(v) = ini.list("ml2", "type_drivers") {
            c.type_drivers = v;
        }
        if let Some(v) = ini.list("ml2", "tenant_network_types") {
            c.tenant_network_types = v;
        }
        if let Some(v) = ini.list("ml2", "mechanism_drivers") {
            c.mechanism_drivers = v;
        }
        if let Some(v) = ini.list("ml2", "extension_drivers") {
            c.extension_drivers = v;
        }
        if let Some(v) = ini.list("ml2_type_flat", "flat_networks") {
            c.flat_networks = v;
        }
        if let Some(items) = ini.list("ml2_type_vlan", "network_vlan_ranges") {
            let mut out = vec![];
            for it in items {
                let parts: Vec<&str> = it.split(':').map(str::trim).collect();
                let bad =
                    || ConfigError::Range { section: "ml2_type_vlan", key: "network_vlan_ranges", value: it.clone() };
                match parts.as_slice() {
                    [p] if !p.is_empty() => out.push(VlanRange { physnet: p.to_string(), range: None }),
                    [p, a, b] => {
                        let a: u32 = a.parse().map_err(|_| bad())?;
                        let b: u32 = b.parse().map_err(|_| bad())?;
                        if a == 0 || b > 4094 || a > b {
                            return Err(bad());
                        }
                        out.push(VlanRange { physnet: p.to_string(), range: Some((a, b)) });
                    }
                    _ => return Err(bad()),
                }
            }
            c.vlan_ranges = out;
        }
        if let Some(v) = parse_ranges(ini, "ml2_type_vxlan", "vni_ranges")? {
            c.vxlan_ranges = v;
        }
        if let Some(v) = parse_ranges(ini, "ml2_type_gre", "tunnel_id_ranges")? {
            c.gre_ranges = v;
        }
        if let Some(v) = parse_ranges(ini, "ml2_type_geneve", "vni_ranges")? {
            c.geneve_ranges = v;
        }
        if let Some(v) = ini.int("ml2_type_geneve", "max_header_size")? {
            c.geneve_max_header_size = v as u32;
        }
        if let Some(v) = ini.int("DEFAULT", "global_physnet_mtu")? {
            c.global_physnet_mtu = v as u32;
        }
        if let Some(v) = ini.int("ml2", "path_mtu")? {
            c.path_mtu = v as u32;
        }
        if let Some(items) = ini.list("ml2", "physical_network_mtus") {
            for it in items {
                if let Some((p, m)) = it.split_once(':') {
                    let m: u32 = m.trim().parse().map_err(|_| ConfigError::Range {
                        section: "ml2",
                        key: "physical_network_mtus",
                        value: it.clone(),
                    })?;
                    c.physical_network_mtus.insert(p.trim().to_string(), m);
                }
            }
        }
        if let Some(v) = ini.get("DEFAULT", "base_mac") {
            if let Some(b) = neutrino_lib::checks::parse_mac(v) {
                c.base_mac = b;
                c.base_mac_fixed = if b[3] != 0 { 4 } else { 3 };
            }
        }
        if let Some(v) = ini.int("DEFAULT", "max_dns_nameservers")? {
            c.max_dns_nameservers = v.max(0) as usize;
        }
        if let Some(v) = ini.int("DEFAULT", "max_subnet_host_routes")? {
            c.max_subnet_host_routes = v.max(0) as usize;
        }
        if let Some(v) = ini.int("DEFAULT", "max_allowed_address_pair")? {
            c.max_allowed_address_pair = v.max(0) as usize;
        }
        if let Some(v) = ini.get("DEFAULT", "dns_domain") {
            c.dns_domain = v.to_string();
        }
        if let Some(v) = ini.bool("DEFAULT", "ipv6_pd_enabled")? {
            c.ipv6_pd_enabled = v;
        }
        if let Some(v) = ini.int("DEFAULT", "agent_down_time")? {
            c.agent_down_time = v.max(1) as u64;
        }
        if let Some(v) = ini.int("DEFAULT", "dhcp_agents_per_network")? {
            c.dhcp_agents_per_network = v.max(1) as usize;
        }
        if let Some(v) = ini.list("DEFAULT", "default_availability_zones") {
            c.default_availability_zones = v;
        }
        for (res, _) in neutrino_lib::defs::quota::DEFAULTS {
            if let Some(v) = ini.int("quotas", &format!("quota_{res}"))? {
                c.quota_defaults.insert(res.to_string(), v);
            }
        }
        if let Some(v) = ini.int("quotas", "default_quota")? {
            for (res, lim) in c.quota_defaults.iter_mut() {
                if ini.get("quotas", &format!("quota_{res}")).is_none() && *lim != -1 {
                    *lim = v;
                }
            }
        }
        for t in &c.tenant_network_types {
            if !c.type_drivers.contains(t) {
                return Err(ConfigError::TenantType(t.clone()));
            }
        }
        Ok(c)
    }

    /// The MTU of a physical network.
    pub fn physnet_mtu(&self, physnet: Option<&str>) -> u32 {
        physnet
            .and_then(|p| self.physical_network_mtus.get(p))
            .copied()
            .unwrap_or(self.global_physnet_mtu)
            .min(self.global_physnet_mtu.max(1))
    }

    /// The underlay MTU tunnels are built on.
    pub fn tunnel_underlay_mtu(&self) -> u32 {
        if self.path_mtu > 0 {
            self.path_mtu.min(self.global_physnet_mtu)
        } else {
            self.global_physnet_mtu
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_ml2_conf() {
        let ini = Ini::parse(
            "[DEFAULT]\nglobal_physnet_mtu = 9000\n[ml2]\ntype_drivers = flat,vlan,vxlan\ntenant_network_types = vxlan,vlan\nmechanism_drivers = openvswitch,l2population\nsome_unknown = 1\n[ml2_type_flat]\nflat_networks = provider\n[ml2_type_vlan]\nnetwork_vlan_ranges = provider:10:20,other\n[ml2_type_vxlan]\nvni_ranges = 100:200\n",
        );
        let c = Ml2Config::from_ini(&ini).unwrap();
        assert_eq!(c.global_physnet_mtu, 9000);
        assert_eq!(c.tenant_network_types, vec!["vxlan", "vlan"]);
        assert_eq!(c.vlan_ranges[0], VlanRange { physnet: "provider".into(), range: Some((10, 20)) });
        assert_eq!(c.vlan_ranges[1].range, None);
        assert_eq!(c.vxlan_ranges, vec![(100, 200)]);
        assert!(ini.unread().contains(&("ml2".into(), "some_unknown".into())));
    }

    #[test]
    fn bad_ranges_are_refused() {
        let ini = Ini::parse("[ml2_type_vlan]\nnetwork_vlan_ranges = p:10:5000\n");
        assert!(Ml2Config::from_ini(&ini).is_err());
        let ini = Ini::parse("[ml2]\ntype_drivers = flat\ntenant_network_types = vxlan\n");
        assert!(Ml2Config::from_ini(&ini).is_err());
    }
}
