//! Every op variant, elementwise op, reduction, distribution and composite by hand (the
//! exhaustive matches make a new op fail until it has a case), plus fusion and state graphs.

use super::*;

// ---------------------------------------------------------------------------------------
// Every op and composite, by hand
// ---------------------------------------------------------------------------------------

/// An input of a table case: a placeholder of this type, or a constant.
pub(crate) enum In {
    P(DType, Vec<usize>),
    C(Value),
}

pub(crate) fn p(dtype: DType, shape: &[usize]) -> In {
    In::P(dtype, shape.to_vec())
}

pub(crate) fn c<T: flumen::Element>(shape: &[usize], data: Vec<T>) -> In {
    In::C(Value::from_vec(shape, data).expect("shape fits"))
}

/// A graph with the inputs and `op` on them.
pub(crate) fn op_graph(op: Op, inputs: Vec<In>) -> GraphDef {
    let mut def = GraphDef::new();
    let mut ids = Vec::new();
    for (k, input) in inputs.into_iter().enumerate() {
        let o = match input {
            In::P(dtype, shape) => Op::Placeholder { dtype, shape },
            In::C(v) => Op::Constant(v),
        };
        ids.push(
            def.add(o, &[], &[], format!("in{k}"), None)
                .expect("inputs"),
        );
    }
    let name = op.name();
    def.add(op, &ids, &[], "op".into(), None)
        .unwrap_or_else(|e| panic!("table case {name}: {e}"));
    def
}

/// Index of `op`'s variant (exhaustive: a new variant must get an index and cases).
pub(crate) fn variant_index(op: &Op) -> usize {
    match op {
        Op::Constant(_) => 0,
        Op::Placeholder { .. } => 1,
        Op::Variable { .. } => 2,
        Op::Read => 3,
        Op::Assign => 4,
        Op::AssignSlice(_) => 5,
        Op::Random { .. } => 6,
        Op::Categorical { .. } => 7,
        Op::Unary(_) => 8,
        Op::Binary(_) => 9,
        Op::Select => 10,
        Op::Cast(_) => 11,
        Op::Reduce { .. } => 12,
        Op::ArgReduce { .. } => 13,
        Op::Cumsum { .. } => 14,
        Op::MatMul { .. } => 15,
        Op::Reshape(_) => 16,
        Op::Transpose(_) => 17,
        Op::BroadcastTo(_) => 18,
        Op::Slice(_) => 19,
        Op::Concat { .. } => 20,
        Op::Pad { .. } => 21,
        Op::Tile(_) => 22,
        Op::Roll { .. } => 23,
        Op::Gather { .. } => 24,
        Op::ScatterAdd { .. } => 25,
        Op::TopK { .. } => 26,
        Op::ArgSort { .. } => 27,
        Op::NoOp => 28,
        Op::Composite(_) => 29,
        Op::Solve => 30,
        Op::Expm => 31,
    }
}

/// Number of [`Op`] variants ([`variant_index`] is `0..OP_VARIANTS`).
pub(crate) const OP_VARIANTS: usize = 32;

/// Index of a composite (exhaustive, like [`variant_index`]).
pub(crate) fn composite_index(c: &Composite) -> usize {
    match c {
        Composite::Softmax { .. } => 0,
        Composite::LogSoftmax { .. } => 1,
        Composite::SoftmaxCrossEntropy => 2,
        Composite::SparseSoftmaxCrossEntropy => 3,
        Composite::BinaryCrossEntropy { .. } => 4,
        Composite::MeanSquaredError => 5,
        Composite::LayerNorm { .. } => 6,
        Composite::L2Normalize { .. } => 7,
        Composite::Dropout { .. } => 8,
    }
}

/// Number of composites.
pub(crate) const COMPOSITES: usize = 9;

/// Index of a distribution (exhaustive).
pub(crate) fn distribution_index(d: &Distribution) -> usize {
    match d {
        Distribution::Normal { .. } => 0,
        Distribution::TruncatedNormal { .. } => 1,
        Distribution::Uniform { .. } => 2,
        Distribution::UniformInt { .. } => 3,
    }
}

