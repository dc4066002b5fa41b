//! Fusion decisions: which nodes are *virtual* (inlined as expressions into the kernels that
//! consume them) and which are *materialised* (own a buffer).
//!
//! - Elementwise ops (unary, binary, select, cast) are virtual when their value is used
//!   exactly once, counting uses through virtual layout ops, by a kernel (an elementwise op,
//!   a layout op, a reduction, or the value of a slice-assign).
//! - Layout ops (transpose, broadcast_to, slice, and reshapes that only add or drop unit
//!   axes) are virtual whenever every consumer is a kernel: they only change strides.
//!   Other reshapes alias their (materialised) input.
//! - Scalar constants consumed only by kernels are inlined as literals.
//! - A single-element elementwise node read by a kernel over at least
//!   [`HOIST_MIN_ELEMENTS`] elements (through broadcasting) is materialised: computed once
//!   by a tiny kernel instead of once per element (Adam's bias-corrected step size, with
//!   its `pow`s and `sqrt`, would otherwise run for every parameter).
//! - Everything fetched, and everything else, is materialised.

use flumen_frontend::op::Op;
use flumen_frontend::{GraphDef, Node, NodeId};

/// Whether `op` is computed by an elementwise kernel expression.
pub fn is_elementwise(op: &Op) -> bool {
    matches!(op, Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast(_))
}

/// Whether `op` only re-indexes its input.
pub fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Transpose(_) | Op::BroadcastTo(_) | Op::Slice(_) | Op::Reshape(_)
    )
}

/// Whether a reshape from `node`'s input only inserts or removes unit axes (so it can be
/// inlined as an index map).
pub fn is_unit_reshape(def: &GraphDef, node: &Node) -> bool {
    let non_unit = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    matches!(node.op, Op::Reshape(_))
        && non_unit(&def.node(node.inputs[0]).ty.shape) == non_unit(&node.ty.shape)
}

/// Whether input `slot` of `consumer` is read by a kernel expression.
fn kernel_reads(consumer: &Node, slot: usize) -> bool {
    is_elementwise(&consumer.op)
        || is_view(&consumer.op)
        || matches!(consumer.op, Op::Reduce { .. })
        || (matches!(consumer.op, Op::AssignSlice(_)) && slot == 1)
}

/// Consumers over at least this many elements get single-element elementwise inputs
/// computed once (see the module docs).
pub const HOIST_MIN_ELEMENTS: usize = 64;

/// Per node: `true` when virtual (as the default lowering decides).
pub fn classify(def: &GraphDef, executed: &[bool], fetched: &[bool]) -> Vec<bool> {
    classify_with(def, executed, fetched, true)
}

/// Per node: `true` when virtual. `hoist_scalars` enables materialising single-element
/// nodes read by wide kernels.
pub fn classify_with(
    def: &GraphDef,
    executed: &[bool],
    fetched: &[bool],
    hoist_scalars: bool,
) -> Vec<bool> {
    let n = def.len();
    let mut consumers: Vec<Vec<(NodeId, usize)>> = vec![Vec::new(); n];
    for (id, node) in def.iter() {
        if executed[id.0] && !matches!(node.op, Op::Variable { .. }) {
            for (slot, i) in node.inputs.iter().enumerate() {
                consumers[i.0].push((id, slot));
            }
        }
    }
    let mut virt = vec![false; n];
    // Effective uses through virtual views (computed in reverse so consumers come first).
    let mut uses = vec![0usize; n];
    let mut widest_of = vec![0usize; n];
    for (id, node) in def.iter().collect::<Vec<_>>().into_iter().rev() {
        if !executed[id.0] {
            continue;
        }
        let cons = &consumers[id.0];
        let all_kernel = !cons.is_empty()
            && cons.iter().all(|(c, slot)| {
                let cn = def.node(*c);
                let needs_buffer = matches!(cn.op, Op::Reshape(_)) && !is_unit_reshape(def, cn);
                kernel_reads(cn, *slot) && !needs_buffer
            });
        uses[id.0] = cons
            .iter()
            .map(|(c, _)| {
                if virt[c.0] && is_view(&def.node(*c).op) {
                    uses[c.0]
                } else {
                    1
                }
            })
            .sum();
        // The most elements a consumer (or a view of this node) iterates.
        let widest = cons
            .iter()
            .map(|(c, _)| {
                if virt[c.0] && is_view(&def.node(*c).op) {
                    widest_of[c.0]
                } else {
                    def.node(*c).ty.numel()
                }
            })
            .max()
            .unwrap_or(0);
        widest_of[id.0] = widest.max(node.ty.numel());
        let hoist = hoist_scalars && node.ty.numel() == 1 && widest >= HOIST_MIN_ELEMENTS;
        virt[id.0] = !fetched[id.0]
            && all_kernel
            && match &node.op {
                op if is_view(op) => !matches!(op, Op::Reshape(_)) || is_unit_reshape(def, node),
                op if is_elementwise(op) => uses[id.0] == 1 && !hoist,
                Op::Constant(v) => v.len() == 1,
                _ => false,
            };
    }
    virt
}
