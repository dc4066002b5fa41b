//! Optimizers as graph ops: exact SGD and Keras-Adam steps, slot variables, one train op
//! per step, variable lists, EMA updates and a small training run.

mod gradcheck;

use flumen::{DType, Graph, Session, Tensor, Value};
use flumen_frontend::nn::{Activation, Initializer, Reduction, dense};
use flumen_frontend::train::{Adam, Optimizer, Sgd, ema_update};
use gradcheck::{Rng, f64s};

/// `w` initialised to [1, -2] and the loss `Σ (w − 3)²` (gradient `2(w − 3)`).
fn quadratic(g: &Graph) -> (Tensor, Tensor) {
    let w = g.variable("w", f64s(&[2], vec![1.0, -2.0])).unwrap();
    let loss = w.sub(3.0).unwrap().square().unwrap().sum_all().unwrap();
    (w, loss)
}

fn value(sess: &mut Session, t: &Tensor) -> Vec<f64> {
    sess.variable(t).unwrap().to_f64_vec()
}

#[test]
fn sgd_step_is_exact() {
    let g = Graph::new();
    let (w, loss) = quadratic(&g);
    let train = Sgd::new(0.1).minimize(&loss, None).unwrap();
    assert_eq!(train.name(), "SGD/train");
    let mut sess = Session::new(&g);
    sess.run(&[], &[&train]).unwrap();
    assert_eq!(value(&mut sess, &w), [1.0 - 0.1 * -4.0, -2.0 - 0.1 * -10.0]);
    sess.run(&[], &[&train]).unwrap();
    let w1 = [1.4f64, -1.0];
    let want: Vec<f64> = w1.iter().map(|w| w - 0.1 * (2.0 * (w - 3.0))).collect();
    assert_eq!(value(&mut sess, &w), want);
}

#[test]
fn adam_matches_keras_first_steps() {
    let g = Graph::new();
    let (w, loss) = quadratic(&g);
    let adam = Adam {
        lr: 0.1,
        ..Adam::default()
    };
    assert_eq!(
        Adam::default(),
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7
        }
    );
    let train = adam.minimize(&loss, None).unwrap();
    let mut sess = Session::new(&g);
    // Step 1 by hand: g = 2(w − 3) = [−4, −10]; m = 0.1·g; v = 0.001·g²;
    // α = 0.1·√0.001 / 0.1; w −= α·m / (√v + 1e-7) = w + 0.1·√0.001·|g| / (√0.001·|g| + 1e-7).
    let r = 0.001f64.sqrt();
    let step1 = |w: f64, g: f64| w + 0.1 * r * g.abs() / (r * g.abs() + 1e-7);
    sess.run(&[], &[&train]).unwrap();
    let got = value(&mut sess, &w);
    assert!((got[0] - step1(1.0, -4.0)).abs() < 1e-15, "{got:?}");
    assert!((got[1] - step1(-2.0, -10.0)).abs() < 1e-15, "{got:?}");
    // Steps 2 and 3 from Keras' update rule (computed independently in f64).
    let want = [
        [1.099999920943121, -1.9000000316227665],
        [1.1998333782585269, -1.800057810848766],
        [1.299376425174905, -1.700213363772778],
    ];
    for want in &want[1..] {
        sess.run(&[], &[&train]).unwrap();
        let got = value(&mut sess, &w);
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-13, "{got:?} vs {want:?}");
        }
    }
    let t = g.get("Adam/t").unwrap();
    assert_eq!(
        sess.variable(&t).unwrap().as_i64().unwrap().iter().next(),
        Some(&3)
    );
    let m = g.get("Adam/w/m").unwrap();
    let v = g.get("Adam/w/v").unwrap();
    let (m, v) = (value(&mut sess, &m), value(&mut sess, &v));
    assert!((m[0] - -1.0260333385785327).abs() < 1e-13, "{m:?}");
    assert!((v[1] - 0.2879062811883341).abs() < 1e-13, "{v:?}");
}

#[test]
fn adam_slots_are_non_trainable_and_scoped() {
    let g = Graph::new();
    let (w, loss) = quadratic(&g);
    Adam::default().minimize(&loss, None).unwrap();
    assert_eq!(g.trainable_variables(), vec![w.clone()]);
    let names: Vec<String> = g.variables().iter().map(Tensor::name).collect();
    assert_eq!(names, ["w", "Adam/t", "Adam/w/m", "Adam/w/v"]);
    // A second optimizer gets its own scope.
    let train = Adam::default().minimize(&loss, None).unwrap();
    assert_eq!(train.name(), "Adam_1/train");
    assert!(g.get("Adam_1/w/m").is_some());
    assert_eq!(g.trainable_variables(), vec![w]);
}

