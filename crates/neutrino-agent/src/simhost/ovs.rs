//! A private Open vSwitch instance (ovsdb-server + ovs-vswitchd) running in a
//! namespace with its own run/db/log directory, so several simulated
//! hypervisors coexist and nothing touches `/var/run/openvswitch`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd::{Cmd, Output};
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::openflow::Ofctl;
use crate::ovsdb::{Client, Endpoint};

use super::cleanup::RunState;

/// Default location of the Open_vSwitch schema (Debian's openvswitch-common).
pub const DEFAULT_SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// A running private OVS instance.
#[derive(Debug)]
pub struct OvsInstance {
    netns: Netns,
    dir: PathBuf,
    run: Arc<RunState>,
}

fn read_pid(path: &Path) -> Result<i32> {
    let s = std::fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    s.trim().parse().map_err(|_| Error::parse("pid file", s))
}

impl OvsInstance {
    /// Creates the database (if missing) and starts ovsdb-server and
    /// ovs-vswitchd inside `netns`, with everything under `dir`.
    pub async fn start(netns: &Netns, dir: &Path, schema: &Path, run: Arc<RunState>) -> Result<OvsInstance> {
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        let inst = OvsInstance { netns: netns.clone(), dir: dir.to_path_buf(), run };
        let db = inst.dir.join("conf.db");
        if !db.exists() {
            Cmd::new("ovsdb-tool").arg("create").arg(&db).arg(schema).run().await?;
        }
        inst.start_ovsdb().await?;
        let client = Client::connect(inst.endpoint()).await?;
        client.init_db().await?;
        drop(client);
        inst.start_vswitchd().await?;
        tracing::info!(
            netns = %netns.name(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "private OVS instance started"
        );
        Ok(inst)
    }

    fn daemon(&self, program: &str) -> Cmd {
        let d = self.dir.display().to_string();
        self.netns.cmd(&[program]).env("OVS_RUNDIR", &d).env("OVS_DBDIR", &d).env("OVS_LOGDIR", &d)
    }

    /// Starts ovsdb-server (again, e.g. after [`OvsInstance::stop_ovsdb`]).
    pub async fn start_ovsdb(&self) -> Result<()> {
        let d = &self.dir;
        self.daemon("ovsdb-server")
            .arg(d.join("conf.db"))
            .arg(format!("--remote=punix:{}", d.join("db.sock").display()))
            .arg(format!("--pidfile={}", d.join("ovsdb-server.pid").display()))
            .arg(format!("--unixctl={}", d.join("ovsdb-server.ctl").display()))
            .arg(format!("--log-file={}", d.join("ovsdb-server.log").display()))
            .args(["-vconsole:off", "--detach", "--no-chdir"])
            .run()
            .await?;
        let pid = read_pid(&d.join("ovsdb-server.pid"))?;
        self.run.track_pid(pid);
        Ok(())
    }

    async fn start_vswitchd(&self) -> Result<()> {
        let d = &self.dir;
        self.daemon("ovs-vswitchd")
            .arg(format!("unix:{}", d.join("db.sock").display()))
            .arg(format!("--pidfile={}", d.join("ovs-vswitchd.pid").display()))
            .arg(format!("--unixctl={}", d.join("ovs-vswitchd.ctl").display()))
            .arg(format!("--log-file={}", d.join("ovs-vswitchd.log").display()))
            .args(["-vconsole:off", "--detach", "--no-chdir"])
            .run()
            .await?;
        let pid = read_pid(&d.join("ovs-vswitchd.pid"))?;
        self.run.track_pid(pid);
        Ok(())
    }

    /// Stops ovsdb-server (SIGTERM, waiting up to 3 s), leaving ovs-vswitchd running.
    pub async fn stop_ovsdb(&self) -> Result<()> {
        let pid = read_pid(&self.dir.join("ovsdb-server.pid"))?;
        // Only signal it if it really is in our namespace.
        if !self.netns.pids().contains(&pid) {
            return Err(Error::NotFound { kind: "ovsdb-server process", name: pid.to_string() });
        }
        // SAFETY: kill(2) on a PID verified to live in our namespace.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while super::cleanup::alive(pid) {
            if Instant::now() > deadline {
                // SAFETY: as above.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.run.untrack_pid(pid);
        let _ = std::fs::remove_file(self.dir.join("db.sock"));
        Ok(())
    }

    /// The namespace the daemons run in.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// The run/db/log directory.
    pub fn rundir(&self) -> &Path {
        &self.dir
    }

    /// The OVSDB endpoint `unix:<rundir>/db.sock`.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::unix(self.dir.join("db.sock"))
    }

    /// `ovs-ofctl` bound to `bridge` of this instance.
    pub fn ofctl(&self, bridge: &str) -> Ofctl {
        Ofctl::for_bridge(&self.dir, bridge)
    }

    /// Runs `ovs-appctl -t <rundir>/ovs-vswitchd.ctl args...`.
    pub async fn appctl(&self, args: &[&str]) -> Result<Output> {
        Cmd::new("ovs-appctl").arg("-t").arg(self.dir.join("ovs-vswitchd.ctl")).args(args.iter().copied()).run().await
    }

    /// Runs `ovs-vsctl --db=unix:<rundir>/db.sock args...` (for debugging and tests).
    pub async fn vsctl(&self, args: &[&str]) -> Result<Output> {
        Cmd::new("ovs-vsctl")
            .arg(format!("--db=unix:{}", self.dir.join("db.sock").display()))
            .arg("--timeout=10")
            .args(args.iter().copied())
            .run()
            .await
    }
}
