//! The executor's native interpreter steps (`exec/native.rs`: gather, scatter_add, concat,
//! pad, tile, roll, top_k, argsort, argmax/argmin, cumsum, random) against `eval_op`, through
//! [`run_steps`] on raw buffers exactly as an executable runs them: on random shapes
//! (empty axes included), every dtype, i32 and i64 indices, negative and extreme roll
//! shifts, every pad scalar kind, and out-of-range indices, whose error must be the
//! interpreter's, word for word. Results must be bit-identical (these ops move data or
//! accumulate in the interpreter's order).
//!
//! The test binary counts heap allocations per thread: a repeated native step must
//! allocate nothing (which also proves the native path ran — the `eval_op` fallback
//! allocates its input copies and its result).

mod interpreter_support;

use flumen_frontend::op::{ArgReduceOp, Distribution, Op, TensorType};
use flumen_frontend::{DType, GraphError, Scalar, Value, map_value};
use flumen_runtime::exec::{BufId, BufferDecl, Step, Storage, run_steps};
use flumen_runtime::{EvalContext, eval_op};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use interpreter_support::Rng;

/// Counts the allocations of the current thread.
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised
// thread-local without a destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(Cell::get)
}

// Test-specific draws on the shared generator (`interpreter_support::Rng`).
impl Rng {
    fn dtype(&mut self) -> DType {
        [
            DType::F32,
            DType::F64,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::Bool,
        ][self.range(0, 6)]
    }
    /// Values with ties, signed zeros, NaN and infinities among the floats, and extremes
    /// among the integers (so sums wrap).
    fn value(&mut self, dtype: DType, shape: &[usize]) -> Value {
        let n: usize = shape.iter().product();
        let f: Vec<f64> = (0..n)
            .map(|_| match self.range(0, 16) {
                0 => f64::NAN,
                1 => -0.0,
                2 => f64::INFINITY,
                3 => (self.range(0, 8) as f64) * 0.5,
                _ => (self.next() % 20_000) as f64 / 7.0 - 1400.0,
            })
            .collect();
        let i: Vec<i64> = (0..n)
            .map(|_| match self.range(0, 8) {
                0 => i64::MAX - self.range(0, 3) as i64,
                1 => i32::MAX as i64,
                _ => self.range(0, 600) as i64 - 300,
            })
            .collect();
        let v = match dtype {
            DType::F32 => Value::from_vec(shape, f.iter().map(|&x| x as f32).collect()),
            DType::F64 => Value::from_vec(shape, f),
            DType::I32 => Value::from_vec(shape, i.iter().map(|&x| x as i32).collect()),
            DType::I64 => Value::from_vec(shape, i),
            DType::U8 => Value::from_vec(shape, i.iter().map(|&x| x as u8).collect()),
            DType::Bool => Value::from_vec(shape, i.iter().map(|&x| x % 2 == 0).collect()),
        };
        v.expect("data fills the shape")
    }
    /// Indices for an axis of length `len`: in range, except (with `bad`) one random
    /// element set to `len` or a negative number.
    fn indices(&mut self, shape: &[usize], len: usize, bad: bool) -> Value {
        let n: usize = shape.iter().product();
        let mut data: Vec<i64> = (0..n)
            .map(|_| {
                if len == 0 {
                    0
                } else {
                    self.range(0, len) as i64
                }
            })
            .collect();
        if bad && n > 0 {
            let at = self.range(0, n);
            data[at] = if self.range(0, 2) == 0 {
                len as i64
            } else {
                -1 - self.range(0, 5) as i64
            };
        }
        let v = Value::from_vec(shape, data).expect("fills");
        if self.range(0, 2) == 0 {
            v.cast(DType::I32)
        } else {
            v
        }
    }
}

