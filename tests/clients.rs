//! The real OpenStack clients against `neutrino up` with its embedded
//! Keystone: the `openstack` CLI flow and the openstacksdk flow must pass
//! 100%, authenticating with the openrc `neutrino up` writes.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let api = common::free_port();
    let ident = common::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_neutrino"))
        .args(["up", "--state-dir"])
        .arg(&dir.0)
        .args(["--api-bind", &format!("127.0.0.1:{api}"), "--identity-bind", &format!("127.0.0.1:{ident}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let openrc = dir.0.join("openrc");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !openrc.exists() {
        assert!(Instant::now() < deadline, "no openrc written");
        std::thread::sleep(Duration::from_millis(100));
    }
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
