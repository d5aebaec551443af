//! The upstream key pool: which keys exist, what state each is in, and which one serves the
//! next attempt. A key is only used through [`pool::KeyPool::pick`]; what happened is
//! reported back through [`pool::KeySlot::settle`].

pub mod health;
pub mod pool;

pub use pool::{KeyPool, KeySlot, KeyState, Kind, Lease, Limits, Only, Pick};
