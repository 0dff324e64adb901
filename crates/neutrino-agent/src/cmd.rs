//! Running external tools (`ip`, `ovs-ofctl`, `ovsdb-tool`, ...).
//!
//! [`Cmd`] is a small builder over [`tokio::process::Command`] that captures
//! stdout/stderr, optionally feeds stdin, logs at `debug`/`trace`, and turns a
//! non-zero exit into [`Error::Command`]. A blocking variant
//! ([`Cmd::run_blocking`]) exists for cleanup paths (`Drop`, signal handlers)
//! that cannot await.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Exit status as text.
    pub status: String,
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Captured standard output (lossy UTF-8).
    pub stdout: String,
    /// Captured standard error (lossy UTF-8).
    pub stderr: String,
}

/// A command line to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    /// A command running `program`.
    pub fn new(program: impl Into<OsString>) -> Self {
        Cmd { program: program.into(), args: Vec::new(), envs: Vec::new(), stdin: None }
    }

    /// Appends one argument.
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Feeds `data` on the child's stdin.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// The command line as text (for logs and errors).
    pub fn display(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// Runs the command; a non-zero exit is an [`Error::Command`].
    pub async fn run(&self) -> Result<Output> {
        let out = self.output().await?;
        if out.success {
            Ok(out)
        } else {
            Err(Error::Command { command: self.display(), status: out.status, stderr: out.stderr })
        }
    }

    /// Runs the command and returns its output whatever the exit status.
    pub async fn output(&self) -> Result<Output> {
        let started = Instant::now();
        let mut c = tokio::process::Command::new(&self.program);
        c.args(&self.args).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = c.spawn().map_err(|e| Error::io(format!("spawn `{}`", self.display()), e))?;
        if let Some(data) = &self.stdin {
            if let Some(mut sin) = child.stdin.take() {
                // A child that exits early closes its stdin: not an error by itself,
                // its exit status tells what happened.
                if let Err(e) = sin.write_all(data).await {
                    tracing::debug!(cmd = %self.display(), error = %e, "writing stdin failed");
                }
                drop(sin);
            }
        }
        let out = child.wait_with_output().await.map_err(|e| Error::io(format!("wait for `{}`", self.display()), e))?;
        let output = Output {
            success: out.status.success(),
            status: out.status.to_string(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        };
        tracing::debug!(
            cmd = %self.display(),
            ok = output.success,
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "ran command"
        );
        if !output.success {
            tracing::debug!(cmd = %self.display(), stderr = %output.stderr, "command failed");
        }
        Ok(output)
    }

    /// Blocking variant for cleanup paths; returns the output whatever the status.
    pub fn run_blocking(&self) -> Result<Output> {
        let mut c = std::process::Command::new(&self.program);
        c.args(&self.args).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = c.spawn().map_err(|e| Error::io(format!("spawn `{}`", self.display()), e))?;
        if let Some(data) = &self.stdin {
            if let Some(mut sin) = child.stdin.take() {
                use std::io::Write;
                let _ = sin.write_all(data);
            }
        }
        let out = child.wait_with_output().map_err(|e| Error::io(format!("wait for `{}`", self.display()), e))?;
        Ok(Output {
            success: out.status.success(),
            status: out.status.to_string(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Returns true if `program` can be found on `PATH` (or is an existing path).
pub fn which(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}