/// The value's row-major bytes.
fn bytes(v: &Value) -> Vec<u8> {
    map_value!(v, a => {
        let a = a.as_standard_layout();
        let s = a.as_slice().expect("standard layout");
        // SAFETY: plain old data (bools are single bytes).
        unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) }
            .to_vec()
    })
}

/// 64-byte-aligned storage holding `data`, padded to at least one word.
fn storage(data: &[u8], len: usize) -> Vec<[u64; 8]> {
    let mut words = vec![[0x5a5a_5a5a_5a5a_5a5au64; 8]; len.div_ceil(64).max(1)];
    // SAFETY: the words hold at least `len` bytes.
    let dst = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), len) };
    dst[..data.len()].copy_from_slice(data);
    words
}

/// Run `op` as one interpreter step of an executable on raw buffers holding `inputs`;
/// returns the output's bytes (or the error's text) and the allocations of a second,
/// identical run of the same step.
fn run_step(op: &Op, inputs: &[Value], ty: &TensorType) -> (Result<Vec<u8>, String>, usize) {
    let mut bufs: Vec<Vec<[u64; 8]>> = inputs
        .iter()
        .map(|v| {
            let data = bytes(v);
            storage(&data, data.len())
        })
        .collect();
    let out_bytes = ty.numel() * ty.dtype.size_bytes();
    bufs.push(storage(&[], out_bytes));
    let ptrs: Vec<*mut u8> = bufs.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
    let mut decls: Vec<BufferDecl> = inputs
        .iter()
        .map(|v| BufferDecl {
            dtype: v.dtype(),
            numel: v.len(),
            storage: Storage::Arena { offset: 0 },
        })
        .collect();
    decls.push(BufferDecl {
        dtype: ty.dtype,
        numel: ty.numel(),
        storage: Storage::Arena { offset: 0 },
    });
    let steps = [Step::Interpret {
        op: op.clone(),
        name: "node".into(),
        inputs: inputs
            .iter()
            .enumerate()
            .map(|(i, v)| (BufId(i), TensorType::new(v.dtype(), v.shape())))
            .collect(),
        output: BufId(inputs.len()),
        ty: ty.clone(),
    }];
    let mut args = Vec::new();
    let mut run = || {
        // SAFETY: each buffer holds its declared elements; the output has room for `ty`.
        unsafe { run_steps(&steps, &decls, &ptrs, &mut |_| 3, &mut args) }
            .map_err(|e| e.to_string())
    };
    let first = run();
    let before = allocs();
    let second = run();
    let during = allocs() - before;
    assert_eq!(first.is_ok(), second.is_ok());
    // SAFETY: the output storage holds `out_bytes`.
    let out = unsafe { std::slice::from_raw_parts(ptrs[inputs.len()], out_bytes) }.to_vec();
    (first.map(|()| out), during)
}

/// Check one case: native step vs `eval_op` (counter 3), bit for bit or error for error;
/// a successful repeated native step allocates nothing. Returns false when the op's shape
/// rule rejects the inputs (no case).
fn check(op: &Op, inputs: &[Value]) -> bool {
    let types: Vec<TensorType> = inputs
        .iter()
        .map(|v| TensorType::new(v.dtype(), v.shape()))
        .collect();
    let Ok(ty) = op.infer(&types) else {
        return false;
    };
    let refs: Vec<&Value> = inputs.iter().collect();
    let expected = eval_op(op, &refs, &ty, EvalContext { counter: 3 })
        .map(|v| bytes(&v))
        .map_err(|m| GraphError::runtime(op.name(), "node", m).to_string());
    let (got, allocs) = run_step(op, inputs, &ty);
    let shapes: Vec<&[usize]> = inputs.iter().map(Value::shape).collect();
    assert_eq!(got, expected, "{op:?} on {types:?} ({shapes:?})");
    if got.is_ok() {
        assert_eq!(
            allocs, 0,
            "{op:?} on {types:?}: the repeated step allocated"
        );
    }
    true
}

