//! The real OpenStack clients against `neutrino up` with its embedded
//! Keystone: the `openstack` CLI flow and the openstacksdk flow must pass
//! 100%, authenticating with the openrc `neutrino up` writes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn venv() -> PathBuf {
    PathBuf::from(std::env::var("NEUTRINO_OSC_VENV").unwrap_or_else(|_| "/opt/neutrino-osc".into()))
}

/// `neutrino up` with identity on free ports; returns (child guard, openrc env).
struct Up {
    child: std::process::Child,
    _dir: common::tempdir::Dir,
    env: Vec<(String, String)>,
}

impl Drop for Up {
    fn drop(&mut self) {
        common::unsafe_kill(&mut self.child);
    }
}

fn start() -> Up {
    let dir = common::tempdir::Dir::new();
    let (child, _, _) = common::spawn_up_with_identity(&dir.0, &[]);
    let openrc = dir.0.join("openrc");
    common::wait_for_openrc(&dir.0, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(200));
    let text = std::fs::read_to_string(&openrc).unwrap();
    let env = text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').trim_matches('"').to_string()))
        .collect();
    Up { child, _dir: dir, env }
}

fn last_line(out: &[u8]) -> String {
    String::from_utf8_lossy(out).lines().last().unwrap_or("").to_string()
}

#[test]
fn openstack_cli_and_sdk_flows_pass() {
    let bin = venv().join("bin");
    assert!(
        bin.join("openstack").exists(),
        "python-openstackclient is missing in {} (scripts/test.sh installs it; set NEUTRINO_OSC_VENV)",
        venv().display()
    );
    let up = start();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let cli = Command::new("bash")
        .arg(here.join("run-cli.sh"))
        .envs(up.env.iter().cloned())
        .env("OPENSTACK", bin.join("openstack"))
        .output()
        .unwrap();
    let summary = last_line(&cli.stdout);
    assert!(cli.status.success(), "CLI flow: {summary}\n{}", String::from_utf8_lossy(&cli.stdout));
    assert!(summary.ends_with(" 0 failed") && summary.starts_with("23 passed"), "{summary}");
    let sdk =
        Command::new(bin.join("python")).arg(here.join("sdk_smoke.py")).envs(up.env.iter().cloned()).output().unwrap();
    let summary = last_line(&sdk.stdout);
    assert!(sdk.status.success(), "SDK flow: {summary}\n{}", String::from_utf8_lossy(&sdk.stdout));
    assert!(summary.starts_with("27 passed, 0 failed"), "{summary}");
}
