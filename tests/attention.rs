//! Attention with structured masks (`flumen::nn::attention`): the blockified BigBird and
//! ETC builders equal the naive masked dense form (f32 ≤ 1e-5, f64 ≤ 1e-12) for several
//! sizes, block sizes, random-block counts and with padding, including MODELS.md §4a/§4b's
//! cases; their gradients match finite differences; the layouts round-trip through the
//! masks the compiler reads; bad arguments are errors.

mod gradcheck;

use flumen::nn::attention::{
    AttentionMask, BigBirdLayout, EtcLayout, attention, attention_with_padding, bigbird_blockified,
    etc_blockified, padding_terms,
};
use flumen::{Backend, DType, Graph, Session, Tensor, Value};
use gradcheck::Rng;

fn random_value(dtype: DType, shape: &[usize], rng: &mut Rng) -> Value {
    let n = shape.iter().product();
    Value::from_vec(shape, rng.vec(n, -1.0, 1.0))
        .unwrap()
        .cast(dtype)
}

/// `valid[b, i] = i < lengths[b]`.
fn valid_value(lengths: &[usize], n: usize) -> Value {
    let data: Vec<bool> = lengths
        .iter()
        .flat_map(|&l| (0..n).map(move |i| i < l))
        .collect();
    Value::from_vec(&[lengths.len(), n], data).unwrap()
}

struct Case {
    g: Graph,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    valid: Option<Tensor>,
}

fn case(dtype: DType, shape: [usize; 4], lengths: Option<&[usize]>, seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let g = Graph::new();
    let q = g.constant(random_value(dtype, &shape, &mut rng)).unwrap();
    let k = g.constant(random_value(dtype, &shape, &mut rng)).unwrap();
    let v = g.constant(random_value(dtype, &shape, &mut rng)).unwrap();
    let valid = lengths.map(|l| g.constant(valid_value(l, shape[2])).unwrap());
    Case { g, q, k, v, valid }
}

fn max_diff(g: &Graph, a: &Tensor, b: &Tensor, backend: Backend) -> f64 {
    let mut sess = Session::with_backend(g, backend);
    let out = sess.run(&[], &[a, b]).unwrap();
    let (x, y) = (out[0].to_f64_vec(), out[1].to_f64_vec());
    assert_eq!(x.len(), y.len());
    x.iter()
        .zip(&y)
        .map(|(a, b)| {
            assert!(a.is_finite() && b.is_finite(), "non-finite output");
            (a - b).abs()
        })
        .fold(0.0, f64::max)
}

fn tolerance(dtype: DType) -> f64 {
    if dtype == DType::F64 { 1e-12 } else { 1e-5 }
}

/// BigBird: blockified == dense under the layout's mask.
fn check_bigbird(
    dtype: DType,
    shape: [usize; 4],
    block: usize,
    r: usize,
    lengths: Option<&[usize]>,
    backend: Backend,
) {
    let c = case(
        dtype,
        shape,
        lengths,
        (shape[2] * 31 + block * 7 + r) as u64,
    );
    let mask = AttentionMask::BigBird {
        block,
        window_blocks: 3,
        global_blocks: 2,
        random_blocks: r,
        seed: 42,
    };
    let layout =
        BigBirdLayout::generate(shape[1], shape[2], block, 3, 2, r, 42).expect("a valid plan");
    let scale = 1.0 / (shape[3] as f64).sqrt();
    let (dense, blocked) = match &c.valid {
        None => (
            attention(&c.q, &c.k, &c.v, &mask).unwrap(),
            bigbird_blockified(&c.q, &c.k, &c.v, &layout, None, scale).unwrap(),
        ),
        Some(valid) => {
            let (kb, qv) = padding_terms(valid, shape[0], shape[2], dtype).unwrap();
            let b = bigbird_blockified(&c.q, &c.k, &c.v, &layout, Some(&kb), scale).unwrap();
            (
                attention_with_padding(&c.q, &c.k, &c.v, &mask, valid).unwrap(),
                (&b * &qv).unwrap(),
            )
        }
    };
    let diff = max_diff(&c.g, &dense, &blocked, backend);
    assert!(
        diff <= tolerance(dtype),
        "BigBird {dtype} {shape:?} b={block} r={r} padding={lengths:?}: max diff {diff:e}"
    );
}