#[test]
fn gather_and_scatter_add_match_the_interpreter() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut cases, mut errors) = (0, 0);
    for case in 0..600 {
        let rank = rng.range(1, 5);
        let ps = rng.shape(rank, 4);
        let axis = rng.range(0, rank);
        let bd = rng.range(0, axis + 1);
        let mut is = ps[..bd].to_vec();
        let extra = rng.range(0, 3);
        is.extend(rng.shape(extra, 3));
        let bad = case % 5 == 0;
        let idx = rng.indices(&is, ps[axis], bad);
        let dtype = rng.dtype();
        let params = rng.value(dtype, &ps);
        let gather = Op::Gather {
            axis,
            batch_dims: bd,
        };
        cases += check(&gather, &[params.clone(), idx.clone()]) as usize;
        // scatter_add: updates shaped like gather's output, summed into `dim = ps[axis]`.
        let us = [&ps[..axis], &is[bd..], &ps[axis + 1..]].concat();
        let updates = rng.value(dtype, &us);
        let scatter = Op::ScatterAdd {
            axis,
            batch_dims: bd,
            dim: ps[axis],
        };
        let ok = check(&scatter, &[updates.clone(), idx.clone()]);
        cases += ok as usize;
        if ok && bad && !idx.is_empty() {
            errors += 1;
        }
    }
    assert!(cases > 1000, "only {cases} valid cases");
    assert!(errors > 50, "only {errors} out-of-range cases");
}

#[test]
fn a_bad_index_is_the_interpreters_error() {
    let params = Value::from_vec(&[3, 2], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let idx = Value::from_vec(&[2], vec![1i64, 7]).unwrap();
    let op = Op::Gather {
        axis: 0,
        batch_dims: 0,
    };
    let ty = TensorType::new(DType::F32, vec![2, 2]);
    let (got, _) = run_step(&op, &[params, idx], &ty);
    let msg = got.unwrap_err();
    assert!(
        msg.contains("gather")
            && msg.contains("node")
            && msg.contains("index 7 is out of range for axis 0 of length 3"),
        "{msg}"
    );
}

#[test]
fn layout_ops_match_the_interpreter() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut cases = 0;
    for _ in 0..400 {
        let dtype = rng.dtype();
        let rank = rng.range(0, 5);
        let shape = rng.shape(rank, 4);
        let x = rng.value(dtype, &shape);
        if rank > 0 {
            let axis = rng.range(0, rank);
            // concat: 1..=3 inputs differing on `axis`.
            let inputs: Vec<Value> = (0..rng.range(1, 4))
                .map(|_| {
                    let mut s = shape.clone();
                    s[axis] = rng.range(0, 4);
                    rng.value(dtype, &s)
                })
                .collect();
            cases += check(&Op::Concat { axis }, &inputs) as usize;
            let shift = match rng.range(0, 6) {
                0 => i64::MIN,
                1 => i64::MAX,
                _ => rng.range(0, 21) as i64 - 10,
            };
            cases += check(&Op::Roll { shift, axis }, std::slice::from_ref(&x)) as usize;
        }
        let paddings: Vec<(usize, usize)> = (0..rank)
            .map(|_| (rng.range(0, 3), rng.range(0, 3)))
            .collect();
        let value = match rng.range(0, 4) {
            0 => Scalar::Float(-2.75),
            1 => Scalar::Int(-3),
            2 => Scalar::Int(i64::MAX - 1),
            _ => Scalar::Bool(true),
        };
        cases += check(&Op::Pad { paddings, value }, std::slice::from_ref(&x)) as usize;
        let multiples: Vec<usize> = (0..rank).map(|_| rng.range(0, 4)).collect();
        cases += check(&Op::Tile(multiples), std::slice::from_ref(&x)) as usize;
    }
    assert!(cases > 1200, "only {cases} valid cases");
}

