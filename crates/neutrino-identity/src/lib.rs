//! neutrino-identity (under construction).