pub(crate) const NUMERIC: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::U8];
pub(crate) const FLOATS: [DType; 2] = [DType::F32, DType::F64];

/// The table: one or more graphs for every op, composite, elementwise op, reduction and
/// distribution, over the dtypes each accepts.
pub(crate) fn op_table() -> Vec<GraphDef> {
    let mut t: Vec<GraphDef> = Vec::new();
    let s = |d: &[usize]| d.to_vec();
    // Elementwise.
    for u in UnaryOp::ALL {
        for d in DType::ALL.into_iter().filter(|d| u.dtypes().accepts(*d)) {
            t.push(op_graph(Op::Unary(u), vec![p(d, &[3, 5])]));
        }
    }
    for b in BinaryOp::ALL {
        for d in DType::ALL.into_iter().filter(|d| b.dtypes().accepts(*d)) {
            t.push(op_graph(Op::Binary(b), vec![p(d, &[3, 4]), p(d, &[4])]));
            t.push(op_graph(Op::Binary(b), vec![p(d, &[]), p(d, &[2, 1, 3])]));
        }
    }
    for d in DType::ALL {
        t.push(op_graph(
            Op::Select,
            vec![p(DType::Bool, &[3, 1]), p(d, &[3, 4]), p(d, &[4])],
        ));
        for to in DType::ALL {
            t.push(op_graph(Op::Cast(to), vec![p(d, &[2, 5])]));
        }
    }
    // Reductions.
    for op in ReduceOp::ALL {
        let dtypes = if op == ReduceOp::Mean {
            &FLOATS[..]
        } else {
            &NUMERIC[..]
        };
        for &d in dtypes {
            for (axes, keepdims) in [(vec![1], false), (vec![0], true), (vec![0, 1], false)] {
                let r = Op::Reduce { op, axes, keepdims };
                t.push(op_graph(r, vec![p(d, &[3, 7])]));
            }
            let none = Op::Reduce {
                op,
                axes: vec![],
                keepdims: false,
            };
            t.push(op_graph(none, vec![p(d, &[2, 3])]));
            let empty = Op::Reduce {
                op,
                axes: vec![1],
                keepdims: false,
            };
            t.push(op_graph(empty, vec![p(d, &[2, 0])]));
        }
    }
    for op in [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin] {
        for d in NUMERIC {
            for (axis, dtype) in [(0, DType::I32), (1, DType::I64)] {
                t.push(op_graph(
                    Op::ArgReduce { op, axis, dtype },
                    vec![p(d, &[3, 4])],
                ));
            }
        }
    }
    for d in NUMERIC {
        for (exclusive, reverse) in [(false, false), (true, false), (false, true), (true, true)] {
            let op = Op::Cumsum {
                axis: 1,
                exclusive,
                reverse,
            };
            t.push(op_graph(op, vec![p(d, &[2, 5])]));
        }
    }
    // Linear algebra.
    for d in NUMERIC {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let op = Op::MatMul {
                transpose_a: ta,
                transpose_b: tb,
            };
            let a = if ta { s(&[2, 4, 3]) } else { s(&[2, 3, 4]) };
            let b = if tb { s(&[5, 4]) } else { s(&[4, 5]) };
            t.push(op_graph(op.clone(), vec![p(d, &a), p(d, &b)]));
            t.push(op_graph(op, vec![p(d, &[1, 7, 7]), p(d, &[2, 7, 7])]));
        }
        let empty_k = Op::MatMul {
            transpose_a: false,
            transpose_b: false,
        };
        t.push(op_graph(empty_k, vec![p(d, &[3, 0]), p(d, &[0, 2])]));
    }
    // solve and expm run as interpreter steps on the compiled backend: exact agreement.
    for d in FLOATS {
        t.push(op_graph(Op::Solve, vec![p(d, &[2, 3, 3]), p(d, &[3, 2])]));
        t.push(op_graph(Op::Expm, vec![p(d, &[2, 3, 3])]));
    }
    // Layout and indexing.
    for d in [DType::F32, DType::I64, DType::Bool, DType::U8] {
        let x = || p(d, &[3, 4]);
        t.push(op_graph(Op::Reshape(s(&[2, 6])), vec![x()]));
        t.push(op_graph(Op::Reshape(s(&[1, 3, 1, 4])), vec![x()]));
        t.push(op_graph(Op::Transpose(s(&[1, 0])), vec![x()]));
        t.push(op_graph(Op::BroadcastTo(s(&[2, 3, 4])), vec![x()]));
        let spec = SliceSpec {
            dims: vec![
                SliceDim {
                    start: 2,
                    step: -1,
                    len: 2,
                },
                SliceDim {
                    start: 0,
                    step: 2,
                    len: 2,
                },
            ],
        };
        t.push(op_graph(Op::Slice(spec), vec![x()]));
        t.push(op_graph(
            Op::Concat { axis: 1 },
            vec![x(), p(d, &[3, 1]), p(d, &[3, 2])],
        ));
        let value = match d {
            DType::Bool => Scalar::Bool(true),
            DType::F32 => Scalar::Float(-1.5),
            _ => Scalar::Int(7),
        };
        let pad = Op::Pad {
            paddings: vec![(1, 0), (2, 1)],
            value,
        };
        t.push(op_graph(pad, vec![x()]));
        t.push(op_graph(Op::Tile(s(&[2, 1])), vec![x()]));
        t.push(op_graph(Op::Roll { shift: -5, axis: 1 }, vec![x()]));
        let idx = c(&[2, 2], vec![2i64, 0, 1, 1]);
        let gather = Op::Gather {
            axis: 0,
            batch_dims: 0,
        };
        t.push(op_graph(gather, vec![x(), idx]));
        let batched = Op::Gather {
            axis: 1,
            batch_dims: 1,
        };
        t.push(op_graph(
            batched,
            vec![x(), c(&[3, 2], vec![3i32, 0, 1, 1, 2, 3])],
        ));
    }
    for d in NUMERIC {
        let op = Op::ScatterAdd {
            axis: 0,
            batch_dims: 0,
            dim: 3,
        };
        t.push(op_graph(
            op,
            vec![p(d, &[4, 2]), c(&[4], vec![2i64, 0, 2, 1])],
        ));
        t.push(op_graph(Op::TopK { k: 2 }, vec![p(d, &[3, 5])]));
        let sort = Op::ArgSort {
            axis: 0,
            descending: d == DType::F32,
        };
        t.push(op_graph(sort, vec![p(d, &[4, 3])]));
    }
    // Random.
    for (dist, dtypes) in [
        (
            Distribution::Normal {
                mean: 1.0,
                stddev: 2.0,
            },
            &FLOATS[..],
        ),
        (
            Distribution::TruncatedNormal {
                mean: 0.0,
                stddev: 0.5,
            },
            &FLOATS[..],
        ),
        (
            Distribution::Uniform {
                low: -1.0,
                high: 3.0,
            },
            &FLOATS[..],
        ),
        (
            Distribution::UniformInt { low: -3, high: 9 },
            &[DType::I32, DType::I64][..],
        ),
    ] {
        for &dtype in dtypes {
            let op = Op::Random {
                dist,
                dtype,
                shape: s(&[3, 4]),
                seed: 11,
            };
            t.push(op_graph(op, vec![]));
        }
    }
    for d in FLOATS {
        let op = Op::Categorical {
            num_samples: 5,
            dtype: DType::I64,
            seed: 5,
        };
        t.push(op_graph(op, vec![p(d, &[2, 3])]));
    }
    // Composites.
    for d in FLOATS {
        let x = || p(d, &[3, 4]);
        let comps = [
            (Composite::Softmax { axis: 0 }, vec![x()]),
            (Composite::LogSoftmax { axis: 1 }, vec![x()]),
            (Composite::SoftmaxCrossEntropy, vec![x(), x()]),
            (
                Composite::SparseSoftmaxCrossEntropy,
                vec![x(), c(&[3], vec![3i64, 0, 1])],
            ),
            (Composite::BinaryCrossEntropy { eps: 1e-7 }, vec![x(), x()]),
            (Composite::MeanSquaredError, vec![x(), x()]),
            (
                Composite::LayerNorm {
                    eps: 1e-5,
                    affine: true,
                },
                vec![x(), p(d, &[4]), p(d, &[4])],
            ),
            (
                Composite::LayerNorm {
                    eps: 1e-3,
                    affine: false,
                },
                vec![x()],
            ),
            (
                Composite::L2Normalize {
                    axis: 1,
                    eps: 1e-12,
                },
                vec![x()],
            ),
            (Composite::Dropout { rate: 0.25 }, vec![x(), x()]),
        ];
        for (comp, inputs) in comps {
            t.push(op_graph(Op::Composite(comp), inputs));
        }
    }
    t.extend(state_graphs());
    t.extend(fusion_graphs());
    t
}

