//! Reduction groups: a reduction over some axes of a tensor `x` together with the
//! materialised elementwise nodes and the further reductions over the same axes that
//! consume it become ONE multi-phase kernel (softmax, log-softmax, layer norm, softmax
//! cross-entropy's log-sum-exp).
//!
//! The kernel iterates the reduction's space: outer = the kept axes of `x`, inner = the
//! reduced ones. Each reduction of the group is a reduce phase (in graph order); later
//! phases read earlier results as [`Expr::PhaseResult`](crate::kernel::Expr). Elementwise
//! members are not stored for each other: they are recomputed inside every phase that
//! needs them (cheap producers only; matrix products and every other non-elementwise node
//! stay outside and are loaded). A member is stored only when something outside the group
//! reads it or it is fetched: per outer index for members shaped like the reduction's
//! output, in a final pass over the inner space for members shaped like `x`.
//!
//! Growing a group (in node order, from its first reduction): a materialised node that
//! reads a member (directly or through virtual nodes) joins when it is a reduction of an
//! `x`-shaped input over the same axes, or an elementwise node shaped like `x` or like the
//! reduction's output (with or without the reduced axes). The first such node that cannot
//! join ends the group, so everything outside that reads a member runs after the group's
//! kernel, which takes the place of its last member. A group whose kernel cannot be built
//! (a member reduction read at another outer index, e.g. through a transpose) is dropped
//! and its nodes are lowered one kernel each, as before.

use super::affine::AffineMap;
use super::kernels::{
    KernelBuilder, NodeSource, PhaseRef, reduce_iteration_perm, reduce_output_map,
};
use crate::kernel::{BufId, Kernel, PhaseKind};
use flumen_frontend::op::{Op, ReduceOp};
use flumen_frontend::{GraphDef, NodeId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

/// One reduction group.
#[derive(Clone, Debug)]
pub struct Group {
    /// The group's first reduction (it defines the iteration space).
    pub root: NodeId,
    /// Members in node order.
    pub members: Vec<NodeId>,
    /// Members that must be stored (read outside the group or fetched).
    pub stored: Vec<NodeId>,
}

impl Group {
    /// The member whose place the group's kernel takes.
    pub fn last(&self) -> NodeId {
        *self.members.last().expect("a group has members")
    }
}

/// The reduction's space: the reduced tensor's shape and the reduced axes.
struct Space {
    shape: Vec<usize>,
    axes: Vec<usize>,
    keep: Vec<usize>,
    drop: Vec<usize>,
}

impl Space {
    fn of(def: &GraphDef, r: NodeId) -> Option<Space> {
        let n = def.node(r);
        let Op::Reduce { axes, .. } = &n.op else {
            return None;
        };
        if axes.is_empty() {
            return None;
        }
        let shape = def.node(n.inputs[0]).ty.shape.clone();
        let keep = (0..shape.len())
            .map(|k| if axes.contains(&k) { 1 } else { shape[k] })
            .collect();
        let drop = (0..shape.len())
            .filter(|k| !axes.contains(k))
            .map(|k| shape[k])
            .collect();
        Some(Space {
            shape,
            axes: axes.clone(),
            keep,
            drop,
        })
    }

    fn same_axes(&self, axes: &[usize]) -> bool {
        let mut a = axes.to_vec();
        let mut b = self.axes.clone();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }

    /// Whether materialised node `id` can join a group over this space.
    fn fits(&self, def: &GraphDef, id: NodeId) -> bool {
        let n = def.node(id);
        match &n.op {
            Op::Reduce { axes, .. } => {
                def.node(n.inputs[0]).ty.shape == self.shape && self.same_axes(axes)
            }
            op if super::classify::is_elementwise(op) => {
                n.ty.shape == self.shape || n.ty.shape == self.keep || n.ty.shape == self.drop
            }
            _ => false,
        }
    }

    fn iter_rank(&self) -> usize {
        self.shape.len()
    }

    /// Map from the iteration space to an `x`-shaped node.
    fn inner_map(&self) -> AffineMap {
        AffineMap::select(
            &reduce_iteration_perm(self.shape.len(), &self.axes),
            self.iter_rank(),
        )
    }

    /// Map from the iteration space to a node shaped like the reduction's output.
    fn outer_map(&self, shape: &[usize]) -> AffineMap {
        let keepdims = shape.len() == self.shape.len();
        reduce_output_map(self.shape.len(), &self.axes, keepdims, self.iter_rank())
    }

    fn outer(&self) -> Vec<usize> {
        self.drop.clone()
    }

    fn inner(&self) -> Vec<usize> {
        self.axes.iter().map(|&k| self.shape[k]).collect()
    }
}

/// The materialised nodes `id` reads, looking through virtual nodes.
fn frontier(def: &GraphDef, virt: &[bool], id: NodeId) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<NodeId> = def.node(id).inputs.clone();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        if virt[i.0] {
            stack.extend(def.node(i).inputs.iter().copied());
        } else {
            out.push(i);
        }
    }
    out
}

