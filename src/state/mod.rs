//! The replicated state: every change is a [`Command`] applied by [`machine::apply`] in the
//! order the [`log::CommandLog`] commits it; queries read the result ([`queries`]).
//! Today the log is a local group-commit log on one node; the cluster puts Raft in its place
//! without changing commands, apply, or queries.

pub mod command;
pub mod log;
pub mod machine;
pub mod queries;

pub use command::{Command, Outcome};
pub use log::{CommandLog, CommitError};
