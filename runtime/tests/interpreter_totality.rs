//! Property test: `eval_op` is total. For random ops (random attributes, including
//! out-of-range axes, indices and bad slices) on random inputs of every dtype, it returns
//! a value of exactly the type the op's shape rule gives, or an error — it never panics.

mod interpreter_support;

use flumen_frontend::op::{
    ArgReduceOp, BinaryOp, Distribution, Op, ReduceOp, SliceDim, SliceSpec, TensorType, UnaryOp,
};
use flumen_frontend::{DType, Scalar, Value};
use flumen_runtime::{EvalContext, eval_op};
use proptest::prelude::*;

/// Element values worth hitting: signs, zeros, fractions, non-finite.
const SPECIALS: [f64; 10] = [
    -2.5,
    -1.0,
    -0.0,
    0.0,
    0.5,
    1.0,
    3.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

fn dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..4)
}

/// A value of `dtype` and `shape` with elements drawn from [`SPECIALS`] (cast to the dtype).
fn value_of(dtype: DType, shape: Vec<usize>) -> impl Strategy<Value = Value> {
    let n: usize = shape.iter().product();
    prop::collection::vec(prop::sample::select(SPECIALS.to_vec()), n).prop_map(move |data| {
        Value::from_vec(&shape, data)
            .expect("data fills the shape")
            .cast(dtype)
    })
}

/// Integer indices in -2..5 of i32 or i64.
fn indices() -> impl Strategy<Value = Value> {
    (prop::bool::ANY, shape()).prop_flat_map(|(wide, shape)| {
        let n: usize = shape.iter().product();
        prop::collection::vec(-2i64..5, n).prop_map(move |data| {
            let v = Value::from_vec(&shape, data).expect("data fills the shape");
            if wide { v } else { v.cast(DType::I32) }
        })
    })
}

fn slice_spec() -> impl Strategy<Value = SliceSpec> {
    prop::collection::vec((0usize..4, -3i64..4, 0usize..4), 0..4).prop_map(|dims| SliceSpec {
        dims: dims
            .into_iter()
            .map(|(start, step, len)| SliceDim { start, step, len })
            .collect(),
    })
}

fn small() -> impl Strategy<Value = usize> {
    0usize..4
}

fn op() -> impl Strategy<Value = Op> {
    let dims = || prop::collection::vec(small(), 0..4);
    prop_oneof![
        prop::sample::select(UnaryOp::ALL.to_vec()).prop_map(Op::Unary),
        prop::sample::select(BinaryOp::ALL.to_vec()).prop_map(Op::Binary),
        Just(Op::Select),
        dtype().prop_map(Op::Cast),
        (
            prop::sample::select(ReduceOp::ALL.to_vec()),
            dims(),
            any::<bool>()
        )
            .prop_map(|(op, axes, keepdims)| Op::Reduce { op, axes, keepdims }),
        (any::<bool>(), small(), dtype()).prop_map(|(max, axis, dtype)| Op::ArgReduce {
            op: if max {
                ArgReduceOp::ArgMax
            } else {
                ArgReduceOp::ArgMin
            },
            axis,
            dtype,
        }),
        (small(), any::<bool>(), any::<bool>()).prop_map(|(axis, exclusive, reverse)| {
            Op::Cumsum {
                axis,
                exclusive,
                reverse,
            }
        }),
        (any::<bool>(), any::<bool>()).prop_map(|(transpose_a, transpose_b)| Op::MatMul {
            transpose_a,
            transpose_b,
        }),
        dims().prop_map(Op::Reshape),
        dims().prop_map(Op::Transpose),
        dims().prop_map(Op::BroadcastTo),
        slice_spec().prop_map(Op::Slice),
        small().prop_map(|axis| Op::Concat { axis }),
        (prop::collection::vec((small(), small()), 0..4), -2i64..300).prop_map(|(paddings, v)| {
            Op::Pad {
                paddings,
                value: Scalar::Int(v),
            }
        }),
        dims().prop_map(Op::Tile),
        (any::<i64>(), small()).prop_map(|(shift, axis)| Op::Roll { shift, axis }),
        (small(), small()).prop_map(|(axis, batch_dims)| Op::Gather { axis, batch_dims }),
        (small(), small(), small()).prop_map(|(axis, batch_dims, dim)| Op::ScatterAdd {
            axis,
            batch_dims,
            dim,
        }),
        small().prop_map(|k| Op::TopK { k }),
        Just(Op::Solve),
        Just(Op::Expm),
        (small(), any::<bool>()).prop_map(|(axis, descending)| Op::ArgSort { axis, descending }),
        (dims(), dtype(), any::<u64>()).prop_map(|(shape, dtype, seed)| Op::Random {
            dist: if dtype.is_float() {
                Distribution::Normal {
                    mean: 0.0,
                    stddev: 1.0,
                }
            } else {
                Distribution::UniformInt { low: -3, high: 4 }
            },
            dtype,
            shape,
            seed,
        }),
        (small(), dtype(), any::<u64>()).prop_map(|(num_samples, dtype, seed)| {
            Op::Categorical {
                num_samples,
                dtype,
                seed,
            }
        }),
        Just(Op::NoOp),
    ]
}

