//! Network namespaces (`ip netns`), created idempotently, listed without
//! spawning processes, and used to run commands.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::cmd::{Cmd, Output};
use crate::error::{Error, Result};
use crate::link::IpBatch;

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// A named network namespace (a handle; it may or may not exist).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Netns {
    name: String,
}

fn valid_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 200
        || name.contains('/')
        || name.starts_with('.')
        || name.contains(char::is_whitespace)
    {
        return Err(Error::Invalid(format!("bad namespace name {name:?}")));
    }
    Ok(())
}

impl Netns {
    /// A handle for namespace `name` (nothing is created).
    pub fn new(name: impl Into<String>) -> Netns {
        Netns { name: name.into() }
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_RUN_DIR).join(&self.name)
    }

    /// Whether the namespace exists.
    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Creates the namespace if needed and brings `lo` up. Idempotent.
    pub async fn create(name: impl Into<String>) -> Result<Netns> {
        let ns = Netns::new(name);
        valid_name(&ns.name)?;
        if !ns.exists() {
            let out = Cmd::new("ip").args(["netns", "add", ns.name.as_str()]).output().await?;
            // A concurrent creator may have won the race: fine if it exists now.
            if !out.success && !ns.exists() {
                return Err(Error::Command {
                    command: format!("ip netns add {}", ns.name),
                    status: out.status,
                    stderr: out.stderr,
                });
            }
            tracing::debug!(netns = %ns.name, "namespace created");
        }
        ns.ip().link_up("lo").run().await?;
        Ok(ns)
    }

    /// Creates many namespaces with one `ip -batch` (existing ones are skipped).
    /// `lo` is *not* brought up (do it in each namespace's own batch).
    pub async fn create_many(names: &[String]) -> Result<Vec<Netns>> {
        let mut b = IpBatch::root();
        for n in names {
            valid_name(n)?;
            if !Netns::new(n.as_str()).exists() {
                b.line(format!("netns add {n}"));
            }
        }
        b.run().await?;
        Ok(names.iter().map(|n| Netns::new(n.as_str())).collect())
    }

    /// Deletes the namespace if it exists. Processes still inside keep it alive
    /// in the kernel; see [`Netns::pids`].
    pub async fn delete(&self) -> Result<()> {
        if !self.exists() {
            return Ok(());
        }
        let out = Cmd::new("ip").args(["netns", "del", self.name.as_str()]).output().await?;
        if !out.success && self.exists() {
            return Err(Error::Command {
                command: format!("ip netns del {}", self.name),
                status: out.status,
                stderr: out.stderr,
            });
        }
        tracing::debug!(netns = %self.name, "namespace deleted");
        Ok(())
    }

    /// Deletes many namespaces with one `ip -batch` (missing ones are skipped).
    pub async fn delete_many(names: &[String]) -> Result<()> {
        let mut b = IpBatch::root();
        for n in names {
            if Netns::new(n.as_str()).exists() {
                b.line(format!("netns del {n}"));
            }
        }
        b.run().await
    }

    /// Names of all namespaces (from `/run/netns`).
    pub fn list() -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(NETNS_RUN_DIR)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Names of the namespaces starting with `prefix`.
    pub fn list_prefixed(prefix: &str) -> Vec<String> {
        Self::list().into_iter().filter(|n| n.starts_with(prefix)).collect()
    }

    /// PIDs of processes whose network namespace is this one (like `ip netns pids`).
    pub fn pids(&self) -> Vec<i32> {
        let Ok(target) = std::fs::metadata(self.path()) else {
            return Vec::new();
        };
        let mut pids = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.filter_map(|e| e.ok()) {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else { continue };
                if let Ok(m) = std::fs::metadata(format!("/proc/{pid}/ns/net")) {
                    if m.ino() == target.ino() && m.dev() == target.dev() {
                        pids.push(pid);
                    }
                }
            }
        }
        pids
    }

    /// A command running `argv` inside the namespace (`ip netns exec`).
    pub fn cmd(&self, argv: &[&str]) -> Cmd {
        Cmd::new("ip").args(["netns", "exec", self.name.as_str()]).args(argv.iter().copied())
    }

    /// Runs `argv` inside the namespace; a non-zero exit is an error.
    pub async fn exec(&self, argv: &[&str]) -> Result<Output> {
        self.cmd(argv).run().await
    }

    /// Runs `argv` inside the namespace and returns its output whatever the status.
    pub async fn output(&self, argv: &[&str]) -> Result<Output> {
        self.cmd(argv).output().await
    }

    /// Starts a long-running process inside the namespace (killed when the
    /// handle is dropped).
    pub fn spawn(&self, argv: &[&str]) -> Result<tokio::process::Child> {
        tokio::process::Command::new("ip")
            .args(["netns", "exec", self.name.as_str()])
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::io(format!("spawn {argv:?} in {}", self.name), e))
    }

    /// An `ip -n <ns> -batch` builder for this namespace.
    pub fn ip(&self) -> IpBatch {
        IpBatch::new(Some(&self.name))
    }
}
