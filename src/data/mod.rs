//! Data sets used by the examples and tests.

pub mod mnist;