/// Graphs written as text (the header is added).
pub(crate) fn parse_all(graphs: &[&str]) -> Vec<GraphDef> {
    graphs
        .iter()
        .map(|text| {
            format!("# flumen graph v1\n{text}")
                .parse()
                .unwrap_or_else(|e| panic!("{e}\n{text}"))
        })
        .collect()
}

/// Layout ops composed inside one kernel: nested strided slices, a transpose of a slice,
/// a broadcast of a slice, unit-axis reshapes, a reduction of composed views and a slice
/// assignment of a composed view (each checked with the last node fetched, so all fuse).
pub(crate) fn fusion_graphs() -> Vec<GraphDef> {
    parse_all(&[
        "%x = placeholder() {dtype=f32, shape=[9, 4]} : f32[9,4]
%s1 = slice(%x) {dims=[(1, 2, 4), (3, -1, 4)]} : f32[4,4]
%s2 = slice(%s1) {dims=[(1, 2, 2), (2, -2, 2)]} : f32[2,2]
%y = neg(%s2) : f32[2,2]",
        "%x = placeholder() {dtype=i32, shape=[5, 6]} : i32[5,6]
%s = slice(%x) {dims=[(4, -2, 3), (1, 2, 3)]} : i32[3,3]
%t = transpose(%s) {perm=[1, 0]} : i32[3,3]
%s2 = slice(%t) {dims=[(2, -1, 2), (1, 1, 2)]} : i32[2,2]
%b = broadcast_to(%s2) {shape=[3, 2, 2]} : i32[3,2,2]
%r = reshape(%b) {shape=[3, 1, 2, 2]} : i32[3,1,2,2]
%y = abs(%r) : i32[3,1,2,2]",
        "%x = placeholder() {dtype=f64, shape=[4, 1, 6]} : f64[4,1,6]
%r = reshape(%x) {shape=[4, 6]} : f64[4,6]
%s = slice(%r) {dims=[(3, -1, 4), (1, 2, 3)]} : f64[4,3]
%t = transpose(%s) {perm=[1, 0]} : f64[3,4]
%s2 = slice(%t) {dims=[(2, -2, 2), (1, 1, 3)]} : f64[2,3]
%m = reduce_sum(%s2) {axes=[1], keepdims=false} : f64[2]",
        "%init = constant() {value=f32[4,4] [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0]} : f32[4,4]
%v = variable(%init) {trainable=false} : f32[4,4]
%x = placeholder() {dtype=f32, shape=[5, 5]} : f32[5,5]
%s = slice(%x) {dims=[(4, -2, 2), (0, 3, 2)]} : f32[2,2]
%t = transpose(%s) {perm=[1, 0]} : f32[2,2]
%e = exp(%t) : f32[2,2]
%set = assign_slice(%v, %e) {dims=[(3, -2, 2), (1, 2, 2)]} : f32[4,4]",
    ])
}

