//! NN composites: values against hand-computed numbers, gradients against central finite
//! differences (see `gradcheck`), losses with sample weights and every reduction, layers
//! and initializers.

mod gradcheck;

use flumen::op::{Composite, Op};
use flumen::{DType, Graph, NodeId, Session, Tensor, Value};
use flumen_frontend::gradients;
use flumen_frontend::nn::{Activation, Initializer, Reduction, dense};
use gradcheck::*;

const LN2: f64 = std::f64::consts::LN_2;

fn constant(g: &Graph, shape: &[usize], data: Vec<f64>) -> Tensor {
    g.constant(f64s(shape, data)).unwrap()
}

#[test]
fn softmax_and_log_softmax_values() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![1.0, 2.0, 3.0, 1000.0, 0.0, -1000.0]);
    let got = eval(&g, &[&x.softmax(-1).unwrap(), &x.log_softmax(1).unwrap()]);
    let z = 1f64.exp() + 2f64.exp() + 3f64.exp();
    let want = [
        1f64.exp() / z,
        2f64.exp() / z,
        3f64.exp() / z,
        1.0,
        0.0,
        0.0,
    ];
    assert_close(&got[0], &want, 1e-15);
    // Stable for large logits: no overflow, exact offsets.
    let lz = z.ln();
    assert_close(
        &got[1],
        &[1.0 - lz, 2.0 - lz, 3.0 - lz, 0.0, -1000.0, -2000.0],
        1e-13,
    );
    let col = eval(&g, &[&x.softmax(0).unwrap()]);
    assert_close(&col[0][3..], &[1.0, 1.0 / (1.0 + 2f64.exp()), 0.0], 1e-15);
}

/// Logits whose softmax rows are [1/2, 1/2] and [3/4, 1/4].
fn two_rows(g: &Graph) -> Tensor {
    constant(g, &[2, 2], vec![0.0, 0.0, 3f64.ln(), 0.0])
}

#[test]
fn cross_entropy_with_weights_and_every_reduction() {
    let g = Graph::new();
    let logits = two_rows(&g);
    let onehot = constant(&g, &[2, 2], vec![1.0, 0.0, 0.0, 1.0]);
    let ids = g
        .constant(Value::from_vec(&[2], vec![0i64, 1]).unwrap())
        .unwrap();
    let w = constant(&g, &[2], vec![2.0, 1.0]);
    // Per-example: [ln 2, ln 4]; weighted: [2 ln 2, 2 ln 2].
    let cases: [(Option<&Tensor>, Reduction, Vec<f64>); 6] = [
        (None, Reduction::None, vec![LN2, 2.0 * LN2]),
        (None, Reduction::Sum, vec![3.0 * LN2]),
        (None, Reduction::SumOverBatchSize, vec![1.5 * LN2]),
        (Some(&w), Reduction::None, vec![2.0 * LN2, 2.0 * LN2]),
        (Some(&w), Reduction::Sum, vec![4.0 * LN2]),
        (Some(&w), Reduction::SumOverBatchSize, vec![2.0 * LN2]),
    ];
    for (weights, reduction, want) in cases {
        let dense = logits
            .softmax_cross_entropy(&onehot, weights, reduction)
            .unwrap();
        let sparse = logits
            .sparse_softmax_cross_entropy(&ids, weights, reduction)
            .unwrap();
        let got = eval(&g, &[&dense, &sparse]);
        assert_close(&got[0], &want, 1e-15);
        assert_close(&got[1], &want, 1e-15);
    }
    // Soft labels, a scalar weight, huge logits.
    let soft = constant(&g, &[1, 2], vec![0.25, 0.75]);
    let big = constant(&g, &[1, 2], vec![1000.0, 0.0]);
    let half = g.scalar(0.5, DType::F64).unwrap();
    let l1 = logits
        .slice(flumen::s![0..1, ..])
        .unwrap()
        .softmax_cross_entropy(&soft, Some(&half), Reduction::Sum)
        .unwrap();
    let l2 = big
        .softmax_cross_entropy(&soft, None, Reduction::None)
        .unwrap();
    let got = eval(&g, &[&l1, &l2]);
    assert_close(&got[0], &[0.5 * LN2], 1e-15);
    assert_close(&got[1], &[750.0], 1e-12);
}

