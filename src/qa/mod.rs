//! QA tools: what a merchant's test stack needs besides the shim, starting with a stand-in
//! for the gateway itself.

pub mod gateway;
pub mod notify;
