//! oslo.config-style INI files (`neutron.conf`, `ml2_conf.ini`): sections,
//! `key = value`, `#`/`;` comments, indented continuation lines, later files
//! overriding earlier ones. Options nobody asked for can be listed so the
//! operator sees them in the log instead of a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

/// A parsed set of INI files.
#[derive(Debug, Default)]
pub struct Ini {
    sections: BTreeMap<String, BTreeMap<String, String>>,
    read: Mutex<BTreeSet<(String, String)>>,
}

/// A value that does not parse as its option's type.
#[derive(Debug, thiserror::Error)]
#[error("[{section}] {key} = '{value}': {reason}")]
pub struct BadOption {
    /// Section.
    pub section: String,
    /// Key.
    pub key: String,
    /// Raw value.
    pub value: String,
    /// Why.
    pub reason: String,
}

impl Ini {
    /// Parses INI text, adding to (and overriding) what is already loaded.
    pub fn add_text(&mut self, text: &str) {
        let mut section = "DEFAULT".to_string();
        let mut last_key: Option<String> = None;
        for raw in text.lines() {
            let line = raw.trim_end();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(k) = &last_key {
                    if let Some(v) = self.sections.get_mut(&section).and_then(|s| s.get_mut(k)) {
                        if !v.is_empty() {
                            v.push('\n');
                        }
                        v.push_str(trimmed);
                    }
                }
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = name.trim().to_string();
                last_key = None;
                continue;
            }
            let (k, v) = match trimmed.find(['=', ':']) {
                Some(i) => (trimmed[..i].trim(), trimmed[i + 1..].trim()),
                None => (trimmed, ""),
            };
            self.sections.entry(section.clone()).or_default().insert(k.to_string(), v.to_string());
            last_key = Some(k.to_string());
        }
    }

    /// Loads files in order.
    pub fn load(paths: &[impl AsRef<Path>]) -> std::io::Result<Ini> {
        let mut ini = Ini::default();
        for p in paths {
            ini.add_text(&std::fs::read_to_string(p)?);
        }
        Ok(ini)
    }

    /// Parses one text.
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        ini.add_text(text);
        ini
    }

    /// The raw value of an option (`DEFAULT` values apply to every section,
    /// as in oslo.config).
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.read.lock().unwrap().insert((section.to_string(), key.to_string()));
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|s| s.get(key)))
            .map(|s| s.as_str())
    }

    /// A comma-separated list option (empty items dropped).
    pub fn list(&self, section: &str, key: &str) -> Option<Vec<String>> {
        self.get(section, key)
            .map(|v| v.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
    }

    /// A boolean option.
    pub fn bool(&self, section: &str, key: &str) -> Result<Option<bool>, BadOption> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some(true)),
                "false" | "no" | "off" | "0" => Ok(Some(false)),
                _ => Err(self.bad(section, key, v, "not a boolean")),
            },
        }
    }

    /// An integer option.
    pub fn int(&self, section: &str, key: &str) -> Result<Option<i64>, BadOption> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.bad(section, key, v, "not an integer")),
        }
    }

    /// A float option.
    pub fn float(&self, section: &str, key: &str) -> Result<Option<f64>, BadOption> {
        match self.get(section, key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.bad(section, key, v, "not a number")),
        }
    }

    fn bad(&self, section: &str, key: &str, value: &str, reason: &str) -> BadOption {
        BadOption { section: section.into(), key: key.into(), value: value.into(), reason: reason.into() }
    }

    /// Options present in the files that no component has read.
    pub fn unread(&self) -> Vec<(String, String)> {
        let read = self.read.lock().unwrap();
        let mut out = vec![];
        for (s, kv) in &self.sections {
            for k in kv.keys() {
                let seen =
                    read.contains(&(s.clone(), k.clone())) || (s == "DEFAULT" && read.iter().any(|(_, rk)| rk == k));
                if !seen {
                    out.push((s.clone(), k.clone()));
                }
            }
        }
        out
    }

    /// Section names present.
    pub fn sections(&self) -> impl Iterator<Item = &String> {
        self.sections.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_neutron_style_files() {
        let ini = Ini::parse(
            "[DEFAULT]\ncore_plugin = ml2\n# comment\n[ml2]\ntype_drivers = flat,vlan, vxlan\ntenant_network_types = vxlan\n[ml2_type_vlan]\nnetwork_vlan_ranges = physnet1:100:199,\n   physnet2\n",
        );
        assert_eq!(ini.list("ml2", "type_drivers").unwrap(), vec!["flat", "vlan", "vxlan"]);
        assert_eq!(ini.list("ml2_type_vlan", "network_vlan_ranges").unwrap(), vec!["physnet1:100:199", "physnet2"]);
        assert_eq!(ini.get("ml2", "core_plugin"), Some("ml2"));
        let unread = ini.unread();
        assert!(unread.contains(&("ml2".into(), "tenant_network_types".into())));
    }
}
