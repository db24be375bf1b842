//! The replicated state: every change is a [`Command`] applied by [`machine::apply`] in the
//! order a Raft group commits it (see `crate::cluster`); queries read the result ([`queries`]).

pub mod audit_reports;
pub mod command;
pub mod machine;
pub mod queries;

pub use command::{Command, Outcome};
