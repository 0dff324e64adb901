//! The Fernet key repository, laid out like Keystone's: a directory of files
//! named by integers, each holding one url-safe base64 Fernet key.
//!
//! * `0` is the **staged** key: not used to encrypt yet, but accepted for
//!   decryption (another server may already have promoted it);
//! * the highest number is the **primary** key, which encrypts new tokens;
//! * the others are **secondary** keys, kept to decrypt tokens issued before
//!   the last rotations.
//!
//! [`KeyRepository::rotate`] promotes the staged key to primary, creates a new
//! staged key and drops the oldest secondaries beyond `max_active_keys`.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use fernet::{Fernet, MultiFernet};

use crate::{IdentityError, Result};

/// A key repository directory.
#[derive(Debug, Clone)]
pub struct KeyRepository {
    dir: PathBuf,
    max_active_keys: usize,
}

fn keys_err(what: &str, path: &Path, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::Keys(format!("{what} {}: {e}", path.display()))
}

impl KeyRepository {
    /// A repository in `dir` keeping at most `max_active_keys` keys
    /// (staged + primary + secondaries; at least 2).
    pub fn new(dir: impl Into<PathBuf>, max_active_keys: usize) -> Self {
        KeyRepository { dir: dir.into(), max_active_keys: max_active_keys.max(2) }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (mode 0700) and, when it holds no key, a staged
    /// and a primary key (what `keystone-manage fernet_setup` does).
    pub fn setup(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| keys_err("creating", &self.dir, e))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| keys_err("securing", &self.dir, e))?;
        if self.keys()?.is_empty() {
            self.write_key(0, &Fernet::generate_key())?;
            self.rotate()?;
            tracing::info!(dir = %self.dir.display(), "created fernet key repository");
        }
        Ok(())
    }

    /// The keys by index (files whose name is not an integer are ignored;
    /// files that do not hold a valid key are an error).
    pub fn keys(&self) -> Result<BTreeMap<u32, String>> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(keys_err("reading", &self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| keys_err("reading", &self.dir, e))?;
            let Some(index) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let path = entry.path();
            let key = std::fs::read_to_string(&path).map_err(|e| keys_err("reading", &path, e))?.trim().to_string();
            if Fernet::new(&key).is_none() {
                return Err(keys_err("invalid fernet key in", &path, "not 32 base64 bytes"));
            }
            out.insert(index, key);
        }
        Ok(out)
    }

    fn write_key(&self, index: u32, key: &str) -> Result<()> {
        let path = self.dir.join(index.to_string());
        let tmp = self.dir.join(format!(".{index}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| keys_err("writing", &tmp, e))?;
        f.write_all(key.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| keys_err("writing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| keys_err("renaming", &path, e))
    }

    /// Rotates: the staged key becomes primary (index max+1), a new staged
    /// key is created, and the oldest secondaries beyond `max_active_keys`
    /// are removed. Returns the new primary index.
    pub fn rotate(&self) -> Result<u32> {
        let keys = self.keys()?;
        let staged = match keys.get(&0) {
            Some(k) => k.clone(),
            None => Fernet::generate_key(),
        };
        let primary = keys.keys().next_back().copied().unwrap_or(0) + 1;
        self.write_key(primary, &staged)?;
        self.write_key(0, &Fernet::generate_key())?;
        let mut indexes: Vec<u32> = self.keys()?.into_keys().filter(|i| *i != 0).collect();
        // Total = staged + the others; drop the lowest-numbered secondaries.
        while indexes.len() + 1 > self.max_active_keys {
            let victim = indexes.remove(0);
            let path = self.dir.join(victim.to_string());
            std::fs::remove_file(&path).map_err(|e| keys_err("removing", &path, e))?;
            tracing::info!(index = victim, "removed expired fernet key");
        }
        tracing::info!(primary, "rotated fernet keys");
        Ok(primary)
    }

    /// Loads the keys for use.
    pub fn load(&self) -> Result<Keyring> {
        let keys = self.keys()?;
        let primary = match keys.keys().next_back() {
            Some(p) => *p,
            None => return Err(keys_err("no fernet keys in", &self.dir, "empty")),
        };
        // Primary first (it encrypts), then the others, newest first.
        let fernets: Vec<Fernet> = keys.iter().rev().filter_map(|(_, k)| Fernet::new(k)).collect();
        Ok(Keyring { count: fernets.len(), multi: MultiFernet::new(fernets), primary })
    }
}

/// Loaded keys: encrypts with the primary, decrypts with any.
#[derive(Clone)]
pub struct Keyring {
    multi: MultiFernet,
    primary: u32,
    count: usize,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring(primary={}, keys={})", self.primary, self.count)
    }
}

/// Longest token accepted for decryption (anything longer is not ours).
const MAX_TOKEN_LEN: usize = 8192;

impl Keyring {
    /// The primary key's index.
    pub fn primary(&self) -> u32 {
        self.primary
    }

    /// Encrypts a payload into a token (url-safe base64 without padding, as
    /// Keystone's tokens).
    pub fn encrypt(&self, payload: &[u8]) -> String {
        self.multi.encrypt(payload).trim_end_matches('=').to_string()
    }

    /// Decrypts a token; `None` when no key opens it or it is malformed.
    pub fn decrypt(&self, token: &str) -> Option<Vec<u8>> {
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        {
            return None;
        }
        let mut padded = token.trim_end_matches('=').to_string();
        let pad = (4 - padded.len() % 4) % 4;
        padded.extend(std::iter::repeat_n('=', pad));
        // Cheap shape check before the HMAC work.
        base64::engine::general_purpose::URL_SAFE.decode(padded.as_bytes()).ok()?;
        self.multi.decrypt(&padded).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_rotate_and_expire_keys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path().join("keys"), 3);
        repo.setup().unwrap();
        let k = repo.keys().unwrap();
        assert_eq!(k.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        let mode = std::fs::metadata(dir.path().join("keys/1")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let staged = k[&0].clone();

        let t1 = repo.load().unwrap().encrypt(b"one");
        assert!(!t1.ends_with('='));
        assert_eq!(repo.rotate().unwrap(), 2);
        let k2 = repo.keys().unwrap();
        assert_eq!(k2[&2], staged, "the staged key became primary");
        assert_eq!(repo.load().unwrap().decrypt(&t1).unwrap(), b"one");

        repo.rotate().unwrap();
        let k3 = repo.keys().unwrap();
        assert_eq!(k3.keys().copied().collect::<Vec<_>>(), vec![0, 2, 3]);
        assert!(repo.load().unwrap().decrypt(&t1).is_none(), "key 1 is gone");
        // setup is idempotent
        repo.setup().unwrap();
        assert_eq!(repo.keys().unwrap(), k3);
    }

    #[test]
    fn garbage_tokens_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let repo = KeyRepository::new(dir.path(), 3);
        repo.setup().unwrap();
        let ring = repo.load().unwrap();
        for bad in ["", "abc", "!!!!", &"A".repeat(9000), "gAAAAA"] {
            assert!(ring.decrypt(bad).is_none(), "{bad}");
        }
    }
}
