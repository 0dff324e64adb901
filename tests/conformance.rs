//! Conformance: a fixed, quick subset of OpenStack Tempest's network API
//! suite against `neutrino up --sim-hosts 2` (agents included, so router
//! ports go ACTIVE), on every CI run. The full suite is
//! `scripts/conformance.sh` (see the README).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The subset: networks, subnets, ports, security groups, routers, floating IPs.
const SUBSET: &str = r"^tempest\.api\.network\.(test_networks\.NetworksTest|test_ports\.PortsTestJSON|test_security_groups\.SecGroupTest|test_security_groups_negative\.NegativeSecGroupTest|test_routers\.RoutersTest|test_routers_negative\.RoutersNegativeTest|test_floating_ips\.|admin\.test_routers\.RoutersAdminTest)";

/// Results subdirectory name (the derived one would be the whole regex).
const LABEL: &str = "subset";

fn tempest_venv() -> PathBuf {
    PathBuf::from(std::env::var("TEMPEST_VENV").unwrap_or_else(|_| "/opt/neutrino-tempest".into()))
}

#[test]
fn tempest_network_subset_passes() {
    assert!(
        tempest_venv().join("bin/tempest").exists(),
        "tempest is missing in {} (scripts/test.sh installs it; set TEMPEST_VENV)",
        tempest_venv().display()
    );
    let dir = common::tempdir::Dir::new();
    let outside = format!("nt-out-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let (up, _api, ident) = common::spawn_up_with_identity(
        &dir.0,
        &["--sim-hosts", "2", "--outside-netns", &outside, "--admin-password", "conformance"],
    );
    // Stopped (SIGTERM: it removes its simulated hosts) however the test ends.
    let up = Stop(up, outside.clone());
    common::wait_for_openrc(&dir.0, Duration::from_secs(120));
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let work = common::tempdir::Dir::new();
    let out = Command::new("bash")
        .arg(here.join("run-tempest.sh"))
        .args([&format!("http://127.0.0.1:{ident}/v3"), "admin", "conformance", SUBSET])
        .env("TEMPEST_VENV", tempest_venv())
        .env("REFSTACK", &work.0)
        .env("TEMPEST_WS", work.0.join("ws"))
        .env("NETWORK_BUILD_TIMEOUT", "60")
        .env("LABEL", LABEL)
        .output()
        .unwrap();
    drop(up);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("").to_string();
    let failed =
        std::fs::read_to_string(work.0.join("ws/results").join(LABEL).join("fail-reasons.txt")).unwrap_or_default();
    let nums: Vec<u64> = last.split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse().ok()).collect();
    assert_eq!(nums.len(), 3, "unexpected summary '{last}'\n{}", String::from_utf8_lossy(&out.stderr));
    let (passed, failures, skipped) = (nums[0], nums[1], nums[2]);
    assert_eq!(failures, 0, "Tempest failures:\n{failed}");
    // Every test the subset selects ran and passed or was skipped (85 tests
    // with Tempest 47; skips only for extensions neutrino does not list).
    let selected = std::fs::read_to_string(work.0.join("ws/results").join(LABEL).join("all-tests.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    assert!(selected >= 80, "the subset selects {selected} tests: {last}");
    assert_eq!(passed + skipped, selected, "tests neither passed nor skipped: {last}");
    assert!(skipped <= 5, "too many skipped: {last}\n{}", stdout);
}

struct Stop(std::process::Child, String);

impl Drop for Stop {
    fn drop(&mut self) {
        common::unsafe_kill(&mut self.0);
        // `up` removes its outside namespace when it stops; not if it had to be killed.
        if std::path::Path::new("/run/netns").join(&self.1).exists() {
            let _ = Command::new("ip").args(["netns", "delete", &self.1]).status();
        }
    }
}
