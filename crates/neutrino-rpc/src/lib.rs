//! neutrino-rpc (under construction).