#[test]
fn sorts_and_cumsum_match_the_interpreter() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut cases = 0;
    for _ in 0..400 {
        let dtype = rng.dtype();
        let rank = rng.range(1, 4);
        let shape = rng.shape(rank, 6);
        let x = rng.value(dtype, &shape);
        let k = rng.range(0, shape[rank - 1] + 1);
        cases += check(&Op::TopK { k }, std::slice::from_ref(&x)) as usize;
        let axis = rng.range(0, rank);
        let descending = rng.range(0, 2) == 0;
        cases += check(&Op::ArgSort { axis, descending }, std::slice::from_ref(&x)) as usize;
        let (exclusive, reverse) = (rng.range(0, 2) == 0, rng.range(0, 2) == 0);
        let cumsum = Op::Cumsum {
            axis,
            exclusive,
            reverse,
        };
        cases += check(&cumsum, std::slice::from_ref(&x)) as usize;
        for op in [ArgReduceOp::ArgMax, ArgReduceOp::ArgMin] {
            let dtype = if rng.range(0, 2) == 0 {
                DType::I32
            } else {
                DType::I64
            };
            let arg = Op::ArgReduce { op, axis, dtype };
            cases += check(&arg, std::slice::from_ref(&x)) as usize;
        }
    }
    assert!(cases > 1500, "only {cases} valid cases");
}

#[test]
fn random_ops_match_the_interpreter() {
    let mut rng = Rng(0x0bad_cafe_f00d_d00d);
    let dists = [
        Distribution::Normal {
            mean: 1.0,
            stddev: 2.0,
        },
        Distribution::TruncatedNormal {
            mean: 0.0,
            stddev: 0.5,
        },
        Distribution::Uniform {
            low: -1.0,
            high: 3.0,
        },
        Distribution::UniformInt { low: -5, high: 9 },
        Distribution::UniformInt {
            low: i64::MIN,
            high: i64::MAX,
        },
    ];
    let mut cases = 0;
    for _ in 0..60 {
        for dist in &dists {
            let rank = rng.range(0, 4);
            let op = Op::Random {
                dist: *dist,
                dtype: rng.dtype(),
                shape: rng.shape(rank, 5),
                seed: rng.next(),
            };
            cases += check(&op, &[]) as usize;
        }
    }
    assert!(cases > 50, "only {cases} valid cases");
}

#[test]
fn the_counter_sees_the_copying_fallback() {
    // expm has no native path: its repeated step copies inputs into values.
    let x = Value::from_vec(&[2, 2], vec![0.0f64, 1.0, -1.0, 0.0]).unwrap();
    let ty = TensorType::new(DType::F64, vec![2, 2]);
    let want = eval_op(&Op::Expm, &[&x], &ty, EvalContext::default()).unwrap();
    let (got, allocs) = run_step(&Op::Expm, &[x], &ty);
    assert_eq!(got.unwrap(), bytes(&want));
    assert!(allocs > 0, "the fallback step should allocate");
}

#[test]
fn an_output_overlapping_its_input_falls_back_to_copies() {
    // Output and input in one buffer (no planner does this; the native path must not
    // alias them and the copying fallback must still be right).
    let x: Vec<f32> = (0..12).map(|i| i as f32).collect();
    let mut buf = storage(&bytes(&Value::from_vec(&[3, 4], x.clone()).unwrap()), 48);
    let p: *mut u8 = buf.as_mut_ptr().cast();
    let ty = TensorType::new(DType::F32, vec![3, 4]);
    let steps = [Step::Interpret {
        op: Op::Roll { shift: 1, axis: 1 },
        name: "roll".into(),
        inputs: vec![(BufId(0), ty.clone())],
        output: BufId(0),
        ty,
    }];
    let decls = [BufferDecl {
        dtype: DType::F32,
        numel: 12,
        storage: Storage::Arena { offset: 0 },
    }];
    // SAFETY: the buffer holds 12 f32.
    unsafe { run_steps(&steps, &decls, &[p], &mut |_| 0, &mut Vec::new()) }.unwrap();
    // SAFETY: as above.
    let got = unsafe { std::slice::from_raw_parts(p as *const f32, 12) };
    let want: Vec<f32> = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10]
        .iter()
        .map(|&i| i as f32)
        .collect();
    assert_eq!(got, want.as_slice());
}

