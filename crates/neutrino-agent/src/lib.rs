//! neutrino-agent (under construction).
