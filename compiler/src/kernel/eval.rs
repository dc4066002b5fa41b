//! A reference evaluator for the fused-kernel IR: plain scalar loops with the op table's
//! scalar semantics. Code generators are tested against it, and fusion is tested by
//! comparing it with the graph interpreter.

use super::ir::{Expr, Kernel, PhaseKind};
use flumen_frontend::op::{BinaryKind, ReduceOp};
use flumen_frontend::{DType, Element, Value, map_value};

/// A scalar during evaluation: floats as f64 (rounded to f32 after every f32 op), integers
/// as i64 (wrapped to the dtype after every op), bools.
#[derive(Clone, Copy, Debug, PartialEq)]
enum S {
    F(f64),
    I(i64),
    B(bool),
}

fn wrap(d: DType, x: i64) -> i64 {
    match d {
        DType::I32 => x as i32 as i64,
        DType::U8 => x as u8 as i64,
        _ => x,
    }
}

fn round(d: DType, x: f64) -> f64 {
    if d == DType::F32 { x as f32 as f64 } else { x }
}

fn from_f64(d: DType, x: f64) -> S {
    match d {
        DType::F32 | DType::F64 => S::F(round(d, x)),
        DType::Bool => S::B(x != 0.0),
        DType::I64 => S::I(x as i64),
        DType::I32 => S::I(x as i32 as i64),
        DType::U8 => S::I(x as u8 as i64),
    }
}

fn cast(to: DType, s: S) -> S {
    match s {
        S::F(x) => from_f64(to, x),
        S::I(i) => match to {
            DType::F32 | DType::F64 => S::F(round(to, i as f64)),
            DType::Bool => S::B(i != 0),
            _ => S::I(wrap(to, i)),
        },
        S::B(b) => match to {
            DType::F32 | DType::F64 => S::F(b as u8 as f64),
            DType::Bool => S::B(b),
            _ => S::I(b as i64),
        },
    }
}

fn load(v: &Value, i: usize) -> S {
    match v {
        Value::F32(a) => S::F(a.as_slice_memory_order().expect("contiguous")[i] as f64),
        Value::F64(a) => S::F(a.as_slice_memory_order().expect("contiguous")[i]),
        Value::Bool(a) => S::B(a.as_slice_memory_order().expect("contiguous")[i]),
        other => {
            map_value!(other, a => S::I(a.as_slice_memory_order().expect("contiguous")[i].to_i64()))
        }
    }
}

fn store(v: &mut Value, i: usize, s: S) {
    fn put<T: Element>(a: &mut ndarray::ArrayD<T>, i: usize, x: T) {
        a.as_slice_memory_order_mut().expect("contiguous")[i] = x;
    }
    match (v, s) {
        (Value::F32(a), S::F(x)) => put(a, i, x as f32),
        (Value::F64(a), S::F(x)) => put(a, i, x),
        (Value::I32(a), S::I(x)) => put(a, i, x as i32),
        (Value::I64(a), S::I(x)) => put(a, i, x),
        (Value::U8(a), S::I(x)) => put(a, i, x as u8),
        (Value::Bool(a), S::B(x)) => put(a, i, x),
        (v, s) => panic!(
            "kernel IR type error: storing {s:?} into a {} buffer",
            v.dtype()
        ),
    }
}

fn unravel(mut linear: usize, shape: &[usize], out: &mut [usize]) {
    for (o, &d) in out.iter_mut().zip(shape).rev() {
        *o = linear % d;
        linear /= d;
    }
}

fn address(offset: i64, strides: &[i64], idx: &[usize]) -> i64 {
    offset
        + strides
            .iter()
            .zip(idx)
            .map(|(s, &i)| s * i as i64)
            .sum::<i64>()
}

fn reduce_init(op: ReduceOp, d: DType) -> S {
    match (op, d.is_float()) {
        (ReduceOp::Sum | ReduceOp::Mean, true) => S::F(0.0),
        (ReduceOp::Sum | ReduceOp::Mean, false) => S::I(0),
        (ReduceOp::Prod, true) => S::F(1.0),
        (ReduceOp::Prod, false) => S::I(1),
        (ReduceOp::Max, true) => S::F(f64::NEG_INFINITY),
        (ReduceOp::Min, true) => S::F(f64::INFINITY),
        (ReduceOp::Max, false) => S::I(match d {
            DType::I32 => i32::MIN as i64,
            DType::U8 => 0,
            _ => i64::MIN,
        }),
        (ReduceOp::Min, false) => S::I(match d {
            DType::I32 => i32::MAX as i64,
            DType::U8 => 255,
            _ => i64::MAX,
        }),
    }
}

