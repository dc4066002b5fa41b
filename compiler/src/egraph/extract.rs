//! Extraction: choose one e-node per needed class so that the resulting graph is cheapest
//! under a cost model of flops and bytes moved, **counting every shared class once**.
//!
//! egg's default extractor minimises *tree* cost, which counts a shared subterm once per
//! use and so happily duplicates a shared matmul to save an elementwise op elsewhere. Here
//! a class's cost is the sum over the *set* of classes its choice reaches (a DAG-aware
//! greedy fixpoint, as in extraction-gym's `faster-greedy-dag`), and the final choice is
//! improved locally under the *global* DAG cost ([`improve`]), then compared with the input
//! graph: the cheaper of the two wins, so saturation never makes a graph more expensive
//! under the model. The rules that could make a shared matmul be computed twice are also
//! guarded (`rules::used_only_by`).
//!
//! The cost model (per e-node, from its output and input types):
//! - matmul: `2·batch·m·n·k` flops, and its inputs and output in bytes;
//! - elementwise ops: one flop per element (8 for transcendental unary ops), output bytes;
//! - reductions, cumsum: one flop per input element, input + output bytes;
//! - data movement (`concat`, `pad`, `tile`, `roll`, `gather`, `scatter_add`, sorts):
//!   twice the output bytes (read and write) plus one flop per element (indexing);
//! - views fused by lowering (`transpose`, `broadcast_to`, `slice`): a quarter of the
//!   output bytes; `reshape` and identities: free;
//! - composites (softmax, …): ten flops per input element plus twice the output bytes;
//! - constants: their bytes; pinned leaves: free.
//!
//! Total cost = flops + [`BYTE_WEIGHT`] · bytes.

use super::lang::{EG, ENode, Sym};
use egg::Id;
use flumen_frontend::op::{Op, TensorType, UnaryOp};
use std::collections::HashMap;

/// How many flops one byte of memory traffic is worth.
pub const BYTE_WEIGHT: f64 = 4.0;

/// Flops and bytes of one e-node.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Arithmetic operations.
    pub flops: f64,
    /// Bytes read or written.
    pub bytes: f64,
}

impl Cost {
    /// The scalar the extractor minimises.
    pub fn total(self) -> f64 {
        self.flops + BYTE_WEIGHT * self.bytes
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            flops: self.flops + o.flops,
            bytes: self.bytes + o.bytes,
        }
    }
}

fn bytes(t: &TensorType) -> f64 {
    (t.numel() * t.dtype.size_bytes()) as f64
}

/// The cost of computing `node` once.
pub fn node_cost(eg: &EG, node: &ENode, out: &TensorType) -> Cost {
    let ins: Vec<&TensorType> = node.children.iter().map(|c| &eg[*c].data.ty).collect();
    let n = out.numel() as f64;
    let ob = bytes(out);
    let c = |flops: f64, bytes: f64| Cost { flops, bytes };
    match node.sym {
        Sym::Leaf(_) => Cost::default(),
        Sym::Const(_) => c(0.0, ob),
        Sym::Op(_) => {
            let op = eg.analysis.op(node.sym).expect("an op symbol");
            match op {
                Op::MatMul { transpose_a, .. } => {
                    let a = &ins[0].shape;
                    let k = if *transpose_a {
                        a[a.len() - 2]
                    } else {
                        a[a.len() - 1]
                    };
                    c(2.0 * n * k as f64, ob + bytes(ins[0]) + bytes(ins[1]))
                }
                // LU solve of [.., n, n] with [.., n, k]: ≈ (2/3)n³ + 2n²k per matrix.
                Op::Solve => {
                    let a = &ins[0].shape;
                    let m = a[a.len() - 1] as f64;
                    let batch = ins[0].numel() as f64 / (m * m).max(1.0);
                    let k = out.shape[out.rank() - 1] as f64;
                    c(
                        batch * (2.0 / 3.0 * m * m * m + 2.0 * m * m * k),
                        ob + bytes(ins[0]) + bytes(ins[1]),
                    )
                }
                // Scaling and squaring with Padé: about a dozen n³ products per matrix.
                Op::Expm => {
                    let s = &out.shape;
                    let m = s[s.len() - 1] as f64;
                    c(24.0 * n * m, 2.0 * ob)
                }
                Op::Unary(u) => {
                    let per = match u {
                        UnaryOp::Identity | UnaryOp::StopGradient => return Cost::default(),
                        UnaryOp::Exp
                        | UnaryOp::Log
                        | UnaryOp::Log1p
                        | UnaryOp::Sin
                        | UnaryOp::Cos
                        | UnaryOp::Tanh
                        | UnaryOp::Sigmoid
                        | UnaryOp::Softplus
                        | UnaryOp::Gelu
                        | UnaryOp::Erf => 8.0,
                        _ => 1.0,
                    };
                    c(per * n, ob)
                }
                Op::Binary(_) | Op::Select | Op::Cast(_) => c(n, ob),
                Op::Reduce { .. } | Op::ArgReduce { .. } | Op::Cumsum { .. } => {
                    let i = ins[0].numel() as f64;
                    c(i, bytes(ins[0]) + ob)
                }
                Op::Reshape(_) => Cost::default(),
                Op::Transpose(_) | Op::BroadcastTo(_) | Op::Slice(_) => c(0.0, ob / 4.0),
                Op::Concat { .. }
                | Op::Pad { .. }
                | Op::Tile(_)
                | Op::Roll { .. }
                | Op::Gather { .. }
                | Op::ScatterAdd { .. }
                | Op::TopK { .. }
                | Op::ArgSort { .. } => c(n, 2.0 * ob),
                Op::Composite(_) => {
                    let i: f64 = ins.iter().map(|t| t.numel() as f64).sum();
                    c(10.0 * i, 2.0 * ob)
                }
                // Pinned ops never become op symbols; cost them like data movement.
                Op::Constant(_)
                | Op::Placeholder { .. }
                | Op::Variable { .. }
                | Op::Read
                | Op::Assign
                | Op::AssignSlice(_)
                | Op::Random { .. }
                | Op::Categorical { .. }
                | Op::NoOp => c(0.0, ob),
            }
        }
    }
}

