//! Sub-command front ends too long to sit in `main.rs`.

pub mod draw;
pub mod eval;
pub mod learn;
pub mod train;