/// Variables, reads, assigns, slice assigns and groups, in graphs written as text.
pub(crate) fn state_graphs() -> Vec<GraphDef> {
    let graphs = [
        // A training-step shape: read the variable, assign, read after, group.
        "%init = constant() {value=f32[2,3] [1.0, -2.0, 3.5, 0.0, -0.0, 7.25]} : f32[2,3]
%v = variable(%init) {trainable=true} : f32[2,3]
%x = placeholder() {dtype=f32, shape=[2,3]} : f32[2,3]
%y = mul(%v, %x) : f32[2,3]
%set = assign(%v, %y) : f32[2,3]
%after = read(%v) ^(%set) : f32[2,3]
%sum = add(%after, %v) : f32[2,3]
%train = no_op() ^(%set) : bool[]",
        // Slice assigns (one with negative steps) and a read in between.
        "%init = constant() {value=i32[3,4] [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]} : i32[3,4]
%v = variable(%init) {trainable=false} : i32[3,4]
%x = placeholder() {dtype=i32, shape=[2,2]} : i32[2,2]
%set1 = assign_slice(%v, %x) {dims=[(2, -1, 2), (3, -2, 2)]} : i32[3,4]
%mid = read(%v) ^(%set1) : i32[3,4]
%two = constant() {value=i32[] [2]} : i32[]
%x2 = mul(%x, %two) : i32[2,2]
%set2 = assign_slice(%v, %x2) {dims=[(0, 1, 2), (1, 1, 2)]} : i32[3,4]
%end = read(%v) ^(%set2) : i32[3,4]",
        // A variable initialised by a random op, updated from a reduction.
        "%init = random_normal() {mean=0.0, stddev=1.0, dtype=f64, shape=[4], seed=9} : f64[4]
%v = variable(%init) {trainable=true} : f64[4]
%x = placeholder() {dtype=f64, shape=[4]} : f64[4]
%s = reduce_sum(%x) {axes=[0], keepdims=true} : f64[1]
%upd = sub(%v, %s) : f64[4]
%set = assign(%v, %upd) : f64[4]
%group = no_op() ^(%set) : bool[]",
    ];
    parse_all(&graphs)
}

