//! Cameras: the wire protocol ([`protocol`]), the QUIC endpoint with one actor per camera
//! connection ([`server`]), what happens to a frame between arrival and acknowledgement
//! ([`ingest`]), and the camera simulator ([`simulator`]).

pub mod ingest;
pub mod protocol;
pub mod server;
pub mod simulator;
