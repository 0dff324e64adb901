//! The Open vSwitch L2 agent. (under construction)
