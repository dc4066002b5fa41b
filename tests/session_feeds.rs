//! `Session::run_views` (borrowed feeds) against `Session::run` (owned feeds) and the
//! interpreter: the same results bit for bit on the compiled backend (the same steps run on
//! the same data), row-major views read in place, strided views and slices of a larger
//! batch, variables and random counters advancing the same way, and clear errors for a
//! wrong dtype or shape, a feed given twice, a missing feed or a non-placeholder.
//!
//! The MLP cases also cover the small-m matrix products (batch 1–4) with their fused
//! bias + ReLU epilogue: compiled results must match the interpreter within
//! `k·ε·Σ|a·b|`-style bounds, checked here as `1e-5·(1 + |x|)` for f32 (k = 64) and
//! `1e-12·(1 + |x|)` for f64.

use flumen::{Backend, DType, FeedView, Graph, GraphError, Session, Tensor, Value};
use ndarray::{Array2, ArrayD, IxDyn, s};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes each thread allocates (to show that borrowed feeds are not copied).
struct Counting;

thread_local! {
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count(n: usize) {
    let _ = BYTES.try_with(|b| b.set(b.get() + n));
}

// SAFETY: forwards to the system allocator; counting touches only a thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes this thread allocated while running `f`.
fn allocated<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = BYTES.with(Cell::get);
    let r = f();
    (BYTES.with(Cell::get) - before, r)
}

/// `relu(x·W1 + b1)·W2 + b2` with x `[batch, 64]`, W1 `[64, 37]`, W2 `[37, 5]`.
struct Mlp {
    graph: Graph,
    x: Tensor,
    logits: Tensor,
}

fn det(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn array(shape: &[usize], seed: u64, dtype: DType) -> Value {
    let data = det(shape.iter().product(), seed);
    match dtype {
        DType::F32 => Value::F32(
            ArrayD::from_shape_vec(IxDyn(shape), data.iter().map(|&x| x as f32).collect()).unwrap(),
        ),
        DType::F64 => Value::F64(ArrayD::from_shape_vec(IxDyn(shape), data).unwrap()),
        _ => unreachable!(),
    }
}

fn mlp(batch: usize, dtype: DType) -> Mlp {
    let graph = Graph::new();
    let x = graph.placeholder("x", dtype, &[batch, 64]).unwrap();
    let var = |name: &str, shape: &[usize], seed| {
        let v = array(shape, seed, dtype);
        match v {
            Value::F32(a) => graph.variable(name, a),
            Value::F64(a) => graph.variable(name, a),
            _ => unreachable!(),
        }
        .unwrap()
    };
    let w1 = var("w1", &[64, 37], 1);
    let b1 = var("b1", &[37], 2);
    let w2 = var("w2", &[37, 5], 3);
    let b2 = var("b2", &[5], 4);
    let hidden = (x.matmul(&w1).unwrap() + &b1).unwrap().relu().unwrap();
    let logits = (hidden.matmul(&w2).unwrap() + &b2).unwrap();
    Mlp { graph, x, logits }
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::F32(a) => a.iter().map(|&x| x as f64).collect(),
        Value::F64(a) => a.iter().copied().collect(),
        other => panic!("not a float value: {}", other.dtype()),
    }
}

fn bits(v: &Value) -> Vec<u64> {
    match v {
        Value::F32(a) => a.iter().map(|x| x.to_bits() as u64).collect(),
        Value::F64(a) => a.iter().map(|x| x.to_bits()).collect(),
        other => panic!("not a float value: {}", other.dtype()),
    }
}

#[test]
fn borrowed_feeds_equal_owned_feeds_and_the_interpreter() {
    for dtype in [DType::F32, DType::F64] {
        let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
        for batch in [1, 2, 3, 4, 7] {
            let m = mlp(batch, dtype);
            let input = array(&[batch, 64], 10 + batch as u64, dtype);
            let mut compiled = Session::new(&m.graph);
            let mut interp = Session::with_backend(&m.graph, Backend::Interpreter);
            let owned = compiled
                .run(&[(&m.x, input.clone())], &[&m.logits])
                .unwrap();
            let views = compiled
                .run_views(&[(&m.x, FeedView::from(&input))], &[&m.logits])
                .unwrap();
            assert_eq!(views[0].shape(), &[batch, 5]);
            assert_eq!(bits(&views[0]), bits(&owned[0]), "{dtype} batch {batch}");
            let want = interp
                .run_views(&[(&m.x, FeedView::from(&input))], &[&m.logits])
                .unwrap();
            for (g, w) in floats(&views[0]).iter().zip(floats(&want[0])) {
                assert!(
                    (g - w).abs() <= tol * (1.0 + w.abs()),
                    "{dtype} batch {batch}: compiled {g} vs interpreter {w}"
                );
            }
        }
    }
}

