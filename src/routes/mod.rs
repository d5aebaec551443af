//! Thin axum handlers grouped by API surface; they call the pipeline and render.

pub mod admin;
pub mod openai;
pub mod ops;
pub mod vector;
