//! Flumen compiler.