/// Every op variant, elementwise op, reduction, distribution and composite against the
/// interpreter, with ordinary and special feeds, unfused and fused.
#[test]
pub(crate) fn every_op_compiled_matches_interpreter() {
    let table = op_table();
    let mut variants = [false; OP_VARIANTS];
    let mut composites = [false; COMPOSITES];
    let mut distributions = [false; 4];
    let mut names = std::collections::BTreeSet::new();
    for def in &table {
        for n in def.nodes() {
            variants[variant_index(&n.op)] = true;
            names.insert(n.op.name());
            match &n.op {
                Op::Composite(c) => composites[composite_index(c)] = true,
                Op::Random { dist, .. } => distributions[distribution_index(dist)] = true,
                _ => {}
            }
        }
        for (k, (fetch, feeds)) in [
            (Fetch::All, Feeds::Random),
            (Fetch::Last, Feeds::Random),
            (Fetch::All, Feeds::Special),
            (Fetch::Last, Feeds::Special),
        ]
        .into_iter()
        .enumerate()
        {
            let covered = check_graph(def, 0x7AB1E + k as u64, fetch, feeds)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(covered.ran, "a table case fails on both backends:\n{def}");
        }
    }
    let missing: Vec<usize> = (0..OP_VARIANTS).filter(|&v| !variants[v]).collect();
    assert!(
        missing.is_empty(),
        "op variants without a case: {missing:?}"
    );
    assert!(composites.iter().all(|&c| c), "composites without a case");
    assert!(
        distributions.iter().all(|&d| d),
        "distributions without a case"
    );
    for u in UnaryOp::ALL {
        assert!(names.contains(u.name()), "{}", u.name());
    }
    for b in BinaryOp::ALL {
        assert!(names.contains(b.name()), "{}", b.name());
    }
    for r in ReduceOp::ALL {
        assert!(names.contains(r.name()), "{}", r.name());
    }
}
