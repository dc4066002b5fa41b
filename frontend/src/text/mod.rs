//! The text IR: every [`GraphDef`] prints as text ([`std::fmt::Display`]) and parses back
//! ([`std::str::FromStr`]) to an equal graph; [`GraphDef::save`] and [`GraphDef::load`]
//! store that text in a model file.
//!
//! ```
//! use flumen_frontend::{DType, Graph, GraphDef};
//! let g = Graph::new();
//! let x = g.placeholder("x", DType::F32, &[2, 3])?;
//! x.relu()?;
//! let text = g.def().to_string();
//! assert!(text.contains("%relu = relu(%x) : f32[2,3]"));
//! let back: GraphDef = text.parse()?;
//! assert_eq!(back, g.def());
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```
//!
//! # Format
//!
//! ```text
//! # flumen graph v1
//! %x = placeholder() {dtype=f32, shape=[2, 3]} : f32[2,3]
//! %W/initial_value = constant() {value=f32[2,2] [1.0, 2.0, 3.0, 4.0]} : f32[2,2]
//! %W = variable(%W/initial_value) {trainable=true} : f32[2,2]
//! %train = no_op() ^(%W) : bool[]
//! ```
//!
//! One node per line, in id order (so every reference points to an earlier line):
//! `%name = op(%input, ...) {attr=value, ...} ^(%control_input, ...) : dtype[dims]`.
//! Names are `/`-separated segments of `[A-Za-z0-9_.-]`, so `%name` needs no quoting.
//! The attribute braces and the `^(...)` list are omitted when empty. Text from `#` to the
//! end of a line is a comment; blank lines are ignored.
//!
//! Attribute values, printed and parsed only through
//! [`attrs`](crate::op::attrs::attrs) and [`op_from_attrs`](crate::op::attrs::op_from_attrs):
//! - `true` / `false`;
//! - integers in decimal, possibly negative (seeds are `u64` stored as `i64`);
//! - floats as Rust's `{:?}` prints them (`1.0`, `1e-7`, `-0.0`, `inf`, `-inf`, `NaN`),
//!   so they always read back as floats, bit-exactly; a NaN other than the canonical
//!   `f64::NAN` prints its bits, `nan:0x7ff8000000000001`;
//! - integer lists `[1, 2]`, pair lists `[(1, 2), (3, 4)]`, triple lists `[(0, 1, 3)]`
//!   (an empty list `[]` is read as whichever list kind the op expects);
//! - dtypes by name (`f32`, `i64`, `bool`, ...);
//! - tensors as their type and every element in row-major order,
//!   `f32[2,2] [1.0, 2.0, 3.0, 4.0]` (f32 NaNs other than `f32::NAN` print as
//!   `nan:0x7fc00001`).
//!
//! The type after `:` is checked against the type the op's shape rule infers. Dimensions
//! and list entries are limited to `2^31 - 1` in magnitude and element counts must fit in
//! a `usize`, so that no shape rule can overflow on parsed input.
//!
//! Parsing never panics: every problem is a [`GraphError::Parse`] with a 1-based line and
//! column and a message naming it.

mod lex;
mod parse;
mod print;

pub use print::{HEADER, format_attr_value};

use crate::error::{GraphError, Result};
use crate::graph::{Graph, GraphDef};
use std::path::Path;

fn io_error(path: &Path, e: std::io::Error) -> GraphError {
    GraphError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

// `GraphError` is large crate-wide (clippy's `result_large_err` fires on every fallible
// public fn); these return the crate's `Result` like the rest of the API.
#[allow(clippy::result_large_err)]
impl GraphDef {
    /// Write the graph's text IR to `path` (a model file). I/O failures are
    /// [`GraphError::Io`] naming the path.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_string()).map_err(|e| io_error(path, e))
    }

    /// Read a graph saved with [`GraphDef::save`]. I/O failures are [`GraphError::Io`]
    /// naming the path; malformed text is a [`GraphError::Parse`].
    pub fn load(path: impl AsRef<Path>) -> Result<GraphDef> {
        let path = path.as_ref();
        std::fs::read_to_string(path)
            .map_err(|e| io_error(path, e))?
            .parse()
    }
}

#[allow(clippy::result_large_err)]
impl Graph {
    /// Write the graph's text IR to `path` (see [`GraphDef::save`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.with_def(|d| d.save(path))
    }

    /// Read a graph saved with [`Graph::save`] (see [`GraphDef::load`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Graph> {
        GraphDef::load(path).map(Graph::from_def)
    }
}
