//! The DHCP agent. (under construction)
