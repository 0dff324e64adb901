//! Simulated hosts leave nothing behind: not on panic, not on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neutrino_agent::netns::Netns;
use neutrino_agent::simhost::{SimConfig, SimNet, VmSpec};

const VICTIM_ENV: &str = "NEUTRINO_SIM_VICTIM_PREFIX";

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !matches!(s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z') | None))
        .unwrap_or(false)
}

fn all_pids(prefix: &str) -> Vec<i32> {
    Netns::list_prefixed(prefix).iter().flat_map(|n| Netns::new(n.as_str()).pids()).collect()
}

async fn build(cfg: SimConfig) -> (SimNet, neutrino_agent::simhost::SimHost, neutrino_agent::simhost::SimVm) {
    let sim = SimNet::new(cfg).await.unwrap();
    let h = sim.add_host("h1").await.unwrap();
    h.layout().ensure_int_bridge(h.ovsdb()).await.unwrap();
    let vm = h.add_vm(&VmSpec::new("v1", "fa:16:3e:00:00:01").cidr("10.0.0.1/24")).await.unwrap();
    (sim, h, vm)
}

#[test]
fn cleanup_on_panic() {
    require_sim!();
    let cfg = SimConfig::new();
    let prefix = cfg.prefix.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let p2 = prefix.clone();
    let r = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let (_sim, _h, _vm) = build(cfg).await;
            assert_eq!(Netns::list_prefixed(&p2).len(), 3, "fabric, host, vm");
            *seen2.lock().unwrap() = all_pids(&p2);
            panic!("deliberate panic with a live simulation");
        })
    }));
    assert!(r.is_err());
    common::assert_swept(&prefix);
    let pids = seen.lock().unwrap().clone();
    assert!(pids.len() >= 2, "ovsdb-server and ovs-vswitchd were running: {pids:?}");
    for p in pids {
        assert!(!alive(p), "process {p} survived the panic");
    }
}

#[test]
fn cleanup_on_sigterm() {
    require_sim!();
    let prefix = SimConfig::new().prefix.replacen("nt", "ntsig", 1);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigterm_victim", "--nocapture", "--test-threads=1"])
        .env(VICTIM_ENV, &prefix)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("VICTIM READY") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        neutrino_agent::simhost::sweep(&prefix);
        panic!("victim did not get ready");
    }
    let pids = all_pids(&prefix);
    assert!(pids.len() >= 3, "daemons and the VM's process run: {pids:?}");
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    let status = child.wait().unwrap();
    eprintln!("victim exited with {status:?} {:?} after SIGTERM", t.elapsed());
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "exit through the cleanup handler");
    common::assert_swept(&prefix);
    for p in pids {
        assert!(!alive(p), "process {p} survived SIGTERM of the test");
    }
}

/// Not a test by itself: the process `cleanup_on_sigterm` starts and kills.
#[test]
fn sigterm_victim() {
    let Ok(prefix) = std::env::var(VICTIM_ENV) else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let (_sim, _h, vm) = build(SimConfig::with_prefix(&prefix)).await;
        // A process inside the VM that nobody else would stop (deliberately not waited for).
        #[allow(clippy::zombie_processes)]
        let _orphan = Command::new("ip")
            .args(["netns", "exec", vm.netns.name(), "sleep", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        println!("VICTIM READY");
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}