#[test]
fn bigbird_models_md_case_f64_and_f32() {
    // MODELS.md §4a: B=2, H=2, nb=16, b=8, d=16, r=3.
    check_bigbird(
        DType::F64,
        [2, 2, 128, 16],
        8,
        3,
        None,
        Backend::Interpreter,
    );
    check_bigbird(DType::F32, [2, 2, 128, 16], 8, 3, None, Backend::Compiled);
    // ... and the NumPy port's nb=12, b=4, d=8, r=2.
    check_bigbird(DType::F64, [1, 2, 48, 8], 4, 2, None, Backend::Interpreter);
}

#[test]
fn bigbird_sizes_blocks_and_random_counts() {
    for (n, b, r) in [(20, 4, 0), (35, 5, 1), (64, 8, 2), (96, 4, 5)] {
        check_bigbird(DType::F64, [1, 3, n, 8], b, r, None, Backend::Interpreter);
    }
    check_bigbird(DType::F32, [1, 2, 80, 4], 8, 4, None, Backend::Compiled);
}

#[test]
fn bigbird_with_padding() {
    check_bigbird(
        DType::F64,
        [2, 2, 128, 16],
        8,
        3,
        Some(&[128, 77]),
        Backend::Interpreter,
    );
    check_bigbird(
        DType::F32,
        [3, 1, 48, 8],
        4,
        2,
        Some(&[5, 48, 30]),
        Backend::Compiled,
    );
}

fn check_etc(
    dtype: DType,
    shape: [usize; 4],
    radius: usize,
    n_global: usize,
    lengths: Option<&[usize]>,
) {
    let c = case(
        dtype,
        shape,
        lengths,
        (shape[2] * 13 + radius * 3 + n_global) as u64,
    );
    let mask = AttentionMask::EtcGlobalLocal { radius, n_global };
    let layout = EtcLayout::new(shape[2], radius, n_global).unwrap();
    let scale = 1.0 / (shape[3] as f64).sqrt();
    let (dense, blocked) = match &c.valid {
        None => (
            attention(&c.q, &c.k, &c.v, &mask).unwrap(),
            etc_blockified(&c.q, &c.k, &c.v, &layout, None, scale).unwrap(),
        ),
        Some(valid) => {
            let (kb, qv) = padding_terms(valid, shape[0], shape[2], dtype).unwrap();
            let b = etc_blockified(&c.q, &c.k, &c.v, &layout, Some(&kb), scale).unwrap();
            (
                attention_with_padding(&c.q, &c.k, &c.v, &mask, valid).unwrap(),
                (&b * &qv).unwrap(),
            )
        }
    };
    let diff = max_diff(&c.g, &dense, &blocked, Backend::Interpreter);
    assert!(
        diff <= tolerance(dtype),
        "ETC {dtype} {shape:?} r={radius} G={n_global} padding={lengths:?}: max diff {diff:e}"
    );
}

#[test]
fn etc_blockified_equals_dense() {
    // MODELS.md §4b: L = 37 long tokens (not a multiple of bl = 5), G = 3, r = 4.
    check_etc(DType::F64, [2, 2, 40, 8], 4, 3, None);
    check_etc(DType::F32, [1, 2, 40, 8], 4, 3, None);
    check_etc(DType::F64, [1, 1, 33, 4], 1, 0, None);
    check_etc(DType::F64, [1, 2, 50, 4], 7, 5, None);
    check_etc(DType::F64, [2, 1, 40, 8], 4, 3, Some(&[40, 21]));
}