#[test]
fn one_train_op_applies_every_update() {
    let g = Graph::new();
    let a = g.variable("a", f64s(&[2], vec![1.0, 2.0])).unwrap();
    let b = g.variable("b", Value::scalar(-1.0f64)).unwrap();
    let frozen = g.variable("frozen", Value::scalar(5.0f64)).unwrap();
    let loss = ((&a * &b).unwrap().sum_all().unwrap() + &frozen)
        .unwrap()
        .square()
        .unwrap();
    let train = Adam::new(0.01).minimize(&loss, Some(&[&a, &b])).unwrap();
    let mut sess = Session::new(&g);
    let out = sess.run(&[], &[&train]).unwrap();
    assert_eq!(out[0].dtype(), DType::Bool);
    // Adam's first step moves every coordinate with a nonzero gradient by ≈ lr.
    let a1 = value(&mut sess, &a);
    let b1 = value(&mut sess, &b);
    for (new, old) in a1.iter().chain(&b1).zip([1.0, 2.0, -1.0]) {
        assert!(((new - old).abs() - 0.01).abs() < 1e-6, "{new} vs {old}");
    }
    assert_eq!(value(&mut sess, &frozen), [5.0], "not in var_list");
    let t = g.get("Adam/t").unwrap();
    assert_eq!(sess.variable(&t).unwrap().to_f64_vec(), [1.0]);
}

#[test]
fn minimize_errors() {
    let g = Graph::new();
    let (w, _) = quadratic(&g);
    let x = g.placeholder("x", DType::F64, &[2]).unwrap();
    let unrelated = x.square().unwrap().sum_all().unwrap();
    let err = Sgd::new(0.1)
        .minimize(&unrelated, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SGD") && err.contains("none of the variables"),
        "{err}"
    );
    let err = Sgd::new(0.1)
        .minimize(&unrelated, Some(&[&x]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`x`") && err.contains("not a float variable"),
        "{err}"
    );
    let other = Graph::new();
    let (_, loss2) = quadratic(&other);
    let err = Sgd::new(0.1)
        .minimize(&loss2, Some(&[&w]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("another graph"), "{err}");
}

#[test]
fn ema_moves_targets_toward_sources() {
    let g = Graph::new();
    let target = g
        .variable_with("target", f64s(&[2], vec![0.0, 0.0]), false)
        .unwrap();
    let source = g.variable("source", f64s(&[2], vec![1.0, 2.0])).unwrap();
    let update = ema_update(&[&target], &[&source], 0.25).unwrap();
    assert_eq!(update.name(), "ema_update");
    let mut sess = Session::new(&g);
    sess.run(&[], &[&update]).unwrap();
    assert_eq!(value(&mut sess, &target), [0.25, 0.5]);
    sess.run(&[], &[&update]).unwrap();
    assert_eq!(value(&mut sess, &target), [0.4375, 0.875]);
    assert_eq!(
        ema_update(&[&target], &[&source], 0.5).unwrap().name(),
        "ema_update_1"
    );
    let err = ema_update(&[&source], &[], 0.5).unwrap_err().to_string();
    assert!(err.contains("1 targets but 0 sources"), "{err}");
    let err = ema_update(&[&target], &[&source], 1.5)
        .unwrap_err()
        .to_string();
    assert!(err.contains("tau"), "{err}");
}

#[test]
fn adam_trains_a_small_regression() {
    let g = Graph::new();
    g.set_seed(5);
    let mut rng = Rng::new(9);
    let xs = rng.vec(32 * 3, -1.0, 1.0);
    let ys: Vec<f64> = xs
        .chunks(3)
        .map(|r| (2.0 * r[0] - r[1] + 0.5 * r[2]).tanh())
        .collect();
    let x = g.constant(f64s(&[32, 3], xs)).unwrap();
    let y = g.constant(f64s(&[32, 1], ys)).unwrap();
    let h = dense(
        "h",
        &x,
        8,
        Activation::Tanh,
        &Initializer::GlorotUniform,
        &Initializer::Zeros,
    )
    .unwrap();
    let pred = dense(
        "out",
        &h,
        1,
        Activation::Linear,
        &Initializer::HeNormal,
        &Initializer::Zeros,
    )
    .unwrap();
    let loss = pred
        .mean_squared_error(&y, None, Reduction::SumOverBatchSize)
        .unwrap();
    let train = Adam::new(0.05).minimize(&loss, None).unwrap();
    let mut sess = Session::new(&g);
    let first = sess.run(&[], &[&loss]).unwrap()[0].to_f64_vec()[0];
    for _ in 0..100 {
        sess.run(&[], &[&train]).unwrap();
    }
    let last = sess.run(&[], &[&loss]).unwrap()[0].to_f64_vec()[0];
    assert!(last < 0.1 * first, "loss {first} -> {last}");
}
