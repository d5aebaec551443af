//! The request pipeline: plain async steps called in order from one function per endpoint
//! (snapshot → authenticate → read body → translate → dispatch across keys → relay),
//! readable top to bottom. HTTP plumbing that is the same for every route stays in `app.rs`.

pub mod auth;
pub mod body;
pub mod chat;
pub mod complete;
pub mod dispatch;
pub mod embeddings;
pub mod native;
pub mod wait;