#[test]
fn slices_of_a_larger_batch_and_strided_views() {
    let m = mlp(3, DType::F32);
    let big: Array2<f32> =
        Array2::from_shape_vec((10, 64), det(640, 99).iter().map(|&x| x as f32).collect()).unwrap();
    let mut sess = Session::new(&m.graph);
    let run_owned = |sess: &mut Session, a: ndarray::ArrayView2<f32>| {
        let v = Value::F32(a.to_owned().into_dyn());
        sess.run(&[(&m.x, v)], &[&m.logits]).unwrap()
    };
    // Rows 4..7: a contiguous, row-major view into the middle of the batch (read in place).
    let rows = big.slice(s![4..7, ..]);
    assert!(rows.is_standard_layout());
    let got = sess
        .run_views(&[(&m.x, FeedView::from(rows.into_dyn()))], &[&m.logits])
        .unwrap();
    assert_eq!(bits(&got[0]), bits(&run_owned(&mut sess, rows)[0]));
    // Every third row: strided (copied to row-major order first).
    let strided = big.slice(s![..9;3, ..]);
    assert!(!strided.is_standard_layout());
    let got = sess
        .run_views(&[(&m.x, FeedView::from(strided.into_dyn()))], &[&m.logits])
        .unwrap();
    assert_eq!(bits(&got[0]), bits(&run_owned(&mut sess, strided)[0]));
    // A transposed (column-major) view.
    // [64, 3] row-major holding the transpose; its `.t()` is [3, 64] with strides (1, 3).
    let t = big.slice(s![..3, ..]).t().as_standard_layout().into_owned();
    let back = t.t(); // [3, 64] view of column-major storage
    assert!(!back.is_standard_layout());
    let got = sess
        .run_views(&[(&m.x, FeedView::from(back.into_dyn()))], &[&m.logits])
        .unwrap();
    assert_eq!(
        bits(&got[0]),
        bits(&run_owned(&mut sess, big.slice(s![..3, ..]))[0])
    );
    // From a borrowed ArrayD.
    let owned = big.slice(s![..3, ..]).to_owned().into_dyn();
    let got = sess
        .run_views(&[(&m.x, FeedView::from(&owned))], &[&m.logits])
        .unwrap();
    assert_eq!(
        bits(&got[0]),
        bits(&run_owned(&mut sess, big.slice(s![..3, ..]))[0])
    );
}

/// Assigns and random counters advance exactly as with owned feeds, run after run.
#[test]
fn variables_and_random_ops_advance_like_owned_runs() {
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let build = || {
            let g = Graph::new();
            let x = g.placeholder("x", DType::F64, &[4]).unwrap();
            let acc = g.variable("acc", ndarray::arr1(&[0.0f64; 4])).unwrap();
            let noise = g
                .random_normal(&[4], 0.0, 1.0, DType::F64, Some(7))
                .unwrap();
            let step = acc
                .assign((&acc + (&x * &noise).unwrap()).unwrap())
                .unwrap();
            (g, x, acc, step)
        };
        let (g1, x1, acc1, step1) = build();
        let (g2, x2, acc2, step2) = build();
        let mut owned = Session::with_backend(&g1, backend);
        let mut borrowed = Session::with_backend(&g2, backend);
        for r in 0..4 {
            let input = Value::F64(ndarray::arr1(&[1.0, -2.0, 0.5, r as f64]).into_dyn());
            let a = owned.run(&[(&x1, input.clone())], &[&step1]).unwrap();
            let b = borrowed
                .run_views(&[(&x2, FeedView::from(&input))], &[&step2])
                .unwrap();
            assert_eq!(bits(&a[0]), bits(&b[0]), "{backend:?} run {r}");
        }
        let a = owned.run(&[], &[&acc1]).unwrap();
        let b = borrowed.run_views(&[], &[&acc2]).unwrap();
        assert_eq!(bits(&a[0]), bits(&b[0]), "{backend:?}");
        assert_ne!(floats(&a[0]), vec![0.0; 4]);
    }
}

fn feed_error(r: flumen::Result<Vec<Value>>) -> (String, String) {
    match r {
        Err(GraphError::Feed { placeholder, msg }) => (placeholder, msg),
        Err(other) => panic!("expected a feed error, got {other}"),
        Ok(_) => panic!("expected a feed error, got results"),
    }
}

