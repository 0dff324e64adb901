//! The L3 agent: routers, SNAT and floating IPs. (under construction)
