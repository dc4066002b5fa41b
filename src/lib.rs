//! Flumen.