/// A choice of one e-node per class (only the classes the roots need matter).
pub type Choice = HashMap<Id, ENode>;

/// The DAG cost of a choice from `roots` (each class counted once), or `None` when the
/// choice is cyclic or incomplete.
pub fn dag_cost(eg: &EG, choice: &Choice, roots: &[Id]) -> Option<Cost> {
    // Iterative DFS with colours to detect cycles.
    let mut state: HashMap<Id, u8> = HashMap::new(); // 1 = on stack, 2 = done
    let mut total = Cost::default();
    for &r in roots {
        let r = eg.find(r);
        if state.get(&r) == Some(&2) {
            continue;
        }
        let mut stack: Vec<(Id, bool)> = vec![(r, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                state.insert(id, 2);
                let node = choice.get(&id)?;
                total = total + node_cost(eg, node, &eg[id].data.ty);
                continue;
            }
            match state.get(&id) {
                Some(2) => continue,
                Some(1) => return None,
                _ => {}
            }
            state.insert(id, 1);
            stack.push((id, true));
            let node = choice.get(&id)?;
            for c in &node.children {
                let c = eg.find(*c);
                match state.get(&c) {
                    Some(2) => {}
                    Some(1) => return None,
                    _ => stack.push((c, false)),
                }
            }
        }
    }
    Some(total)
}

/// A class on a cycle of `choice` reachable from `roots`, if there is one.
pub fn find_cycle(eg: &EG, choice: &Choice, roots: &[Id]) -> Option<Id> {
    let mut state: HashMap<Id, u8> = HashMap::new();
    for &r in roots {
        let r = eg.find(r);
        let mut stack: Vec<(Id, bool)> = vec![(r, false)];
        while let Some((id, expanded)) = stack.pop() {
            if expanded {
                state.insert(id, 2);
                continue;
            }
            match state.get(&id) {
                Some(2) => continue,
                Some(1) => return Some(id),
                _ => {}
            }
            state.insert(id, 1);
            stack.push((id, true));
            let node = choice.get(&id)?;
            for c in &node.children {
                let c = eg.find(*c);
                match state.get(&c) {
                    Some(2) => {}
                    Some(1) => return Some(c),
                    _ => stack.push((c, false)),
                }
            }
        }
    }
    None
}