#[test]
fn layouts_round_trip_through_their_masks() {
    let layout = BigBirdLayout::generate(3, 96, 8, 3, 2, 3, 9).unwrap();
    let back = BigBirdLayout::from_block_mask(&layout.block_mask(), 3, 12, 8).unwrap();
    assert_eq!(back, layout);
    // Random blocks never hit the window or the globals, and are distinct.
    for rows in &layout.random {
        for (i, row) in rows.iter().enumerate().take(11).skip(1) {
            assert_eq!(row.len(), 3);
            for &j in row {
                assert!(j != 0 && j != 11 && j.abs_diff(i) > 1, "row {i} block {j}");
            }
        }
    }
    // Different seeds give different plans; the same seed the same plan.
    let other = BigBirdLayout::generate(3, 96, 8, 3, 2, 3, 10).unwrap();
    assert_ne!(other.random, layout.random);
    assert_eq!(
        BigBirdLayout::generate(3, 96, 8, 3, 2, 3, 9).unwrap(),
        layout
    );
    // A non-ITC mask is not recognised.
    let wide = BigBirdLayout::generate(1, 96, 8, 5, 2, 1, 0).unwrap();
    assert!(BigBirdLayout::from_block_mask(&wide.block_mask(), 1, 12, 8).is_none());
    assert!(!wide.is_itc());

    let etc = EtcLayout::new(40, 4, 3).unwrap();
    assert_eq!(EtcLayout::from_dense_mask(&etc.dense_mask(), 40), Some(etc));
    let causal: Vec<bool> = (0..100).map(|e| e % 10 <= e / 10).collect();
    assert_eq!(EtcLayout::from_dense_mask(&causal, 10), None);
}

#[test]
fn blockified_gradients_match_finite_differences() {
    let layout = BigBirdLayout::generate(1, 12, 2, 3, 2, 1, 3).unwrap();
    gradcheck::check_gradient(
        |_, xs| bigbird_blockified(&xs[0], &xs[1], &xs[2], &layout, None, 0.5),
        &[&[1, 1, 12, 2], &[1, 1, 12, 2], &[1, 1, 12, 2]],
        5,
    );
    let etc = EtcLayout::new(9, 2, 2).unwrap();
    gradcheck::check_gradient(
        |_, xs| etc_blockified(&xs[0], &xs[1], &xs[2], &etc, None, 0.5),
        &[&[1, 1, 9, 2], &[1, 1, 9, 2], &[1, 1, 9, 2]],
        6,
    );
}

#[test]
fn bad_arguments_are_errors() {
    let g = Graph::new();
    let q = g.placeholder("q", DType::F32, &[1, 2, 30, 4]).unwrap();
    let bb = |block, r| AttentionMask::BigBird {
        block,
        window_blocks: 3,
        global_blocks: 2,
        random_blocks: r,
        seed: 0,
    };
    let e = attention(&q, &q, &q, &bb(7, 1)).unwrap_err().to_string();
    assert!(e.contains("block size must divide n"), "{e}");
    let e = attention(&q, &q, &q, &bb(5, 2)).unwrap_err().to_string();
    assert!(e.contains("random_blocks"), "{e}");
    let k = g.placeholder("k", DType::F32, &[1, 2, 20, 4]).unwrap();
    let e = attention(&q, &k, &k, &AttentionMask::Causal)
        .unwrap_err()
        .to_string();
    assert!(e.contains("as many keys as queries"), "{e}");
    let x3 = g.placeholder("x3", DType::F32, &[2, 30, 4]).unwrap();
    let e = attention(&x3, &x3, &x3, &bb(5, 1)).unwrap_err().to_string();
    assert!(e.contains("[B, H, n, d]"), "{e}");
    let valid = g.placeholder("valid", DType::Bool, &[2, 30]).unwrap();
    let e = attention(&q, &q, &q, &AttentionMask::Padding(valid))
        .unwrap_err()
        .to_string();
    assert!(e.contains("[B, n] = [1, 30]"), "{e}");
    let e = attention(
        &q,
        &q,
        &q,
        &AttentionMask::EtcGlobalLocal {
            radius: 2,
            n_global: 31,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("n_global = 31"), "{e}");
    // Dense attention accepts other ranks and key counts.
    let out = attention(&x3, &x3, &x3, &AttentionMask::Dense).unwrap();
    assert_eq!(out.shape(), &[2, 30, 4]);
}
