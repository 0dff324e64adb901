//! The identity service: the store, the options, the Fernet keys.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use neutrino_lib::ini::{BadOption, Ini};
use neutrino_store::{Store, Tx};

use crate::fernet_keys::{KeyRepository, Keyring};
use crate::{IdentityError, Result};

/// How the embedded identity service behaves.
#[derive(Debug, Clone)]
pub struct IdentityOptions {
    /// The public base URL of the identity API (`http://127.0.0.1:5000`),
    /// used in links, version documents and `WWW-Authenticate`.
    pub public_url: String,
    /// The Fernet key repository directory.
    pub key_repository: PathBuf,
    /// Keys kept by rotation (staged + primary + secondaries; Keystone's default 3).
    pub max_active_keys: usize,
    /// Token lifetime (Keystone's `[token] expiration`, default 1 h).
    pub token_expiration: Duration,
    /// bcrypt cost for new password hashes (default 10).
    pub password_hash_cost: u32,
}

impl IdentityOptions {
    /// Defaults with the given public URL and key directory.
    pub fn new(public_url: impl Into<String>, key_repository: impl Into<PathBuf>) -> Self {
        IdentityOptions {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            key_repository: key_repository.into(),
            max_active_keys: 3,
            token_expiration: Duration::from_secs(3600),
            password_hash_cost: 10,
        }
    }

    /// Applies keystone.conf-style options found in `ini`:
    /// `[token] expiration` (seconds), `[fernet_tokens] key_repository` and
    /// `max_active_keys`, `[identity] password_hash_rounds`, and
    /// `[identity] public_endpoint`.
    pub fn apply_ini(&mut self, ini: &Ini) -> std::result::Result<(), BadOption> {
        if let Some(s) = ini.int("token", "expiration")? {
            self.token_expiration = Duration::from_secs(s.max(1) as u64);
        }
        if let Some(dir) = ini.get("fernet_tokens", "key_repository") {
            self.key_repository = PathBuf::from(dir);
        }
        if let Some(n) = ini.int("fernet_tokens", "max_active_keys")? {
            self.max_active_keys = n.max(2) as usize;
        }
        if let Some(n) = ini.int("identity", "password_hash_rounds")? {
            self.password_hash_cost = n.clamp(4, 31) as u32;
        }
        if let Some(url) = ini.get("identity", "public_endpoint") {
            self.public_url = url.trim_end_matches('/').to_string();
        }
        Ok(())
    }
}

/// The embedded Keystone: share it in an `Arc` between the router and
/// [`crate::EmbeddedAuth`].
pub struct IdentityService {
    pub(crate) store: Store,
    pub(crate) options: IdentityOptions,
    keys: KeyRepository,
    keyring: RwLock<Arc<Keyring>>,
    pub(crate) dummy_hash: String,
    generation: Arc<AtomicU64>,
}

/// A write transaction of the identity service: committing it advances the
/// service's [generation](IdentityService::generation), which tells caches
/// of validated tokens that users, scopes, roles or revocations may have
/// changed.
pub(crate) struct WriteTx {
    tx: Tx,
    generation: Arc<AtomicU64>,
}

impl WriteTx {
    /// The connection, for SQL.
    pub(crate) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        self.tx.conn()
    }

    /// Commits, then advances the generation.
    pub(crate) async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl std::fmt::Debug for IdentityService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityService({})", self.options.public_url)
    }
}

impl IdentityService {
    /// Brings the identity tables up to date and opens (creating if needed)
    /// the key repository.
    pub async fn new(store: Store, options: IdentityOptions) -> Result<IdentityService> {
        store.apply_migrations("identity", crate::MIGRATIONS).await?;
        let keys = KeyRepository::new(&options.key_repository, options.max_active_keys);
        keys.setup()?;
        let keyring = keys.load()?;
        let cost = options.password_hash_cost;
        let dummy_hash = tokio::task::spawn_blocking(move || crate::password::dummy_hash(cost))
            .await
            .map_err(|e| IdentityError::Internal(e.to_string()))?;
        Ok(IdentityService {
            store,
            options,
            keys,
            keyring: RwLock::new(Arc::new(keyring)),
            dummy_hash,
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Begins a write transaction (on SQLite, waits for the writer slot).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        Ok(WriteTx { tx: self.store.begin().await?, generation: self.generation.clone() })
    }

    /// A counter advanced by every committed identity write of this process
    /// (and by key reloads). A token validated at generation `g` is known
    /// to validate the same way while the generation is still `g` (before
    /// it expires); writes made by other processes sharing the database are
    /// not seen, so caches must also bound their age.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The options in force.
    pub fn options(&self) -> &IdentityOptions {
        &self.options
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The public base URL (no trailing slash).
    pub fn public_url(&self) -> &str {
        &self.options.public_url
    }

    /// The v3 endpoint URL (`<public>/v3/`).
    pub fn v3_url(&self) -> String {
        format!("{}/v3/", self.options.public_url)
    }

    /// A link to a resource: `<public>/v3/<path>`.
    pub(crate) fn link(&self, path: &str) -> String {
        format!("{}/v3/{path}", self.options.public_url)
    }

    /// The loaded keys.
    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rotates the Fernet keys (see [`KeyRepository::rotate`]) and starts
    /// using the new primary. Returns the new primary index.
    pub fn rotate_keys(&self) -> Result<u32> {
        let primary = self.keys.rotate()?;
        self.reload_keys()?;
        Ok(primary)
    }

    /// Re-reads the key repository (after an external rotation or sync).
    pub fn reload_keys(&self) -> Result<()> {
        let ring = Arc::new(self.keys.load()?);
        match self.keyring.write() {
            Ok(mut k) => *k = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Reads a setting (a small key/value table; bootstrap keeps its state there).
    pub(crate) async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM identity_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|r| crate::db::text(&r, "value")).transpose()
    }

    /// Writes a setting unless it exists; true when this call wrote it.
    pub(crate) async fn insert_setting_if_absent(&self, name: &str, value: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n =
            sqlx::query("INSERT INTO identity_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value)
                .execute(tx.conn())
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Writes a setting.
    pub(crate) async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_conf_style_options() {
        let ini = Ini::parse(
            "[token]\nexpiration = 600\n[fernet_tokens]\nkey_repository = /var/lib/x/keys\nmax_active_keys = 5\n[identity]\npassword_hash_rounds = 12\npublic_endpoint = http://ks.example:5000/\n",
        );
        let mut o = IdentityOptions::new("http://127.0.0.1:5000/", "/tmp/k");
        assert_eq!(o.public_url, "http://127.0.0.1:5000");
        o.apply_ini(&ini).unwrap();
        assert_eq!(o.token_expiration, Duration::from_secs(600));
        assert_eq!(o.key_repository, PathBuf::from("/var/lib/x/keys"));
        assert_eq!(o.max_active_keys, 5);
        assert_eq!(o.password_hash_cost, 12);
        assert_eq!(o.public_url, "http://ks.example:5000");
        assert!(o.apply_ini(&Ini::parse("[token]\nexpiration = soon\n")).is_err());
    }
}
