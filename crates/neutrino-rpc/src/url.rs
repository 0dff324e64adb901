//! Transport URLs, as Neutron's `[DEFAULT] transport_url`.
//!
//! * `rabbit://user:password@host:port/vhost` — AMQP 0-9-1 on RabbitMQ
//!   (`amqp://` is accepted as a synonym). Several brokers are listed
//!   comma-separated, each with its own credentials, and tried in turn:
//!   `rabbit://u:p@h1:5672,u:p@h2:5672/`. Missing credentials default to the
//!   previous host's, then to `guest:guest`; a missing port to 5672. The
//!   vhost is the percent-decoded path: `/` or nothing means the default
//!   vhost `/`, `/%2F` too, `/neutron` means `neutron`. Query options:
//!   `heartbeat=<seconds>` (0 disables), `connection_timeout=<milliseconds>`.
//!   TLS (`amqps://`, `?ssl=1`) is not supported by this build.
//! * `in-process://` (or `in-process://name`, `inproc://`, `fake://`) — the
//!   in-process bus: every transport built from the same URL in one process
//!   shares the same bus.

use crate::RpcError;
use std::fmt;
use std::time::Duration;

/// Default AMQP port.
pub const DEFAULT_AMQP_PORT: u16 = 5672;

/// A parsed transport URL.
#[derive(Clone, PartialEq, Eq)]
pub enum TransportUrl {
    /// The in-process bus with this name (`""` is the default bus).
    InProcess {
        /// The bus name (the URL's host part).
        name: String,
    },
    /// RabbitMQ.
    Rabbit(RabbitUrl),
}

/// The RabbitMQ part of a transport URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RabbitUrl {
    /// The brokers, tried in order when (re)connecting.
    pub hosts: Vec<BrokerHost>,
    /// The virtual host (`/` by default).
    pub virtual_host: String,
    /// Heartbeat interval requested from the broker, in seconds.
    pub heartbeat: Option<u16>,
    /// TCP + AMQP handshake timeout.
    pub connection_timeout: Option<Duration>,
}

/// One broker of a [`RabbitUrl`].
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerHost {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl TransportUrl {
    /// Parses a transport URL (see the module documentation for formats).
    pub fn parse(url: &str) -> Result<Self, RpcError> {
        let bad = |reason: &str| RpcError::InvalidUrl { url: mask(url), reason: reason.to_string() };
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| bad("missing scheme (expected rabbit:// or in-process://)"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "in-process" | "inproc" | "fake" => {
                let name = rest.trim_end_matches('/');
                if name.contains(['/', '?', '@']) {
                    return Err(bad("an in-process URL only has a bus name"));
                }
                Ok(TransportUrl::InProcess { name: name.to_string() })
            }
            "rabbit" | "amqp" => parse_rabbit(rest).map(TransportUrl::Rabbit).map_err(|r| bad(&r)),
            "amqps" => Err(bad("TLS is not supported by this build")),
            other => Err(bad(&format!("unsupported transport {other:?}"))),
        }
    }
}

fn parse_rabbit(rest: &str) -> Result<RabbitUrl, String> {
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match main.find('/') {
        Some(i) => (&main[..i], &main[i + 1..]),
        None => (main, ""),
    };
    let mut hosts = Vec::new();
    let (mut user, mut pass) = ("guest".to_string(), "guest".to_string());
    for entry in authority.split(',') {
        let (userinfo, hostport) = match entry.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, entry),
        };
        if let Some(ui) = userinfo {
            let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
            user = percent_decode(u)?;
            pass = percent_decode(p)?;
        }
        let (host, port) = split_host_port(hostport)?;
        hosts.push(BrokerHost {
            host: if host.is_empty() { "localhost".into() } else { host },
            port,
            username: user.clone(),
            password: pass.clone(),
        });
    }
    let vhost = percent_decode(path)?;
    let mut url = RabbitUrl {
        hosts,
        virtual_host: if vhost.is_empty() { "/".into() } else { vhost },
        heartbeat: None,
        connection_timeout: None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "heartbeat" => url.heartbeat = Some(v.parse().map_err(|_| format!("bad heartbeat {v:?}"))?),
            "connection_timeout" => {
                let ms: u64 = v.parse().map_err(|_| format!("bad connection_timeout {v:?}"))?;
                url.connection_timeout = Some(Duration::from_millis(ms));
            }
            "ssl" if !matches!(v, "0" | "false" | "False") => return Err("TLS is not supported by this build".into()),
            _ => tracing::debug!(option = k, "ignoring unknown transport URL option"),
        }
    }
    Ok(url)
}

fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unterminated [IPv6] host")?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(format!("garbage after IPv6 host: {after:?}")),
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_AMQP_PORT,
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
    };
    Ok((percent_decode(host)?, port))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-escape in {s:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} is not UTF-8 once decoded"))
}

/// Masks the passwords of a URL, for logs and errors.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let masked: Vec<String> = authority
        .split(',')
        .map(|entry| match entry.rsplit_once('@') {
            Some((ui, host)) => {
                let user = ui.split_once(':').map(|(u, _)| u).unwrap_or(ui);
                format!("{user}:***@{host}")
            }
            None => entry.to_string(),
        })
        .collect();
    format!("{scheme}://{}{tail}", masked.join(","))
}

impl fmt::Display for TransportUrl {
    /// The URL with passwords masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportUrl::InProcess { name } => write!(f, "in-process://{name}"),
            TransportUrl::Rabbit(r) => write!(f, "{r}"),
        }
    }
}

impl fmt::Debug for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RabbitUrl {
    /// The URL with passwords masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("rabbit://")?;
        for (i, h) in self.hosts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{h}")?;
        }
        let vhost = if self.virtual_host == "/" { "" } else { &self.virtual_host };
        write!(f, "/{vhost}")
    }
}

impl fmt::Debug for RabbitUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for BrokerHost {
    /// `user:***@host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}:***@[{}]:{}", self.username, self.host, self.port)
        } else {
            write!(f, "{}:***@{}:{}", self.username, self.host, self.port)
        }
    }
}

impl fmt::Debug for BrokerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rabbit(url: &str) -> RabbitUrl {
        match TransportUrl::parse(url).unwrap() {
            TransportUrl::Rabbit(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn neutron_default() {
        let r = rabbit("rabbit://guest:guest@127.0.0.1:5672/");
        assert_eq!(r.hosts.len(), 1);
        let h = &r.hosts[0];
        assert_eq!((h.host.as_str(), h.port), ("127.0.0.1", 5672));
        assert_eq!((h.username.as_str(), h.password.as_str()), ("guest", "guest"));
        assert_eq!(r.virtual_host, "/");
        assert_eq!(r.heartbeat, None);
    }

    #[test]
    fn vhosts_ports_and_escapes() {
        assert_eq!(rabbit("rabbit://u:p@h/neutron").virtual_host, "neutron");
        assert_eq!(rabbit("amqp://u:p@h/%2F").virtual_host, "/");
        assert_eq!(rabbit("rabbit://u:p@h").virtual_host, "/");
        assert_eq!(rabbit("rabbit://u:p@h").hosts[0].port, 5672);
        let r = rabbit("rabbit://us%40er:p%3Aw%2Fd@h:1234/v?heartbeat=15&connection_timeout=2500");
        assert_eq!(r.hosts[0].username, "us@er");
        assert_eq!(r.hosts[0].password, "p:w/d");
        assert_eq!(r.hosts[0].port, 1234);
        assert_eq!(r.heartbeat, Some(15));
        assert_eq!(r.connection_timeout, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn several_hosts_and_ipv6() {
        let r = rabbit("rabbit://a:b@h1:5672,h2:5673,c:d@[::1]:5674/");
        let got: Vec<_> =
            r.hosts.iter().map(|h| (h.host.as_str(), h.port, h.username.as_str(), h.password.as_str())).collect();
        assert_eq!(got, vec![("h1", 5672, "a", "b"), ("h2", 5673, "a", "b"), ("::1", 5674, "c", "d")]);
        assert_eq!(r.to_string(), "rabbit://a:***@h1:5672,a:***@h2:5673,c:***@[::1]:5674/");
    }

    #[test]
    fn in_process() {
        for (u, name) in [("in-process://", ""), ("inproc://bus1", "bus1"), ("fake://", ""), ("in-process://x/", "x")] {
            assert_eq!(TransportUrl::parse(u).unwrap(), TransportUrl::InProcess { name: name.into() });
        }
    }

    #[test]
    fn errors_hide_the_password() {
        for u in [
            "rabbit://u:secret@h:notaport/",
            "amqps://u:secret@h/",
            "kafka://u:secret@h/",
            "rabbit://u:secret@h/?ssl=1",
            "rabbit://u:secret@h/%zz",
        ] {
            let e = TransportUrl::parse(u).unwrap_err();
            assert!(matches!(e, RpcError::InvalidUrl { .. }), "{u}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
        assert!(TransportUrl::parse("127.0.0.1:5672").is_err());
        assert_eq!(mask("rabbit://u:pw@h:1/v"), "rabbit://u:***@h:1/v");
    }
}