#[test]
fn binary_cross_entropy_clips_like_keras() {
    let g = Graph::new();
    let p = constant(&g, &[2, 3], vec![0.5, 0.0, 1.0, 0.0, 0.25, 0.9]);
    let y = constant(&g, &[2, 3], vec![1.0, 0.0, 1.0, 1.0, 0.0, 1.0]);
    let eps = 1e-7f64;
    let row0 = (LN2 - 2.0 * (1.0 - eps).ln()) / 3.0;
    let row1 = (-eps.ln() - 0.75f64.ln() - 0.9f64.ln()) / 3.0;
    let w = constant(&g, &[2], vec![1.0, 3.0]);
    let none = p.binary_cross_entropy(&y, None, Reduction::None).unwrap();
    let mean = p
        .binary_cross_entropy(&y, Some(&w), Reduction::SumOverBatchSize)
        .unwrap();
    let got = eval(&g, &[&none, &mean]);
    assert_close(&got[0], &[row0, row1], 1e-12);
    assert_close(&got[1], &[(row0 + 3.0 * row1) / 2.0], 1e-12);
    // The clipped probabilities get no gradient.
    let d = gradients(&[&none], &[&p], None).unwrap();
    let d = &eval(&g, &[d[0].as_ref().unwrap()])[0];
    assert_eq!((d[1], d[2], d[3]), (0.0, 0.0, 0.0));
    assert!((d[0] - (-1.0 / 0.5 / 3.0)).abs() < 1e-12, "{d:?}");
}

#[test]
fn mean_squared_error_values() {
    let g = Graph::new();
    let pred = constant(&g, &[2, 2], vec![1.0, 2.0, 3.0, 5.0]);
    let target = constant(&g, &[2, 2], vec![0.0, 0.0, 3.0, 3.0]);
    let w = constant(&g, &[2], vec![1.0, 0.5]);
    let got = eval(
        &g,
        &[
            &pred
                .mean_squared_error(&target, None, Reduction::None)
                .unwrap(),
            &pred
                .mean_squared_error(&target, Some(&w), Reduction::Sum)
                .unwrap(),
        ],
    );
    assert_eq!(got[0], [2.5, 2.0]);
    assert_eq!(got[1], [3.5]);
}

#[test]
fn normalisation_values() {
    let g = Graph::new();
    let x = constant(&g, &[2, 3], vec![1.0, 2.0, 3.0, 5.0, 5.0, 5.0]);
    let gamma = constant(&g, &[3], vec![1.0, 2.0, 3.0]);
    let beta = constant(&g, &[3], vec![0.0, 1.0, 0.0]);
    let v = [3.0, 4.0, 0.0, 0.0];
    let pair = constant(&g, &[2, 2], v.to_vec());
    let got = eval(
        &g,
        &[
            &x.layer_norm(1e-3).unwrap(),
            &x.layer_norm_affine(&gamma, &beta, 1e-3).unwrap(),
            &pair.l2_normalize(-1, 1e-12).unwrap(),
        ],
    );
    let s = 1.0 / (2.0f64 / 3.0 + 1e-3).sqrt();
    assert_close(&got[0], &[-s, 0.0, s, 0.0, 0.0, 0.0], 1e-14);
    assert_close(&got[1], &[-s, 1.0, 3.0 * s, 0.0, 1.0, 0.0], 1e-14);
    assert_close(&got[2], &[0.6, 0.8, 0.0, 0.0], 1e-15);
}

#[test]
fn dropout_masks_scales_and_backpropagates_the_same_mask() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[1000]).unwrap();
    assert!(matches!(
        x.dropout(0.0, Some(1)).unwrap().op(),
        Op::Unary(flumen::op::UnaryOp::Identity)
    ));
    let y = x.dropout(0.25, Some(42)).unwrap();
    let d = gradients(&[&y], &[&x], None).unwrap().remove(0).unwrap();
    let mut sess = Session::new(&g);
    let ones = f64s(&[1000], vec![1.0; 1000]);
    let run1 = sess.run(&[(&x, ones.clone())], &[&y, &d]).unwrap();
    let (out, grad) = (run1[0].to_f64_vec(), run1[1].to_f64_vec());
    assert_eq!(out, grad, "the gradient uses the forward pass's mask");
    let scale = 1.0 / 0.75;
    assert!(out.iter().all(|&v| v == 0.0 || v == scale));
    let kept = out.iter().filter(|&&v| v != 0.0).count();
    assert!((700..800).contains(&kept), "kept {kept} of 1000");
    let run2 = sess.run(&[(&x, ones.clone())], &[&y]).unwrap();
    assert_ne!(run2[0].to_f64_vec(), out, "a new mask on every run");
    let again = Session::new(&g).run(&[(&x, ones)], &[&y]).unwrap();
    assert_eq!(
        again[0].to_f64_vec(),
        out,
        "the sequence is fixed by the seed"
    );
    let err = x.dropout(1.0, None).unwrap_err().to_string();
    assert!(err.contains("dropout") && err.contains("rate"), "{err}");
}

