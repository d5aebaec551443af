//! The request pipeline: the steps after a request is authenticated and parsed, in order —
//! translate, obtain an answer (cache, in-flight sharing, attempts across keys, racing),
//! deliver it (JSON, real or fake stream, keep-alives, in-band errors, mid-stream rescue).

pub mod chat;
pub mod complete;
pub mod dispatch;
pub mod embeddings;
pub mod models;
pub mod native;
pub mod wait;
