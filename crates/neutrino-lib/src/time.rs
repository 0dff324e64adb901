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

/// Seconds since the epoch rendered as agents' timestamps are
/// (`2026-11-24 23:14:38`).
pub fn format_agent_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}