#[test]
fn scatter_add_sums_like_the_wide_reference() {
    // The slice-level scatter_add accumulates f32 in f64 scratch and every other dtype in
    // place; both must equal "sum in the wide type (f64, or wrapping i64) in the updates'
    // order, convert once". Independent reference on wrap- and rounding-prone data.
    let mut rng = Rng(0x5ca7_7e2a_dd00_0001);
    for case in 0..300 {
        let dtype = [
            DType::F32,
            DType::F64,
            DType::I32,
            DType::I64,
            DType::U8,
            DType::Bool,
        ][case % 5];
        let (m, inner, dim) = (rng.range(0, 40), rng.range(1, 4), rng.range(1, 6));
        let u = rng.value(dtype, &[m, inner]);
        let ids: Vec<i64> = (0..m).map(|_| rng.range(0, dim) as i64).collect();
        let mut f = vec![0.0f64; dim * inner];
        let mut w = vec![0i64; dim * inner];
        let wide_f: Vec<f64> = u.to_f64_vec();
        let wide_i: Vec<i64> = match &u {
            Value::I32(a) => a.iter().map(|&x| x as i64).collect(),
            Value::I64(a) => a.iter().copied().collect(),
            Value::U8(a) => a.iter().map(|&x| x as i64).collect(),
            Value::Bool(a) => a.iter().map(|&x| x as i64).collect(),
            _ => Vec::new(),
        };
        for (i, &p) in ids.iter().enumerate() {
            for j in 0..inner {
                let (at, from) = (p as usize * inner + j, i * inner + j);
                f[at] += wide_f[from];
                if !wide_i.is_empty() {
                    w[at] = w[at].wrapping_add(wide_i[from]);
                }
            }
        }
        let shape = [dim, inner];
        let want = match dtype {
            DType::F32 => Value::from_vec(&shape, f.iter().map(|&x| x as f32).collect()),
            DType::F64 => Value::from_vec(&shape, f),
            DType::I32 => Value::from_vec(&shape, w.iter().map(|&x| x as i32).collect()),
            DType::I64 => Value::from_vec(&shape, w),
            DType::U8 => Value::from_vec(&shape, w.iter().map(|&x| x as u8).collect()),
            DType::Bool => Value::from_vec(&shape, w.iter().map(|&x| x != 0).collect()),
        }
        .unwrap();
        let op = Op::ScatterAdd {
            axis: 0,
            batch_dims: 0,
            dim,
        };
        let idx = Value::from_vec(&[m], ids).unwrap();
        let ty = TensorType::new(dtype, shape.to_vec());
        let got = eval_op(&op, &[&u, &idx], &ty, EvalContext::default()).unwrap();
        assert_eq!(
            bytes(&got),
            bytes(&want),
            "{dtype} [{m}, {inner}] into {dim}"
        );
        assert!(check(&op, &[u, idx]));
    }
}