fn reduce_step(op: ReduceOp, d: DType, acc: S, x: S) -> S {
    use flumen_frontend::op::BinaryOp as B;
    let b = match op {
        ReduceOp::Sum | ReduceOp::Mean => B::Add,
        ReduceOp::Prod => B::Mul,
        ReduceOp::Max => B::Maximum,
        ReduceOp::Min => B::Minimum,
    };
    binary(b, d, acc, x)
}

fn binary(op: flumen_frontend::op::BinaryOp, d: DType, a: S, b: S) -> S {
    match (op.kind(), a, b) {
        (BinaryKind::Arithmetic, S::F(x), S::F(y)) => S::F(round(d, op.eval_float(x, y))),
        (BinaryKind::Arithmetic, S::I(x), S::I(y)) => S::I(wrap(d, op.eval_int(x, y))),
        (BinaryKind::Comparison, S::F(x), S::F(y)) => S::B(op.compare(x, y)),
        (BinaryKind::Comparison, S::I(x), S::I(y)) => S::B(op.compare(x, y)),
        (_, S::B(x), S::B(y)) => S::B(op.eval_bool(x, y)),
        (_, a, b) => panic!("kernel IR type error: {} on {a:?}, {b:?}", op.name()),
    }
}

/// Run `kernel` on `bufs` (indexed by `BufId`; each a contiguous value of the access's
/// dtype). Panics on malformed IR (the IR is compiler output, not user input).
pub fn eval_kernel(kernel: &Kernel, bufs: &mut [Value]) {
    let mut outer_idx = vec![0; kernel.outer.len()];
    let mut inner_idx = vec![0; kernel.inner.len()];
    let inner_len = kernel.inner_len();
    for o in 0..kernel.outer_len() {
        unravel(o, &kernel.outer, &mut outer_idx);
        let mut results: Vec<S> = Vec::with_capacity(kernel.phases.len());
        for phase in &kernel.phases {
            let iterations = if phase.over_inner { inner_len } else { 1 };
            let mut acc = match &phase.kind {
                PhaseKind::Reduce { op, value } => Some(reduce_init(*op, phase.dtypes[value.0])),
                PhaseKind::Store { .. } => None,
            };
            for it in 0..iterations {
                if phase.over_inner {
                    unravel(it, &kernel.inner, &mut inner_idx);
                }
                let mut vals: Vec<S> = Vec::with_capacity(phase.exprs.len());
                for (e, &d) in phase.exprs.iter().zip(&phase.dtypes) {
                    let v = match e {
                        Expr::Load(a) => {
                            let acc = &kernel.accesses[*a];
                            let mut addr = address(acc.offset, &acc.outer_strides, &outer_idx);
                            if phase.over_inner {
                                addr += address(0, &acc.inner_strides, &inner_idx);
                            }
                            load(&bufs[acc.buf.0], addr as usize)
                        }
                        Expr::FloatConst(x) => from_f64(d, *x),
                        Expr::IntConst(i) => cast(d, S::I(*i)),
                        Expr::Unary(op, x) => match vals[x.0] {
                            S::F(f) => S::F(round(d, op.eval_float(f))),
                            S::I(i) => S::I(wrap(d, op.eval_int(i).expect("int unary"))),
                            S::B(b) => S::B(op.eval_int(b as i64).expect("bool unary") != 0),
                        },
                        Expr::Binary(op, a, b) => {
                            binary(*op, phase.dtypes[a.0], vals[a.0], vals[b.0])
                        }
                        Expr::Select(c, a, b) => {
                            if vals[c.0] == S::B(true) {
                                vals[a.0]
                            } else {
                                vals[b.0]
                            }
                        }
                        Expr::Cast(to, x) => cast(*to, vals[x.0]),
                        Expr::PhaseResult(p) => results[*p],
                    };
                    vals.push(v);
                }
                match &phase.kind {
                    PhaseKind::Reduce { op, value } => {
                        let d = phase.dtypes[value.0];
                        acc = Some(reduce_step(*op, d, acc.expect("reduce"), vals[value.0]));
                    }
                    PhaseKind::Store { stores } => {
                        for (a, v) in stores {
                            let access = &kernel.accesses[*a];
                            let mut addr =
                                address(access.offset, &access.outer_strides, &outer_idx);
                            if phase.over_inner {
                                addr += address(0, &access.inner_strides, &inner_idx);
                            }
                            store(&mut bufs[access.buf.0], addr as usize, vals[v.0]);
                        }
                    }
                }
            }
            results.push(acc.unwrap_or(S::B(false)));
        }
    }
}