/// Sees group members as virtual; everything else as `inner` does.
struct GroupSource<'a, S: NodeSource> {
    inner: &'a S,
    members: &'a HashSet<NodeId>,
}

impl<S: NodeSource> NodeSource for GroupSource<'_, S> {
    fn def(&self) -> &GraphDef {
        self.inner.def()
    }
    fn buffer(&self, id: NodeId) -> Option<BufId> {
        if self.members.contains(&id) {
            None
        } else {
            self.inner.buffer(id)
        }
    }
}

/// A stand-in source for checking that a group's kernel can be built before any buffer
/// exists: every materialised node has buffer 0.
struct DrySource<'a> {
    def: &'a GraphDef,
    virt: &'a [bool],
}

impl NodeSource for DrySource<'_> {
    fn def(&self) -> &GraphDef {
        self.def
    }
    fn buffer(&self, id: NodeId) -> Option<BufId> {
        (!self.virt[id.0]).then_some(BufId(0))
    }
}

/// Find the reduction groups of the nodes that run (`executed`), given the virtual nodes
/// and the fetched ones. Groups are disjoint and have at least two members.
pub fn find_groups(
    def: &GraphDef,
    executed: &[bool],
    fetched: &[bool],
    virt: &[bool],
) -> Vec<Group> {
    let n = def.len();
    let live = |i: usize| executed[i] && !virt[i];
    // The materialised nodes each node reads, and those reading it (through virtual nodes).
    let mut frontiers: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for (id, node) in def.iter() {
        if live(id.0) && !matches!(node.op, Op::Variable { .. }) {
            frontiers[id.0] = frontier(def, virt, id);
            for f in &frontiers[id.0] {
                readers[f.0].push(id);
            }
        }
    }
    // Executed nodes with a control input on each node.
    let mut controlled: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (id, node) in def.iter() {
        if executed[id.0] {
            for c in &node.control_inputs {
                controlled[c.0].push(id.0);
            }
        }
    }
    let mut taken = vec![false; n];
    let mut groups = Vec::new();
    for r in 0..n {
        if !live(r) || taken[r] {
            continue;
        }
        let Some(space) = Space::of(def, NodeId(r)) else {
            continue;
        };
        let mut members = vec![NodeId(r)];
        let mut member_set: HashSet<NodeId> = HashSet::from([NodeId(r)]);
        // The nodes connected to the group (reading a member, or ordered after one by a
        // control input), in node order: each joins, or ends the group. Keys are
        // (node, 0 for a control input, 1 for a data read), so control comes first.
        let mut next: BinaryHeap<Reverse<(usize, u8)>> = BinaryHeap::new();
        let mut queued: HashSet<usize> = HashSet::new();
        let mut connect = |m: usize, next: &mut BinaryHeap<Reverse<(usize, u8)>>| {
            for rd in &readers[m] {
                if queued.insert(rd.0) {
                    next.push(Reverse((rd.0, 1)));
                }
            }
            for &c in &controlled[m] {
                next.push(Reverse((c, 0)));
            }
        };
        connect(r, &mut next);
        while let Some(Reverse((m, kind))) = next.pop() {
            if kind == 1 && member_set.contains(&NodeId(m)) {
                continue;
            }
            if kind == 0 || taken[m] || !space.fits(def, NodeId(m)) {
                break;
            }
            members.push(NodeId(m));
            member_set.insert(NodeId(m));
            connect(m, &mut next);
        }
        if members.len() < 2 {
            continue;
        }
        // Producers: elementwise nodes shaped like the reduced tensor that only members
        // read (e.g. the logits' bias-add read by the max and by the shift) are recomputed
        // inside the group instead of being stored.
        let mut k = 0;
        while k < members.len() {
            for &f in &frontiers[members[k].0] {
                let fnode = def.node(f);
                let only_members = readers[f.0].iter().all(|r| member_set.contains(r));
                let no_control = controlled[f.0].is_empty();
                if !member_set.contains(&f)
                    && !taken[f.0]
                    && executed[f.0]
                    && !fetched[f.0]
                    && only_members
                    && no_control
                    && super::classify::is_elementwise(&fnode.op)
                    && fnode.ty.shape == space.shape
                {
                    members.push(f);
                    member_set.insert(f);
                }
            }
            k += 1;
        }
        members.sort_unstable();
        let stored: Vec<NodeId> = members
            .iter()
            .copied()
            .filter(|m| fetched[m.0] || readers[m.0].iter().any(|r| !member_set.contains(r)))
            .collect();
        let group = Group {
            root: NodeId(r),
            members,
            stored,
        };
        let dry = DrySource { def, virt };
        let stores: Vec<BufId> = group.stored.iter().map(|_| BufId(0)).collect();
        if build(&dry, &group, &stores).is_none() {
            continue;
        }
        for m in &group.members {
            taken[m.0] = true;
        }
        groups.push(group);
    }
    groups
}