#[test]
fn argsort_and_top_k_equal_a_stable_sort() {
    // The sorting kernels sort (value, index) pairs unstably with the index as tie-break;
    // that must equal a stable sort by value (NaN above every number) — checked against
    // std's stable sort on tie- and NaN-heavy data, every axis, both directions.
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    for case in 0..200 {
        let dtype = [DType::F32, DType::F64, DType::I32, DType::U8][case % 4];
        let rank = rng.range(1, 4);
        let shape = rng.shape(rank, 7);
        let x = rng.value(dtype, &shape);
        let vals = x.to_f64_vec(); // exact for these dtypes
        let axis = rng.range(0, rank);
        let descending = rng.range(0, 2) == 0;
        let (n, inner) = (shape[axis], shape[axis + 1..].iter().product::<usize>());
        let mut want = vec![0i64; vals.len()];
        let cmp = |a: f64, b: f64| match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ => a.partial_cmp(&b).unwrap(),
        };
        if n * inner > 0 {
            for (o, chunk) in want.chunks_mut(n * inner).enumerate() {
                for j in 0..inner {
                    let at = |i: usize| vals[o * n * inner + i * inner + j];
                    let mut order: Vec<usize> = (0..n).collect();
                    order.sort_by(|&a, &b| {
                        let c = cmp(at(a), at(b));
                        if descending { c.reverse() } else { c }
                    });
                    for (t, &i) in order.iter().enumerate() {
                        chunk[t * inner + j] = i as i64;
                    }
                }
            }
        }
        let op = Op::ArgSort { axis, descending };
        let got = eval_op(
            &op,
            &[&x],
            &TensorType::new(DType::I64, shape.clone()),
            EvalContext::default(),
        )
        .unwrap();
        assert_eq!(
            bytes(&got),
            bytes(&Value::from_vec(&shape, want.clone()).unwrap()),
            "{dtype} {shape:?} axis {axis} desc {descending}"
        );
        assert!(check(&op, std::slice::from_ref(&x)));
        // top_k = the first k of the descending stable sort along the last axis.
        if axis == rank - 1 && descending {
            let k = rng.range(0, n + 1);
            let mut kshape = shape.clone();
            kshape[rank - 1] = k;
            let firsts: Vec<i64> = if n == 0 {
                Vec::new()
            } else {
                want.chunks(n).flat_map(|r| r[..k].to_vec()).collect()
            };
            let got = eval_op(
                &Op::TopK { k },
                &[&x],
                &TensorType::new(DType::I64, kshape.clone()),
                EvalContext::default(),
            )
            .unwrap();
            assert_eq!(
                bytes(&got),
                bytes(&Value::from_vec(&kshape, firsts).unwrap()),
                "top_k {k} of {shape:?}"
            );
            assert!(check(&Op::TopK { k }, std::slice::from_ref(&x)));
        }
    }
}

#[test]
fn cumsum_equals_a_lane_by_lane_reference() {
    // Lanes are accumulated in tiles; check every mode against a plain per-lane loop, with
    // inner sizes across tile boundaries (f64: the wide type itself; i32: wrapping).
    let mut rng = Rng(0x7777_1234_abcd_0042);
    for case in 0..120 {
        let dtype = [DType::F64, DType::I32][case % 2];
        let (outer, n, inner) = (rng.range(0, 3), rng.range(0, 9), rng.range(1, 40));
        let x = rng.value(dtype, &[outer, n, inner]);
        let (exclusive, reverse) = (case % 3 == 0, case % 4 < 2);
        let vf = x.to_f64_vec();
        let vi: Vec<i64> = match &x {
            Value::I32(a) => a.iter().map(|&v| v as i64).collect(),
            _ => Vec::new(),
        };
        let (mut wf, mut wi) = (vf.clone(), vi.clone());
        for o in 0..outer {
            for j in 0..inner {
                let (mut af, mut ai) = (0.0f64, 0i64);
                for s in 0..n {
                    let t = if reverse { n - 1 - s } else { s };
                    let at = (o * n + t) * inner + j;
                    if exclusive {
                        wf[at] = af;
                        af += vf[at];
                        if !vi.is_empty() {
                            wi[at] = ai;
                            ai = ai.wrapping_add(vi[at]);
                        }
                    } else {
                        af += vf[at];
                        wf[at] = af;
                        if !vi.is_empty() {
                            ai = ai.wrapping_add(vi[at]);
                            wi[at] = ai;
                        }
                    }
                }
            }
        }
        let shape = [outer, n, inner];
        let want = match dtype {
            DType::F64 => Value::from_vec(&shape, wf),
            _ => Value::from_vec(&shape, wi.iter().map(|&v| v as i32).collect()),
        }
        .unwrap();
        let op = Op::Cumsum {
            axis: 1,
            exclusive,
            reverse,
        };
        let ty = TensorType::new(dtype, shape.to_vec());
        let got = eval_op(&op, &[&x], &ty, EvalContext::default()).unwrap();
        assert_eq!(
            bytes(&got),
            bytes(&want),
            "{dtype} {shape:?} {exclusive} {reverse}"
        );
        assert!(check(&op, std::slice::from_ref(&x)));
    }
}

