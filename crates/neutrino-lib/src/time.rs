//! Timestamps in the format Neutron shows (`2026-11-24T23:14:38Z`).

use chrono::{SecondsFormat, Utc};

/// The current time as Neutron renders `created_at`/`updated_at`.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Microseconds since the epoch, used to keep insertion order in listings.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}
