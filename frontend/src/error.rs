//! The one error type of Flumen: every fallible call in every crate returns [`Result`].
//!
//! Build errors name the op, the node, the shapes/dtypes involved and what was expected,
//! plus the user's source line (captured with `#[track_caller]`).

use crate::dtype::DType;
use std::fmt;
use std::panic::Location;

/// Result alias used throughout Flumen.
pub type Result<T, E = GraphError> = std::result::Result<T, E>;

/// What went wrong when building a node (the op-specific part of [`GraphError::Build`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BuildError {
    /// Operand shapes are incompatible.
    #[error("shape mismatch: got {}; expected {expected}", fmt_shapes(shapes))]
    ShapeMismatch {
        /// The shapes of the operands involved.
        shapes: Vec<Vec<usize>>,
        /// What the op needed.
        expected: String,
    },
    /// Operand dtypes are incompatible or unsupported.
    #[error("dtype mismatch: got {}; expected {expected}{}", fmt_dtypes(dtypes), hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    DTypeMismatch {
        /// The dtypes of the operands involved.
        dtypes: Vec<DType>,
        /// What the op needed.
        expected: String,
        /// A suggestion, such as inserting a `cast`.
        hint: Option<String>,
    },
    /// An axis is outside `-rank..rank`.
    #[error("axis {axis} is out of range for a tensor of rank {rank} (shape {shape:?}); expected an axis in {}..{rank}", -(*rank as i64))]
    AxisOutOfRange {
        /// The axis given.
        axis: i64,
        /// The rank of the operand.
        rank: usize,
        /// The operand's shape.
        shape: Vec<usize>,
    },
    /// Slice bounds or strides are invalid.
    #[error("bad slice on shape {shape:?}: {msg}")]
    BadSlice {
        /// The sliced shape.
        shape: Vec<usize>,
        /// What is wrong.
        msg: String,
    },
    /// Wrong number of inputs.
    #[error("wrong number of inputs: got {got}, expected {expected}")]
    Arity {
        /// How many were given.
        got: usize,
        /// How many the op takes.
        expected: String,
    },
    /// An attribute value is invalid.
    #[error("invalid attribute: {0}")]
    Attribute(String),
    /// An input belongs to another graph.
    #[error("input `{0}` belongs to another graph")]
    ForeignGraph(String),
    /// A node id does not exist in this graph.
    #[error("no node with id {0} in this graph")]
    UnknownNode(usize),
    /// The name is taken or malformed.
    #[error("{0}")]
    Name(String),
}

fn fmt_shapes(shapes: &[Vec<usize>]) -> String {
    shapes
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn fmt_dtypes(d: &[DType]) -> String {
    d.iter().map(|d| d.name()).collect::<Vec<_>>().join(" and ")
}

/// A source location captured with `#[track_caller]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceLoc(pub &'static Location<'static>);

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.0.file(), self.0.line(), self.0.column())
    }
}

/// Every error Flumen reports.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// Building a node failed.
    #[error("{op} `{node}`: {kind}{}", location.map(|l| format!(" (at {l})")).unwrap_or_default())]
    Build {
        /// The op's name (`add`, `matmul`, ...).
        op: String,
        /// The name the node would have had.
        node: String,
        /// What went wrong.
        kind: BuildError,
        /// Where in the user's code the node was built.
        location: Option<SourceLoc>,
    },
    /// The text IR could not be parsed.
    #[error("parse error at line {line}, column {column}: {msg}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was wrong.
        msg: String,
    },
    /// A feed was missing, of the wrong dtype or shape, or not a placeholder.
    #[error("feed `{placeholder}`: {msg}")]
    Feed {
        /// The placeholder's name.
        placeholder: String,
        /// What was wrong.
        msg: String,
    },
    /// A fetch was invalid (another graph's node, or unknown).
    #[error("fetch `{node}`: {msg}")]
    Fetch {
        /// The fetched node's name.
        node: String,
        /// What was wrong.
        msg: String,
    },
    /// Executing an op failed at run time (e.g. an index out of range).
    #[error("running {op} `{node}`: {msg}")]
    Runtime {
        /// The op's name.
        op: String,
        /// The node's name.
        node: String,
        /// What went wrong.
        msg: String,
    },
    /// The graph violates an IR invariant (reported by the verifier).
    #[error("verifier: node `{node}`: {msg}")]
    Verify {
        /// The offending node.
        node: String,
        /// The violated invariant.
        msg: String,
    },
    /// An I/O error, with the path involved.
    #[error("{path}: {msg}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        msg: String,
    },
    /// Any other invalid argument.
    #[error("{0}")]
    Invalid(String),
}

impl GraphError {
    /// An [`GraphError::Invalid`] error with a message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        GraphError::Invalid(msg.into())
    }

    /// A runtime error of node `node` running op `op`.
    pub fn runtime(op: &str, node: &str, msg: impl Into<String>) -> Self {
        GraphError::Runtime {
            op: op.to_string(),
            node: node.to_string(),
            msg: msg.into(),
        }
    }

    /// The build-error kind, if this is a build error.
    pub fn build_kind(&self) -> Option<&BuildError> {
        match self {
            GraphError::Build { kind, .. } => Some(kind),
            _ => None,
        }
    }
}