#[test]
fn steps_the_shape_rule_rejects_give_the_interpreters_error() {
    // A step whose recorded types or attributes break the op's rule (a corrupt plan: the
    // compiler never emits one) must not run natively: it falls back to `eval_op`, whose
    // error it reports.
    let b = Value::from_vec(&[2, 3], vec![true, false, true, true, false, false]).unwrap();
    let i = Value::from_vec(&[2, 3], vec![1i32, 2, 3, 4, 5, 6]).unwrap();
    let ids = Value::from_vec(&[2], vec![0i64, 1]).unwrap();
    let t = |d: DType, s: &[usize]| TensorType::new(d, s.to_vec());
    let cases: Vec<(Op, Vec<Value>, TensorType)> = vec![
        (
            Op::ScatterAdd {
                axis: 0,
                batch_dims: 0,
                dim: 2,
            },
            vec![b.clone(), ids.clone()],
            t(DType::Bool, &[2, 3]),
        ),
        (
            Op::Cumsum {
                axis: 1,
                exclusive: false,
                reverse: false,
            },
            vec![b.clone()],
            t(DType::Bool, &[2, 3]),
        ),
        (Op::TopK { k: 2 }, vec![b.clone()], t(DType::I64, &[2, 2])),
        (
            Op::ArgSort {
                axis: 1,
                descending: false,
            },
            vec![b.clone()],
            t(DType::I64, &[2, 3]),
        ),
        (
            Op::ArgReduce {
                op: ArgReduceOp::ArgMax,
                axis: 1,
                dtype: DType::I64,
            },
            vec![b.clone()],
            t(DType::I64, &[2]),
        ),
        (
            Op::Pad {
                paddings: vec![(0, 0), (1, 0)],
                value: Scalar::Float(2.5),
            },
            vec![i.clone()],
            t(DType::I32, &[2, 4]),
        ),
        (
            Op::Gather {
                axis: 1,
                batch_dims: 0,
            },
            vec![i.clone(), ids.clone()],
            t(DType::I32, &[2, 3]),
        ),
        (
            Op::Tile(vec![1, 2]),
            vec![i.clone()],
            t(DType::I32, &[2, 5]),
        ),
        (
            Op::Random {
                dist: Distribution::Normal {
                    mean: 0.0,
                    stddev: 1.0,
                },
                dtype: DType::I32,
                shape: vec![3],
                seed: 1,
            },
            vec![],
            t(DType::I32, &[3]),
        ),
        (
            Op::Random {
                dist: Distribution::UniformInt {
                    low: 0,
                    high: 1 << 40,
                },
                dtype: DType::I32,
                shape: vec![3],
                seed: 1,
            },
            vec![],
            t(DType::I32, &[3]),
        ),
    ];
    for (op, inputs, ty) in cases {
        let refs: Vec<&Value> = inputs.iter().collect();
        let want = eval_op(&op, &refs, &ty, EvalContext { counter: 3 })
            .map(|v| bytes(&v))
            .map_err(|m| GraphError::runtime(op.name(), "node", m).to_string());
        assert!(want.is_err(), "{op:?} should be rejected");
        let (got, _) = run_step(&op, &inputs, &ty);
        assert_eq!(got, want, "{op:?}");
    }
}