#[test]
fn softmax_family_gradients() {
    check_gradient(|_, x| x[0].softmax(-1), &[&[2, 4]], 1);
    check_gradient(|_, x| x[0].softmax(0), &[&[3, 2]], 2);
    check_gradient(|_, x| x[0].log_softmax(-1), &[&[2, 4]], 3);
    check_gradient(|_, x| x[0].log_softmax(0), &[&[3, 2, 2]], 4);
}

#[test]
fn cross_entropy_gradients_for_logits_labels_and_weights() {
    for (k, reduction) in [Reduction::None, Reduction::Sum, Reduction::SumOverBatchSize]
        .into_iter()
        .enumerate()
    {
        check_gradient(
            |_, x| x[0].softmax_cross_entropy(&x[1], Some(&x[2]), reduction),
            &[&[3, 4], &[3, 4], &[3]],
            k as u64,
        );
        check_gradient(
            |g, x| {
                let ids = g.constant(Value::from_vec(&[2, 2], vec![0i32, 3, 3, 1])?)?;
                x[0].sparse_softmax_cross_entropy(&ids, Some(&x[1]), reduction)
            },
            &[&[2, 2, 4], &[2, 1]],
            10 + k as u64,
        );
        check_gradient_in(
            |_, x| x[0].binary_cross_entropy(&x[1], Some(&x[2]), reduction),
            &[&[2, 3], &[2, 3], &[2]],
            20 + k as u64,
            (0.05, 0.95),
        );
        check_gradient(
            |_, x| x[0].mean_squared_error(&x[1], Some(&x[2]), reduction),
            &[&[2, 3], &[2, 3], &[]],
            30 + k as u64,
        );
    }
    // Large logits: the dedicated rule stays finite.
    let g = Graph::new();
    let logits = constant(&g, &[1, 2], vec![1000.0, 0.0]);
    let labels = constant(&g, &[1, 2], vec![0.0, 1.0]);
    let loss = logits
        .softmax_cross_entropy(&labels, None, Reduction::Sum)
        .unwrap();
    let d = gradients(&[&loss], &[&logits], None).unwrap();
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [1.0, -1.0]);
}

#[test]
fn normalisation_and_dropout_gradients() {
    check_gradient(|_, x| x[0].layer_norm(1e-3), &[&[2, 5]], 1);
    check_gradient(
        |_, x| x[0].layer_norm_affine(&x[1], &x[2], 1e-5),
        &[&[3, 4], &[4], &[4]],
        2,
    );
    check_gradient(|_, x| x[0].l2_normalize(-1, 1e-12), &[&[3, 4]], 3);
    check_gradient(|_, x| x[0].l2_normalize(0, 1e-12), &[&[3, 4]], 4);
    // Dropout with a fixed noise input (the random op makes new noise every run).
    check_gradient(
        |g, x| {
            let noise = g.constant(f64s(&[6], vec![0.1, 0.9, 0.5, 0.3, 0.29, 0.7]))?;
            g.add_op(
                Op::Composite(Composite::Dropout { rate: 0.3 }),
                &[&x[0], &noise],
                &[],
                None,
            )
        },
        &[&[6]],
        5,
    );
}

#[test]
fn composites_differentiate_each_input_slot_separately() {
    // The same tensor in two slots: d/dx mse(x, x) = 0.
    let (grads, _) = check_gradient(
        |_, x| x[0].mean_squared_error(&x[0], None, Reduction::Sum),
        &[&[2, 3]],
        1,
    );
    assert!(grads[0].iter().all(|&d| d == 0.0));
    // One input derived from another.
    check_gradient(
        |_, x| x[0].layer_norm_affine(&x[1], &(&x[1] * 2.0)?, 1e-3),
        &[&[2, 3], &[3]],
        2,
    );
    check_gradient(
        |_, x| x[0].softmax_cross_entropy(&x[0].softmax(-1)?, None, Reduction::Sum),
        &[&[2, 3]],
        3,
    );
}

