//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use neutrino_agent::netns::Netns;
use neutrino_agent::simhost::{SimConfig, SimNet};

/// Skips the test (returns from it) with a clear message when simulated hosts
/// cannot run here (not root, Open vSwitch or iproute2 missing).
#[macro_export]
macro_rules! require_sim {
    () => {
        common::init_tracing();
        if let Some(reason) = neutrino_agent::simhost::unavailable_reason() {
            common::cannot_run(&format!("{}: {}", module_path!(), reason));
            return;
        }
    };
}

/// Logs to stderr according to RUST_LOG (default: warnings).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A fresh simulation with a random prefix.
pub async fn sim() -> SimNet {
    SimNet::new(SimConfig::new()).await.expect("simulation fabric")
}

/// Asserts that nothing with `prefix` is left (namespaces, work directory).
pub fn assert_swept(prefix: &str) {
    let left = Netns::list_prefixed(prefix);
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let dir = std::env::temp_dir().join(format!("{prefix}sim"));
    assert!(!dir.exists(), "work directory {} left behind", dir.display());
}

/// Waits until `f` returns true, polling every 20 ms, at most `t`.
pub async fn eventually<F, Fut>(t: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + t;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A test that cannot run on this machine says why; under CI (`CI=true`)
/// that is a failure, never a pass.
pub fn cannot_run(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("this test cannot run here, and CI requires it: {why}");
    }
    eprintln!("SKIP: {why}");
}