/// The kernel of `group`, storing `group.stored[i]` into `stores[i]`; `None` when some
/// expression cannot be built in the group's space.
pub fn build<S: NodeSource>(src: &S, group: &Group, stores: &[BufId]) -> Option<Kernel> {
    let def = src.def();
    let space = Space::of(def, group.root)?;
    let member_set: HashSet<NodeId> = group.members.iter().copied().collect();
    let gs = GroupSource {
        inner: src,
        members: &member_set,
    };
    let mut kb = KernelBuilder::new(&gs, space.outer(), space.inner());
    let inner_map = space.inner_map();
    let reductions: Vec<NodeId> = group
        .members
        .iter()
        .copied()
        .filter(|m| matches!(def.node(*m).op, Op::Reduce { .. }))
        .collect();
    let inner_len: usize = space.inner().iter().product();
    for (phase, r) in reductions.iter().enumerate() {
        let Op::Reduce { op, .. } = &def.node(*r).op else {
            unreachable!("filtered")
        };
        kb.set_reduced(
            *r,
            PhaseRef {
                phase,
                mean_count: (*op == ReduceOp::Mean).then_some(inner_len),
                map: space.outer_map(&def.node(*r).ty.shape),
            },
        );
    }
    for r in &reductions {
        let node = def.node(*r);
        let Op::Reduce { op, .. } = &node.op else {
            unreachable!("filtered")
        };
        kb.begin_phase(true);
        let v = kb.expr(node.inputs[0], &inner_map);
        let op = if *op == ReduceOp::Mean {
            ReduceOp::Sum
        } else {
            *op
        };
        kb.end_phase(PhaseKind::Reduce { op, value: v });
    }
    // Stores: members shaped like the reduction's output once per outer index, the others
    // over the inner space.
    for over_inner in [false, true] {
        let mut list = Vec::new();
        for (m, buf) in group.stored.iter().zip(stores) {
            let n = def.node(*m);
            let is_inner = n.ty.shape == space.shape && !matches!(n.op, Op::Reduce { .. });
            if is_inner != over_inner {
                continue;
            }
            list.push((*m, *buf));
        }
        if list.is_empty() {
            continue;
        }
        kb.begin_phase(over_inner);
        let mut st = Vec::new();
        for (m, buf) in list {
            let n = def.node(m);
            let map = if over_inner {
                inner_map.clone()
            } else {
                space.outer_map(&n.ty.shape)
            };
            let v = kb.expr(m, &map);
            let a = kb.access(buf, n.ty.dtype, &n.ty.shape, &map);
            st.push((a, v));
        }
        kb.end_phase(PhaseKind::Store { stores: st });
    }
    if kb.failed() {
        return None;
    }
    let names: Vec<&str> = group
        .members
        .iter()
        .map(|m| def.node(*m).name.as_str())
        .collect();
    Some(kb.finish(group_name(&names), group.members.clone()))
}

/// `a+b+c` for short groups, `a+…+z (n nodes)` for long ones.
fn group_name(names: &[&str]) -> String {
    if names.len() <= 4 {
        names.join("+")
    } else {
        format!(
            "{}+…+{} ({} nodes)",
            names[0],
            names[names.len() - 1],
            names.len()
        )
    }
}