#[test]
fn composite_errors_name_the_op_and_shapes() {
    let g = Graph::new();
    let logits = g.placeholder("logits", DType::F32, &[4, 3]).unwrap();
    let bad_ids = g.placeholder("ids", DType::I64, &[3]).unwrap();
    let err = logits
        .sparse_softmax_cross_entropy(&bad_ids, None, Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sparse_softmax_cross_entropy")
            && err.contains("[4, 3]")
            && err.contains("[3]"),
        "{err}"
    );
    let float_ids = g.placeholder("fids", DType::F32, &[4]).unwrap();
    let err = logits
        .sparse_softmax_cross_entropy(&float_ids, None, Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(err.contains("i32 or i64"), "{err}");
    let labels = g.placeholder("labels", DType::F32, &[4, 2]).unwrap();
    let err = logits
        .softmax_cross_entropy(&labels, None, Reduction::None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("softmax_cross_entropy") && err.contains("[4, 2]"),
        "{err}"
    );
    let w = g.placeholder("w", DType::F32, &[4, 1]).unwrap();
    let ids = g.placeholder("ids4", DType::I64, &[4]).unwrap();
    let err = logits
        .sparse_softmax_cross_entropy(&ids, Some(&w), Reduction::Sum)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sample weights") && err.contains("[4, 1]"),
        "{err}"
    );
    let gamma = g.placeholder("gamma", DType::F32, &[4]).unwrap();
    let err = logits
        .layer_norm_affine(&gamma, &gamma, 1e-3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer_norm") && err.contains("gamma"), "{err}");
}

#[test]
fn dense_layer_creates_scoped_variables() {
    let g = Graph::new();
    g.set_seed(3);
    let x = g.placeholder("x", DType::F64, &[5, 4]).unwrap();
    let y = dense(
        "layer1",
        &x,
        3,
        Activation::Relu,
        &Initializer::GlorotUniform,
        &Initializer::Constant(0.5),
    )
    .unwrap();
    assert_eq!(y.shape(), &[5, 3]);
    let w = g.get("layer1/W").unwrap();
    let b = g.get("layer1/b").unwrap();
    assert_eq!((w.shape(), b.shape()), (&[4, 3][..], &[3][..]));
    assert_eq!(g.trainable_variables(), vec![w.clone(), b.clone()]);
    let mut sess = Session::new(&g);
    let wv = sess.variable(&w).unwrap().to_f64_vec();
    let limit = (6.0f64 / 7.0).sqrt();
    assert!(wv.iter().all(|v| v.abs() <= limit) && wv.iter().any(|&v| v != wv[0]));
    assert_eq!(sess.variable(&b).unwrap().to_f64_vec(), [0.5; 3]);
    let v = dense(
        "v",
        &x.slice(flumen::s![0, ..]).unwrap(),
        2,
        Activation::Linear,
        &Initializer::Zeros,
        &Initializer::Zeros,
    )
    .unwrap();
    assert_eq!(v.shape(), &[2]);
}

#[test]
fn he_normal_has_keras_statistics() {
    let g = Graph::new();
    let w = Initializer::HeNormal
        .build(&g, &[200, 100], DType::F64, Some(11))
        .unwrap();
    let n = Initializer::Normal {
        mean: 1.0,
        stddev: 2.0,
    }
    .build(&g, &[20000], DType::F64, Some(12))
    .unwrap();
    let got = eval(&g, &[&w, &n]);
    let stats = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        (mean, var.sqrt())
    };
    let target = (2.0f64 / 200.0).sqrt();
    let (mean, std) = stats(&got[0]);
    assert!(
        mean.abs() < 0.005 && (std / target - 1.0).abs() < 0.03,
        "{mean} {std}"
    );
    let bound = 2.0 * target / 0.879_625_661_034_239_8;
    assert!(got[0].iter().all(|v| v.abs() <= bound));
    let (mean, std) = stats(&got[1]);
    assert!(
        (mean - 1.0).abs() < 0.05 && (std - 2.0).abs() < 0.05,
        "{mean} {std}"
    );
}

