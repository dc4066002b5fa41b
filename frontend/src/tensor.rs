//! [`Tensor`]: a typed handle to one node of a [`Graph`]. Every DSL method lives on it
//! (see the `dsl` modules); operators are overloaded in `dsl/operators.rs`.

use crate::dtype::DType;
use crate::graph::{Graph, NodeId};
use crate::op::{Op, TensorType};
use std::fmt;

/// A symbolic tensor: the output of one node of a graph.
#[derive(Clone)]
pub struct Tensor {
    graph: Graph,
    id: NodeId,
    ty: TensorType,
}

impl Tensor {
    pub(crate) fn new(graph: Graph, id: NodeId) -> Tensor {
        let ty = graph.with_def(|d| d.node(id).ty.clone());
        Tensor { graph, id, ty }
    }

    /// The graph the tensor belongs to.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The node's unique name.
    pub fn name(&self) -> String {
        self.graph.with_def(|d| d.node(self.id).name.clone())
    }

    /// The node's op.
    pub fn op(&self) -> Op {
        self.graph.with_def(|d| d.node(self.id).op.clone())
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    /// Static shape.
    pub fn shape(&self) -> &[usize] {
        &self.ty.shape
    }

    /// Rank.
    pub fn rank(&self) -> usize {
        self.ty.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.ty.numel()
    }

    /// Give the node a name (within its scope) and return the handle: `(&b + &c)?.named("d")?`.
    #[track_caller]
    pub fn named(self, name: &str) -> crate::Result<Tensor> {
        self.graph.rename(&self, name)?;
        Ok(self)
    }

    /// Output type (dtype and shape).
    pub fn ty(&self) -> &TensorType {
        &self.ty
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.graph.same_graph(&other.graph)
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor({} : {})", self.name(), self.ty)
    }
}
