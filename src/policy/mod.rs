//! The use policy's rules that are not storage: password hashing and strength, the terms of use
//! users must accept, and session bookkeeping. Where a rule needs state it is enforced through
//! commands; this module holds the checks.

pub mod ownership;
pub mod password;
pub mod sessions;
pub mod terms;
pub mod totp;