#[test]
fn composites_gradients_and_train_ops_round_trip_through_text() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4, 3]).unwrap();
    let ids = g.placeholder("ids", DType::I64, &[4]).unwrap();
    let probs = x.sigmoid().unwrap();
    let gamma = g
        .variable("gamma", f64s(&[3], vec![1.0; 3]).cast(DType::F32))
        .unwrap();
    let h = dense(
        "h",
        &x,
        3,
        Activation::Gelu,
        &Initializer::HeNormal,
        &Initializer::Zeros,
    )
    .unwrap();
    let normed = h.layer_norm_affine(&gamma, &gamma, 1e-5).unwrap();
    let dropped = normed
        .dropout(0.1, Some(3))
        .unwrap()
        .l2_normalize(-1, 1e-12)
        .unwrap();
    let losses = [
        dropped
            .softmax_cross_entropy(&x.softmax(-1).unwrap(), None, Reduction::Sum)
            .unwrap(),
        dropped
            .sparse_softmax_cross_entropy(&ids, None, Reduction::SumOverBatchSize)
            .unwrap(),
        probs
            .binary_cross_entropy(&x.sigmoid().unwrap(), None, Reduction::Sum)
            .unwrap(),
        dropped
            .mean_squared_error(&x.log_softmax(0).unwrap(), None, Reduction::Sum)
            .unwrap(),
        x.layer_norm(1e-3).unwrap().sum_all().unwrap(),
    ];
    let total = losses
        .iter()
        .try_fold(losses[0].clone(), |acc, l| &acc + l)
        .unwrap();
    let train = flumen_frontend::train::Optimizer::minimize(
        &flumen_frontend::train::Adam::default(),
        &total,
        None,
    )
    .unwrap();
    // The whole f32 graph runs: forward, backward through every composite, Adam.
    let mut sess = Session::new(&g);
    let xv = f64s(&[4, 3], Rng::new(1).vec(12, -1.0, 1.0)).cast(DType::F32);
    let idv = Value::from_vec(&[4], vec![0i64, 2, 1, 2]).unwrap();
    for _ in 0..2 {
        let out = sess
            .run(&[(&x, xv.clone()), (&ids, idv.clone())], &[&total, &train])
            .unwrap();
        assert!(out[0].to_f64_vec()[0].is_finite());
    }
    let w = sess.variable(&g.get("h/W").unwrap()).unwrap();
    assert_eq!(w.dtype(), DType::F32);
    let def = g.def();
    let text = def.to_string();
    for name in [
        "layer_norm(",
        "dropout(",
        "eps=1e-5",
        "rate=0.1",
        "binary_cross_entropy(",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    let back: flumen::GraphDef = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, def);
}

#[test]
fn canonicalize_expands_every_composite_and_its_gradient_to_primitives() {
    use flumen::compiler::Unit;
    use flumen::compiler::passes::default_pipeline;
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[3, 4]).unwrap();
    let ids = g.placeholder("ids", DType::I32, &[3]).unwrap();
    let gamma = g
        .variable("gamma", f64s(&[4], vec![1.0, 0.5, 2.0, 1.5]))
        .unwrap();
    let h = x
        .layer_norm_affine(&gamma, &gamma, 1e-3)
        .unwrap()
        .dropout(0.2, Some(9))
        .unwrap()
        .l2_normalize(0, 1e-12)
        .unwrap();
    let losses = [
        h.sparse_softmax_cross_entropy(&ids, None, Reduction::Sum)
            .unwrap(),
        h.softmax_cross_entropy(&x.softmax(-1).unwrap(), None, Reduction::Sum)
            .unwrap(),
        h.sigmoid()
            .unwrap()
            .binary_cross_entropy(&x.sigmoid().unwrap(), None, Reduction::Sum)
            .unwrap(),
        h.mean_squared_error(&x.log_softmax(0).unwrap(), None, Reduction::Sum)
            .unwrap(),
    ];
    let total = losses
        .iter()
        .try_fold(losses[0].clone(), |acc, l| &acc + l)
        .unwrap();
    let dgamma = gradients(&[&total], &[&gamma], None)
        .unwrap()
        .remove(0)
        .unwrap();
    let unit = Unit {
        def: g.def(),
        outputs: vec![total.id(), dgamma.id()],
    };
    let canon = default_pipeline().run(unit).unwrap();
    assert!(
        canon
            .def
            .nodes()
            .iter()
            .all(|n| !matches!(n.op, Op::Composite(_))),
        "{}",
        canon.def
    );
    let feeds_for = |g: &Graph| {
        vec![
            (
                g.get("x").unwrap(),
                f64s(&[3, 4], Rng::new(4).vec(12, -1.0, 1.0)),
            ),
            (
                g.get("ids").unwrap(),
                Value::from_vec(&[3], vec![3i32, 0, 1]).unwrap(),
            ),
        ]
    };
    let run = |g: &Graph, fetches: &[NodeId]| {
        let feeds = feeds_for(g);
        let feeds: Vec<(&Tensor, Value)> = feeds.iter().map(|(t, v)| (t, v.clone())).collect();
        let fetches: Vec<Tensor> = fetches.iter().map(|&i| g.tensor(i).unwrap()).collect();
        let refs: Vec<&Tensor> = fetches.iter().collect();
        Session::new(g).run(&feeds, &refs).unwrap()
    };
    let want = run(&g, &[total.id(), dgamma.id()]);
    let canon_graph = Graph::from_def(canon.def);
    let got = run(&canon_graph, &canon.outputs);
    for (a, b) in got.iter().zip(&want) {
        assert_close(&a.to_f64_vec(), &b.to_f64_vec(), 1e-12);
    }
}
