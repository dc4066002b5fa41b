//! The models of the seed documents (MODELS.md), each expressed as Flumen graphs plus the
//! plain-Rust parts around them (environments, data generators, replay buffers), one module per
//! model. Examples (`examples/`) and tests (`tests/`) drive them.

pub mod a2c;
pub mod cartpole;
pub mod pic;
pub mod quantiles;
pub mod rce;
pub mod realm;
pub mod routing;
