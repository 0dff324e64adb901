//! Leak-proof cleanup of simulated hosts.
//!
//! Every [`super::SimNet`] registers a [`RunState`] here. Its resources are
//! swept — processes in namespaces with the run's prefix killed (TERM, then
//! KILL), the namespaces deleted (taking every veth, bridge and tap inside
//! with them), the work directory removed — when the last handle is dropped
//! (normal end *and* panic unwinding), when [`RunState::sweep`] is called, or
//! when the process receives SIGINT/SIGTERM/SIGHUP (a handler thread sweeps
//! every registered run, then exits). [`sweep`] removes leftovers of a
//! crashed run by prefix.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};

use crate::cmd::Cmd;
use crate::netns::Netns;

/// What one simulation run created.
#[derive(Debug)]
pub struct RunState {
    /// Namespace name prefix of the run.
    pub prefix: String,
    /// Directory with the OVS databases, sockets and logs.
    pub workdir: PathBuf,
    /// Daemon PIDs we started (also found through the namespaces; kept in case a
    /// namespace handle disappeared first).
    pids: Mutex<Vec<i32>>,
    done: AtomicBool,
    keep: bool,
}

static RUNS: Mutex<Vec<Weak<RunState>>> = Mutex::new(Vec::new());
static SIGNALS: Once = Once::new();

impl RunState {
    /// Registers a new run (and, if `signals`, installs the signal handler once per process).
    pub fn register(prefix: &str, workdir: &Path, keep: bool, signals: bool) -> Arc<RunState> {
        if signals {
            install_signal_handler();
        }
        let s = Arc::new(RunState {
            prefix: prefix.to_string(),
            workdir: workdir.to_path_buf(),
            pids: Mutex::new(Vec::new()),
            done: AtomicBool::new(false),
            keep,
        });
        if let Ok(mut r) = RUNS.lock() {
            r.retain(|w| w.strong_count() > 0);
            r.push(Arc::downgrade(&s));
        }
        s
    }

    /// Records a daemon PID to kill at cleanup.
    pub fn track_pid(&self, pid: i32) {
        if let Ok(mut p) = self.pids.lock() {
            p.push(pid);
        }
    }

    /// Forgets a PID (the process was stopped deliberately).
    pub fn untrack_pid(&self, pid: i32) {
        if let Ok(mut p) = self.pids.lock() {
            p.retain(|x| *x != pid);
        }
    }

    /// Kills and deletes everything of the run now (idempotent, blocking).
    pub fn sweep(&self) {
        if self.done.swap(true, Ordering::SeqCst) {
            return;
        }
        if self.keep {
            tracing::warn!(prefix = %self.prefix, workdir = %self.workdir.display(), "keeping simulation (NEUTRINO_SIM_KEEP)");
            return;
        }
        let pids = self.pids.lock().map(|p| p.clone()).unwrap_or_default();
        sweep_with(&self.prefix, Some(&self.workdir), &pids);
    }
}

impl Drop for RunState {
    fn drop(&mut self) {
        self.sweep();
    }
}

fn own_netns_inode() -> Option<(u64, u64)> {
    std::fs::metadata("/proc/self/ns/net").ok().map(|m| (m.dev(), m.ino()))
}

fn pid_netns(pid: i32) -> Option<(u64, u64)> {
    std::fs::metadata(format!("/proc/{pid}/ns/net")).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `pid` is a live (not zombie) process. Daemons that exit are
/// reparented to PID 1, which may reap them late: a zombie counts as gone.
pub(crate) fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !matches!(s.rsplit_once(')').and_then(|(_, r)| r.trim_start().chars().next()), Some('Z' | 'X') | None),
        Err(_) => false,
    }
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: plain kill(2) on a PID we verified lives in one of our namespaces.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Removes every namespace starting with `prefix` and kills the processes in
/// them, then removes `/tmp/<prefix>sim` if present. For leftovers of a crashed
/// run; pick a prefix no concurrent run uses.
pub fn sweep(prefix: &str) {
    let dir = std::env::temp_dir().join(format!("{prefix}sim"));
    sweep_with(prefix, Some(&dir), &[]);
}

fn sweep_with(prefix: &str, workdir: Option<&Path>, extra_pids: &[i32]) {
    if prefix.len() < 2 {
        tracing::error!(prefix, "refusing to sweep with a prefix this short");
        return;
    }
    let started = Instant::now();
    let namespaces = Netns::list_prefixed(prefix);
    let root = own_netns_inode();
    let mut pids: Vec<i32> = Vec::new();
    for n in &namespaces {
        pids.extend(Netns::new(n.as_str()).pids());
    }
    // Tracked PIDs only while they live outside our own namespace (PID reuse guard).
    for p in extra_pids {
        if alive(*p) && pid_netns(*p).is_some() && pid_netns(*p) != root && !pids.contains(p) {
            pids.push(*p);
        }
    }
    let me = std::process::id() as i32;
    pids.retain(|p| *p != me);
    for p in &pids {
        signal(*p, libc::SIGTERM);
    }
    // Short grace: the namespaces are deleted right after, which removes every
    // device a daemon could have left, so a slow graceful exit gains nothing.
    let deadline = Instant::now() + Duration::from_secs(1);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for p in &pids {
        if alive(*p) {
            signal(*p, libc::SIGKILL);
        }
    }
    // A killed daemon is gone only once the kernel has run its exit; until
    // then it may still hold (or, mid-exit, unlink) files in the work directory.
    let deadline = Instant::now() + Duration::from_secs(2);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Retried: on a loaded machine a deletion can race a daemon's last writes.
    for attempt in 0..5 {
        let namespaces = Netns::list_prefixed(prefix);
        if !namespaces.is_empty() {
            let text: String = namespaces.iter().map(|n| format!("netns del {n}\n")).collect();
            let _ = Cmd::new("ip").args(["-force", "-batch", "-"]).stdin(text).run_blocking();
        }
        if let Some(d) = workdir {
            if let Err(e) = std::fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(prefix, attempt, error = %e, "work directory removal failed; retrying");
                }
            }
        }
        if Netns::list_prefixed(prefix).is_empty() && workdir.is_none_or(|d| !d.exists()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50 << attempt));
    }
    let left = Netns::list_prefixed(prefix).len();
    if left > 0 {
        tracing::warn!(prefix, left, "namespaces left after sweep");
    }
    tracing::debug!(
        prefix,
        namespaces = namespaces.len(),
        processes = pids.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulation swept"
    );
}

/// Sweeps every registered run (used by the signal handler).
pub fn sweep_all_registered() {
    let runs: Vec<Arc<RunState>> =
        RUNS.lock().map(|r| r.iter().filter_map(Weak::upgrade).collect()).unwrap_or_default();
    for r in runs {
        r.sweep();
    }
}

fn install_signal_handler() {
    SIGNALS.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(mut signals) => {
                let r = std::thread::Builder::new().name("neutrino-sim-cleanup".into()).spawn(move || {
                    if let Some(sig) = signals.forever().next() {
                        eprintln!("neutrino simhost: signal {sig}, cleaning up simulated hosts");
                        sweep_all_registered();
                        std::process::exit(128 + sig);
                    }
                });
                if let Err(e) = r {
                    tracing::warn!(error = %e, "cannot start the cleanup signal thread");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot install cleanup signal handlers"),
        }
    });
}