/// A shape related to `base` (so that inputs often broadcast or agree): `base` itself, a
/// suffix of it, `base` with some axes set to 1, or an unrelated shape.
fn shape_near(base: Vec<usize>) -> impl Strategy<Value = Vec<usize>> {
    let rank = base.len();
    let (suffix, ones) = (base.clone(), base.clone());
    prop_oneof![
        3 => Just(base),
        1 => (0..=rank).prop_map(move |start| suffix[start..].to_vec()),
        1 => prop::collection::vec(any::<bool>(), rank).prop_map(move |mask| {
            ones.iter().zip(mask).map(|(&d, one)| if one { 1 } else { d }).collect()
        }),
        1 => shape(),
    ]
}

/// Inputs for `op`: mostly one dtype and related shapes (so the shape rule often accepts
/// them), index tensors where the op takes indices, and sometimes one input too many or
/// too few.
fn case() -> impl Strategy<Value = (Op, Vec<Value>)> {
    (op(), dtype(), shape(), 0usize..4, -1i32..2).prop_flat_map(
        |(op, dtype, base, extra, arity_noise)| {
            let arity = match op.arity() {
                flumen_frontend::op::Arity::Fixed(n) => n,
                flumen_frontend::op::Arity::AtLeast(n) => n + extra,
            };
            let count = (arity as i32 + if extra == 0 { arity_noise } else { 0 }).max(0) as usize;
            let takes_indices = matches!(op, Op::Gather { .. } | Op::ScatterAdd { .. });
            let inputs: Vec<BoxedStrategy<Value>> = (0..count)
                .map(|i| {
                    let dtype = if takes_indices && i == 1 {
                        return indices().boxed();
                    } else if matches!(op, Op::Select) && i == 0 {
                        DType::Bool
                    } else {
                        dtype
                    };
                    shape_near(base.clone())
                        .prop_flat_map(move |s| value_of(dtype, s))
                        .boxed()
                })
                .collect();
            (Just(op), inputs)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn eval_op_returns_the_declared_type_or_an_error((op, inputs) in case(), counter in 0u64..3) {
        let refs: Vec<&Value> = inputs.iter().collect();
        let types: Vec<TensorType> = inputs
            .iter()
            .map(|v| TensorType::new(v.dtype(), v.shape()))
            .collect();
        let ctx = EvalContext { counter };
        match op.infer(&types) {
            Ok(out) => match eval_op(&op, &refs, &out, ctx) {
                Ok(value) => {
                    prop_assert_eq!(value.dtype(), out.dtype);
                    prop_assert_eq!(value.shape(), out.shape.as_slice());
                }
                // Only data-dependent failures: indices out of range, singular matrices.
                Err(e) => prop_assert!(
                    e.contains("out of range") || (op == Op::Solve && e.contains("singular")),
                    "{}: {}",
                    op.name(),
                    e
                ),
            },
            Err(_) => {
                // The rule rejects the inputs: whatever type is claimed, eval_op refuses.
                let claimed = types.first().cloned().unwrap_or(TensorType::new(DType::F32, vec![]));
                prop_assert!(eval_op(&op, &refs, &claimed, ctx).is_err());
            }
        }
    }
}
