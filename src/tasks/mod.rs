//! Code specific to one task, kept out of the generic modules: today the
//! bundled skill task ([`skill`]).

pub mod skill;