/// DAG-aware greedy extraction: a fixpoint over classes where a node's cost is the total
/// cost of the set of classes it reaches.
/// Nodes in `banned` (class, node) are never chosen.
pub fn greedy_dag(eg: &EG, banned: &std::collections::HashSet<(Id, ENode)>) -> Choice {
    // Classes get dense indices; a cost set is a bitset over them, and its total is the sum
    // of each member's own cost under its current choice.
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let index: HashMap<Id, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let words = ids.len().div_ceil(64);
    let own: Vec<Vec<f64>> = ids
        .iter()
        .map(|&id| {
            eg[id]
                .nodes
                .iter()
                .map(|n| node_cost(eg, n, &eg[id].data.ty).total())
                .collect()
        })
        .collect();
    type Set = std::rc::Rc<Vec<u64>>;
    // Per class: (total, set, chosen node index).
    let mut best: Vec<Option<(f64, Set, usize)>> = vec![None; ids.len()];
    let mut own_best = vec![0.0f64; ids.len()];
    // A node is re-evaluated only when one of its children's choices changed since.
    let mut version = vec![0u64; ids.len()];
    let mut evaluated: HashMap<(usize, usize), u64> = HashMap::new();
    let has = |set: &[u64], i: usize| set[i / 64] >> (i % 64) & 1 == 1;
    for _pass in 0..64 {
        let mut changed = false;
        for (ci, &id) in ids.iter().enumerate() {
            for (ni, node) in eg[id].nodes.iter().enumerate() {
                if !banned.is_empty() && banned.contains(&(id, node.clone())) {
                    continue;
                }
                let kids: Vec<usize> = node.children.iter().map(|c| index[&eg.find(*c)]).collect();
                let stamp: u64 = 1 + kids.iter().map(|&k| version[k]).sum::<u64>();
                if evaluated.get(&(ci, ni)) == Some(&stamp) {
                    continue;
                }
                let mut sets: Vec<&Set> = Vec::with_capacity(kids.len());
                let mut ok = true;
                for &k in &kids {
                    match &best[k] {
                        Some((_, set, _)) if !has(set, ci) => sets.push(set),
                        _ => {
                            ok = false;
                            break;
                        }
                    }
                }
                if !ok {
                    continue;
                }
                evaluated.insert((ci, ni), stamp);
                let mut set: Vec<u64> = vec![0; words];
                for s in &sets {
                    for (w, x) in set.iter_mut().zip(s.iter()) {
                        *w |= x;
                    }
                }
                set[ci / 64] |= 1 << (ci % 64);
                let mut total = own[ci][ni];
                for (wi, &w) in set.iter().enumerate() {
                    let mut w = w;
                    while w != 0 {
                        let b = wi * 64 + w.trailing_zeros() as usize;
                        if b != ci {
                            total += own_best[b];
                        }
                        w &= w - 1;
                    }
                }
                let better = match &best[ci] {
                    None => true,
                    Some((t, _, _)) => total < *t * (1.0 - 1e-12) - 1e-9,
                };
                if better {
                    best[ci] = Some((total, std::rc::Rc::new(set), ni));
                    own_best[ci] = own[ci][ni];
                    version[ci] += 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    ids.iter()
        .zip(best)
        .filter_map(|(&id, b)| b.map(|(_, _, ni)| (id, eg[id].nodes[ni].clone())))
        .collect()
}

/// Local improvement of a choice under the global DAG cost: for each class the choice
/// reaches (that has alternatives), try each other e-node and keep the swap when the total
/// cost from `roots` drops. Repairs what the greedy pass cannot see — a class whose locally
/// cheapest node recomputes work that another class needs anyway. Stops after `budget`.
pub fn improve(eg: &EG, choice: &mut Choice, roots: &[Id], budget: std::time::Duration) {
    let start = std::time::Instant::now();
    let Some(mut best) = dag_cost(eg, choice, roots).map(Cost::total) else {
        return;
    };
    for _round in 0..4 {
        let mut improved = false;
        let mut classes: Vec<Id> = reachable(eg, choice, roots)
            .into_iter()
            .filter(|c| eg[*c].nodes.len() > 1)
            .collect();
        classes.sort();
        for class in classes {
            for node in &eg[class].nodes {
                if start.elapsed() > budget {
                    return;
                }
                if choice.get(&class) == Some(node) {
                    continue;
                }
                let old = choice.insert(class, node.clone());
                match dag_cost(eg, choice, roots).map(Cost::total) {
                    Some(c) if c < best * (1.0 - 1e-12) => {
                        best = c;
                        improved = true;
                    }
                    _ => {
                        if let Some(old) = old {
                            choice.insert(class, old);
                        }
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
}

/// The classes a choice reaches from `roots`.
fn reachable(eg: &EG, choice: &Choice, roots: &[Id]) -> Vec<Id> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|r| eg.find(*r)).collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(n) = choice.get(&id) {
            stack.extend(n.children.iter().map(|c| eg.find(*c)));
        }
    }
    seen.into_iter().collect()
}
