//! Flumen runtime.
