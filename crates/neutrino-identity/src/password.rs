//! Password hashing (bcrypt), off the async threads.
//!
//! Passwords are never logged: functions here take them by reference and no
//! `tracing` call in this crate has a password field.

use crate::{IdentityError, Result};

/// Longest password accepted (Keystone's `max_password_length` default).
pub const MAX_PASSWORD_LENGTH: usize = 4096;

/// Checks a new password's shape (a non-empty string of bounded length).
pub fn check_new(password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(IdentityError::invalid_field("password", "the password must not be empty"));
    }
    if password.len() > MAX_PASSWORD_LENGTH {
        return Err(IdentityError::invalid_field("password", format!("longer than {MAX_PASSWORD_LENGTH} characters")));
    }
    Ok(())
}

/// Hashes a password with bcrypt at the given cost (4..=31).
pub async fn hash(password: &str, cost: u32) -> Result<String> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
        .await
        .map_err(|e| IdentityError::Internal(format!("hashing task: {e}")))?
        .map_err(|e| IdentityError::Internal(format!("bcrypt: {e}")))
}

/// Checks a password against a bcrypt hash; a malformed hash never matches.
pub async fn verify(password: &str, hash: &str) -> bool {
    if hash.is_empty() {
        return false;
    }
    let password = password.to_string();
    let hash = hash.to_string();
    tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false)).await.unwrap_or(false)
}

/// A hash of a random secret, verified against when the user does not exist,
/// so that a failed login costs the same time either way.
pub fn dummy_hash(cost: u32) -> String {
    use rand::Rng;
    let secret: [u8; 16] = rand::thread_rng().gen();
    bcrypt::hash(secret, cost).unwrap_or_default()
}

/// A random password for generated accounts (24 url-safe characters).
pub fn generate() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng().sample_iter(&Alphanumeric).take(24).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let h = hash("s3cret", 4).await.unwrap();
        assert!(h.starts_with("$2"));
        assert!(verify("s3cret", &h).await);
        assert!(!verify("S3cret", &h).await);
        assert!(!verify("s3cret", "not-a-hash").await);
        assert!(!verify("s3cret", "").await);
    }

    #[test]
    fn checks_shape() {
        assert!(check_new("").is_err());
        assert!(check_new(&"x".repeat(MAX_PASSWORD_LENGTH + 1)).is_err());
        assert!(check_new("ok").is_ok());
        assert_eq!(generate().len(), 24);
        assert_ne!(generate(), generate());
    }
}
