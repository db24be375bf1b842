//! alpr-central: a statewide ALPR central repository.
//!
//! Cameras stream frames over QUIC ([`camera`]), plates are recognized with ONNX models
//! ([`recognition`]), every change goes through one command type applied by the state machine
//! ([`state`]) onto a storage engine ([`storage`]), and partner agencies search the history through
//! the policy-enforcing HTTP API ([`api`]). [`node`] wires the pieces into one running node.

pub mod api;
pub mod camera;
pub mod client;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod domain;
pub mod hotlist;
pub mod import;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod recognition;
pub mod retention;
pub mod state;
pub mod storage;
pub mod tls;
pub mod util;