#[test]
fn bad_borrowed_feeds_are_clear_errors() {
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let m = mlp(1, DType::F32);
        let mut sess = Session::with_backend(&m.graph, backend);
        // Wrong dtype.
        let f64s = ArrayD::<f64>::zeros(IxDyn(&[1, 64]));
        let (name, msg) =
            feed_error(sess.run_views(&[(&m.x, FeedView::from(&f64s))], &[&m.logits]));
        assert_eq!(name, "x");
        assert_eq!(
            msg,
            "fed a f64 value but the placeholder is f32 (convert the array first)"
        );
        // Wrong shape (the whole error text names the placeholder and both shapes).
        let wrong = ArrayD::<f32>::zeros(IxDyn(&[2, 64]));
        let err = sess
            .run_views(&[(&m.x, FeedView::from(&wrong))], &[&m.logits])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "feed `x`: fed shape [2, 64] but the placeholder has shape [1, 64]"
        );
        let flat = ArrayD::<f32>::zeros(IxDyn(&[64]));
        let (_, msg) = feed_error(sess.run_views(&[(&m.x, FeedView::from(&flat))], &[&m.logits]));
        assert_eq!(msg, "fed shape [64] but the placeholder has shape [1, 64]");
        // Fed twice.
        let ok = ArrayD::<f32>::zeros(IxDyn(&[1, 64]));
        let (name, msg) = feed_error(sess.run_views(
            &[(&m.x, FeedView::from(&ok)), (&m.x, FeedView::from(&ok))],
            &[&m.logits],
        ));
        assert_eq!((name.as_str(), msg.as_str()), ("x", "fed twice"));
        // Not fed at all.
        let (name, msg) = feed_error(sess.run_views(&[], &[&m.logits]));
        assert_eq!(name, "x");
        assert!(msg.contains("must be fed a f32[1,64] value"), "{msg}");
        // Not a placeholder.
        let (name, msg) =
            feed_error(sess.run_views(&[(&m.logits, FeedView::from(&ok))], &[&m.logits]));
        assert_eq!(name, m.logits.name());
        assert!(msg.starts_with("only placeholders can be fed"), "{msg}");
        // A placeholder of another graph.
        let other = mlp(1, DType::F32);
        let (_, msg) = feed_error(sess.run_views(&[(&other.x, FeedView::from(&ok))], &[&m.logits]));
        assert!(msg.contains("another graph"), "{msg}");
        // The session still works after the errors.
        let out = sess
            .run_views(&[(&m.x, FeedView::from(&ok))], &[&m.logits])
            .unwrap();
        assert_eq!(out[0].shape(), &[1, 5]);
    }
}

#[test]
fn feed_view_reports_dtype_shape_and_copies() {
    let v = Value::F32(ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).into_dyn());
    let fv = FeedView::from(&v);
    assert_eq!(fv.dtype(), DType::F32);
    assert_eq!(fv.shape(), &[2, 2]);
    assert_eq!(bits(&fv.to_value()), bits(&v));
    let a = ndarray::arr2(&[[1i64, 2], [3, 4]]);
    let t = a.t().into_dyn();
    let fv = FeedView::from(t);
    assert_eq!(fv.dtype(), DType::I64);
    assert_eq!(
        fv.to_value()
            .as_array::<i64>()
            .unwrap()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![1, 3, 2, 4]
    );
}

/// A steady-state `run_views` allocates less than the feed itself (it reads the caller's
/// array in place); `run` with a cloned feed allocates the copy on top. Everything runs on
/// the one thread of a 1-thread pool, where the counter is.
#[test]
fn borrowed_feeds_are_not_copied() {
    let m = mlp(1000, DType::F32);
    let input = array(&[1000, 64], 5, DType::F32);
    let feed_bytes = 1000 * 64 * 4;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let mut sess = Session::new(&m.graph);
        let run_views = |sess: &mut Session| {
            sess.run_views(&[(&m.x, FeedView::from(&input))], &[&m.logits])
                .unwrap()
        };
        let run_owned =
            |sess: &mut Session| sess.run(&[(&m.x, input.clone())], &[&m.logits]).unwrap();
        run_views(&mut sess); // compile, initialise
        run_owned(&mut sess);
        let (views, a) = allocated(|| run_views(&mut sess));
        let (owned, b) = allocated(|| run_owned(&mut sess));
        assert_eq!(bits(&a[0]), bits(&b[0]));
        eprintln!("run_views: {views} bytes, run with a clone: {owned} bytes");
        assert!(views < feed_bytes, "run_views allocated {views} bytes");
        assert!(owned >= views + feed_bytes, "run allocated {owned} bytes");
    });
}
