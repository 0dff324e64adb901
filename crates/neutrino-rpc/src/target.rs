//! Where a message goes: a topic, optionally one server on it, optionally every server.

use std::fmt;

/// The destination of a `cast` or `call`, as in oslo.messaging.
///
/// * `Target::topic("q-plugin")`: one of the servers consuming the topic
///   (competing consumers on the shared queue `q-plugin`);
/// * `Target::topic("dhcp_agent").server("host-1")`: the server `host-1` only
///   (its direct queue `dhcp_agent.host-1`);
/// * `Target::topic("q-agent-notifier-port-update").fanout()`: every server
///   listening on the topic (the fanout exchange `q-agent-notifier-port-update_fanout`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The topic (the name of the service interface, e.g. `q-plugin`).
    pub topic: String,
    /// A server (host) on the topic; `None` means "any one of them".
    pub server: Option<String>,
    /// Deliver to every server on the topic (casts only; `server` is ignored).
    pub fanout: bool,
    /// The API version the caller speaks (e.g. `"1.5"`), passed to handlers.
    pub version: Option<String>,
}

impl Target {
    /// Any one server of `topic`.
    pub fn topic(topic: impl Into<String>) -> Self {
        Target { topic: topic.into(), server: None, fanout: false, version: None }
    }

    /// Only the named server of this topic.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// Every server of this topic.
    pub fn fanout(mut self) -> Self {
        self.fanout = true;
        self
    }

    /// Tag messages with the API version of the interface.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Checks that the names are usable as AMQP queue names and routing keys.
    pub fn validate(&self) -> Result<(), crate::RpcError> {
        validate_name("topic", &self.topic)?;
        if let Some(s) = &self.server {
            validate_name("server", s)?;
        }
        Ok(())
    }

    /// The name of the queue or exchange this target addresses: `topic`,
    /// `topic.server` or `topic_fanout` (for logs and errors).
    pub fn address(&self) -> String {
        if self.fanout {
            crate::topics::fanout_exchange(&self.topic)
        } else if let Some(s) = &self.server {
            crate::topics::server_queue(&self.topic, s)
        } else {
            self.topic.clone()
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// Validates a topic or server name: non-empty, at most 200 bytes (queue
/// names are limited to 255), no whitespace or control characters.
pub(crate) fn validate_name(what: &str, name: &str) -> Result<(), crate::RpcError> {
    if name.is_empty() {
        return Err(crate::RpcError::InvalidTarget(format!("empty {what}")));
    }
    if name.len() > 200 {
        return Err(crate::RpcError::InvalidTarget(format!("{what} longer than 200 bytes")));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(crate::RpcError::InvalidTarget(format!(
            "{what} {name:?} contains whitespace or control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(Target::topic("q-plugin").address(), "q-plugin");
        assert_eq!(Target::topic("dhcp_agent").server("h1").address(), "dhcp_agent.h1");
        assert_eq!(Target::topic("t").server("h1").fanout().address(), "t_fanout");
    }

    #[test]
    fn validation() {
        assert!(Target::topic("").validate().is_err());
        assert!(Target::topic("a b").validate().is_err());
        assert!(Target::topic("a").server("").validate().is_err());
        assert!(Target::topic("a").server("h-1.example").validate().is_ok());
    }
}
