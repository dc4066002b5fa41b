//! Routing Transformer attention (MODELS.md §5): acceptance tests 1–4, local attention
//! against its dense equivalent, gradients of the routed attention, compiled vs interpreter
//! agreement, and a short training run of the two-layer model on the copy task (the full
//! 2,000-step run is `examples/routing_lm.rs`).

mod gradcheck;

use flumen::models::realm::Rng;
use flumen::models::routing::model::{LmConfig, RoutingLm, copy_task_batch};
use flumen::models::routing::{
    KMeans, LocalAttention, Mask, balanced_routing, dense_attention, local_attention,
    local_window_mask, routed_attention,
};
use flumen::{Backend, DType, Graph, Op, Session, Tensor, Value};
use ndarray::{Array2, ArrayD, IxDyn};

fn randn(shape: &[usize], rng: &mut Rng, std: f64) -> ArrayD<f32> {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || (std * rng.normal()) as f32)
}

fn run(g: &Graph, fetches: &[&Tensor], backend: Backend) -> Vec<Vec<f64>> {
    let mut sess = Session::with_backend(g, backend);
    sess.run(&[], fetches)
        .unwrap_or_else(|e| panic!("{backend:?}: {e}"))
        .into_iter()
        .map(|v| v.to_f64_vec())
        .collect()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Run on both backends, check they agree within `tol`, return the compiled values.
fn run_both(g: &Graph, fetches: &[&Tensor], tol: f64) -> Vec<Vec<f64>> {
    let compiled = run(g, fetches, Backend::Compiled);
    let interp = run(g, fetches, Backend::Interpreter);
    for (c, i) in compiled.iter().zip(&interp) {
        let d = max_diff(c, i);
        assert!(d <= tol, "compiled vs interpreter differ by {d} (> {tol})");
    }
    compiled
}

#[test]
fn one_cluster_covering_everything_is_full_attention() {
    let mut rng = Rng::new(1);
    let (b, h, n, d) = (2, 2, 32, 8);
    for mask in [
        Mask::default(),
        Mask {
            causal: true,
            exclude_self: false,
        },
        Mask {
            causal: true,
            exclude_self: true,
        },
    ] {
        let g = Graph::new();
        let q = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let k = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let v = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let mu = g.constant(randn(&[h, 1, d], &mut rng, 1.0)).unwrap();
        let qi = balanced_routing(&q, &mu, n).unwrap();
        let ki = balanced_routing(&k, &mu, n).unwrap();
        let routed = routed_attention(&q, &k, &v, &qi, &ki, mask).unwrap();
        let dense = dense_attention(&q, &k, &v, mask, None).unwrap();
        assert_eq!(routed.scores.shape(), &[b, h, 1, n, n]);
        let out = run_both(&g, &[&routed.output, &dense, &routed.counts], 1e-5);
        let diff = max_diff(&out[0], &out[1]);
        assert!(
            diff <= 1e-6,
            "{mask:?}: routed k=1 vs full attention: {diff}"
        );
        assert!(
            out[2].iter().all(|&c| c == 1.0),
            "every position routed once"
        );
    }
}

/// 4 orthogonal unit centres in R⁸, 16 noisy points each (N(0, 0.05²)), interleaved so
/// that clusters are not contiguous: (points [64, 8], labels, centres [4, 8]).
fn clustered(seed: u64) -> (Array2<f64>, Vec<usize>, Array2<f64>) {
    let mut rng = Rng::new(seed);
    let mut centres = Array2::zeros((4, 8));
    for j in 0..4 {
        // Orthogonal: (e_{2j} + e_{2j+1}) / √2.
        centres[[j, 2 * j]] = 0.5f64.sqrt();
        centres[[j, 2 * j + 1]] = 0.5f64.sqrt();
    }
    let labels: Vec<usize> = (0..64).map(|i| (i * 7 + i / 16) % 4).collect();
    let points = Array2::from_shape_fn((64, 8), |(i, c)| {
        centres[[labels[i], c]] + 0.05 * rng.normal()
    });
    (points, labels, centres)
}

#[test]
fn synthetic_clusters_are_recovered_and_routing_is_masked_dense_attention() {
    let (points, labels, centres) = clustered(2);
    for (i, j) in (0..4).flat_map(|i| (0..4).map(move |j| (i, j))) {
        assert_eq!(labels.iter().filter(|&&l| l == i).count(), 16);
        let dot: f64 = centres.row(i).dot(&centres.row(j));
        assert!((dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
    }
    let mut rng = Rng::new(3);
    let x = points
        .mapv(|v| v as f32)
        .into_shape_with_order((1, 1, 64, 8))
        .unwrap();
    let mu = centres
        .mapv(|v| v as f32)
        .into_shape_with_order((1, 4, 8))
        .unwrap();
    for mask in [
        Mask::default(),
        Mask {
            causal: true,
            exclude_self: true,
        },
    ] {
        let g = Graph::new();
        let xt = g.constant(x.clone()).unwrap();
        let v = g.constant(randn(&[1, 1, 64, 8], &mut rng, 1.0)).unwrap();
        let km = KMeans::new(&g, "mu", mu.clone(), 0.999).unwrap();
        let assigned = km.assign(&xt).unwrap();
        let idx = balanced_routing(&xt, &km.centroids, 16).unwrap();
        let routed = routed_attention(&xt, &xt, &v, &idx, &idx, mask).unwrap();
        let same = Array2::from_shape_fn((64, 64), |(i, j)| labels[i] == labels[j]);
        let allowed = g.constant(same).unwrap();
        let dense = dense_attention(&xt, &xt, &v, mask, Some(&allowed)).unwrap();
        let out = run_both(&g, &[&assigned, &idx, &routed.output, &dense], 1e-5);
        let got: Vec<usize> = out[0].iter().map(|&c| c as usize).collect();
        assert_eq!(got, labels, "argmax assignment recovers the partition");
        for (c, members) in out[1].chunks(16).enumerate() {
            let mut members: Vec<usize> = members.iter().map(|&p| p as usize).collect();
            members.sort_unstable();
            let truth: Vec<usize> = (0..64).filter(|&i| labels[i] == c).collect();
            assert_eq!(members, truth, "cluster {c} routes exactly its members");
        }
        let diff = max_diff(&out[2], &out[3]);
        assert!(
            diff <= 1e-5,
            "{mask:?}: routed vs cluster-masked dense: {diff}"
        );
    }
}

#[test]
fn kmeans_from_perturbed_centroids_recovers_the_clusters() {
    let (points, labels, centres) = clustered(4);
    let mut rng = Rng::new(5);
    let g = Graph::new();
    let x = g
        .constant(points.clone().into_shape_with_order((1, 1, 64, 8)).unwrap())
        .unwrap();
    let start = centres.mapv(|c| c + 0.3 * rng.normal());
    let km = KMeans::new(
        &g,
        "mu",
        start.into_shape_with_order((1, 4, 8)).unwrap(),
        0.5,
    )
    .unwrap();
    let update = km.ema_update(&[&x]).unwrap();
    let mut sess = Session::new(&g);
    for _ in 0..40 {
        sess.run(&[], &[&update]).unwrap();
    }
    let assigned = km.assign(&x).unwrap();
    let out = sess.run(&[], &[&assigned, &km.centroids]).unwrap();
    let got: Vec<usize> = out[0].to_f64_vec().iter().map(|&c| c as usize).collect();
    assert_eq!(got, labels);
    let mu = out[1].to_f64_vec();
    for j in 0..4 {
        let members: Vec<usize> = (0..64).filter(|&i| labels[i] == j).collect();
        for c in 0..8 {
            let mean = members.iter().map(|&i| points[[i, c]]).sum::<f64>() / 16.0;
            assert!(
                (mu[j * 8 + c] - mean).abs() < 1e-9,
                "centroid {j} → its cluster mean"
            );
        }
    }
}

#[test]
fn ema_contracts_by_lambda_to_the_t() {
    let (points, labels, centres) = clustered(6);
    let (lambda, steps) = (0.9, 100);
    // Two sources (queries and keys) with the same assignments: m_j averages their means.
    let keys = points.mapv(|p| p * 0.9 + 0.01);
    let mean = |src: &Array2<f64>, j: usize, c: usize| {
        (0..64)
            .filter(|&i| labels[i] == j)
            .map(|i| src[[i, c]])
            .sum::<f64>()
            / 16.0
    };
    let m = Array2::from_shape_fn((4, 8), |(j, c)| {
        0.5 * (mean(&points, j, c) + mean(&keys, j, c))
    });
    let mu0 = centres.mapv(|c| 0.8 * c + 0.05);
    let g = Graph::new();
    let q = g
        .constant(points.into_shape_with_order((1, 1, 64, 8)).unwrap())
        .unwrap();
    let k = g
        .constant(keys.into_shape_with_order((1, 1, 64, 8)).unwrap())
        .unwrap();
    let km = KMeans::new(
        &g,
        "mu",
        mu0.clone().into_shape_with_order((1, 4, 8)).unwrap(),
        lambda,
    )
    .unwrap();
    let update = km.ema_update(&[&q, &k]).unwrap();
    let mut sess = Session::new(&g);
    for _ in 0..steps {
        sess.run(&[], &[&update]).unwrap();
    }
    let mu = sess.run(&[], &[&km.centroids]).unwrap()[0].to_f64_vec();
    let factor = lambda.powi(steps);
    assert!((factor - 2.656e-5).abs() < 1e-8, "0.9^100 = {factor}");
    for (i, &got) in mu.iter().enumerate() {
        let (j, c) = (i / 8, i % 8);
        let want = m[[j, c]] + factor * (mu0[[j, c]] - m[[j, c]]);
        let scale = (mu0[[j, c]] - m[[j, c]]).abs() * factor;
        assert!(
            (got - want).abs() <= 1e-9 * scale.max(1e-6),
            "μ_T − m = λ^T (μ_0 − m) at [{j},{c}]: got {got}, want {want}"
        );
    }
}

#[test]
fn routing_scores_count_n_to_the_one_and_a_half() {
    let mut counts = Vec::new();
    for n in [256usize, 1024, 4096] {
        let k = (n as f64).sqrt() as usize;
        let g = Graph::new();
        let x = g.placeholder("x", DType::F32, &[1, 1, n, 16]).unwrap();
        let mu = g.zeros(&[1, k, 16], DType::F32).unwrap();
        let idx = balanced_routing(&x, &mu, n / k).unwrap();
        let routed = routed_attention(&x, &x, &x, &idx, &idx, Mask::default()).unwrap();
        assert_eq!(routed.scores.numel(), n * n / k);
        // No node anywhere in the graph is as large as the dense score matrix.
        let largest = g.with_def(|d| d.nodes().iter().map(|nd| nd.ty.numel()).max().unwrap());
        assert!(largest < n * n, "n = {n}: a node has {largest} elements");
        let matmuls: Vec<usize> = g.with_def(|d| {
            d.nodes()
                .iter()
                .filter(|nd| matches!(nd.op, Op::MatMul { .. }))
                .map(|nd| nd.ty.numel())
                .collect()
        });
        assert!(matmuls.contains(&(n * n / k)));
        counts.push(routed.scores.numel());
    }
    assert_eq!(counts, vec![4096, 32768, 262144]);
    assert!(
        counts.windows(2).all(|w| w[1] == 8 * w[0]),
        "×8 per ×4 in n"
    );
}

#[test]
fn balanced_routing_selects_the_top_w_of_every_centroid() {
    // n = 1024, k = 32, w = 32: the chunked selection path (chunks of 6 positions).
    let mut rng = Rng::new(13);
    let (n, k, w, d) = (1024, 32, 32, 16);
    let g = Graph::new();
    let x = g.constant(randn(&[2, 1, n, d], &mut rng, 1.0)).unwrap();
    let mu = g.constant(randn(&[1, k, d], &mut rng, 1.0)).unwrap();
    let idx = balanced_routing(&x, &mu, w).unwrap();
    let (_, plain) = x
        .matmul_t(&mu, false, true)
        .unwrap()
        .transpose(&[0, 1, 3, 2])
        .unwrap()
        .top_k(w)
        .unwrap();
    let out = run_both(&g, &[&idx, &plain], 0.0);
    for (a, b) in out[0].chunks(w).zip(out[1].chunks(w)) {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        assert_eq!(a, b);
    }
}

#[test]
fn local_attention_is_dense_attention_under_the_window_mask() {
    let mut rng = Rng::new(7);
    let (b, h, d) = (2, 2, 8);
    for (n, cfg) in [
        (
            37,
            LocalAttention {
                block: 8,
                look_back: 1,
                look_ahead: 0,
                mask: Mask {
                    causal: true,
                    exclude_self: false,
                },
            },
        ),
        (
            40,
            LocalAttention {
                block: 8,
                look_back: 2,
                look_ahead: 1,
                mask: Mask::default(),
            },
        ),
        (
            30,
            LocalAttention {
                block: 5,
                look_back: 1,
                look_ahead: 0,
                mask: Mask {
                    causal: true,
                    exclude_self: true,
                },
            },
        ),
    ] {
        let g = Graph::new();
        let q = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let k = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let v = g.constant(randn(&[b, h, n, d], &mut rng, 1.0)).unwrap();
        let (local, scores) = local_attention(&q, &k, &v, cfg).unwrap();
        let span = cfg.look_back + 1 + if cfg.mask.causal { 0 } else { cfg.look_ahead };
        assert_eq!(
            scores.numel(),
            b * h * n.div_ceil(cfg.block) * cfg.block * span * cfg.block
        );
        let allowed = g.constant(local_window_mask(n, cfg)).unwrap();
        let dense = dense_attention(&q, &k, &v, cfg.mask, Some(&allowed)).unwrap();
        let out = run_both(&g, &[&local, &dense], 1e-5);
        let diff = max_diff(&out[0], &out[1]);
        assert!(diff <= 1e-5, "n = {n}, {cfg:?}: {diff}");
    }
}

#[test]
fn routed_attention_gradients_match_finite_differences() {
    // Fixed routing (two overlapping clusters, one position in none) so the function is
    // smooth; causal with self exclusion.
    let idx =
        |g: &Graph| g.constant(Value::from_vec(&[1, 1, 2, 3], vec![0i64, 2, 3, 3, 1, 2]).unwrap());
    gradcheck::check_gradient(
        |g, x| {
            let i = idx(g)?;
            let mask = Mask {
                causal: true,
                exclude_self: true,
            };
            Ok(routed_attention(&x[0], &x[1], &x[2], &i, &i, mask)?.output)
        },
        &[&[1, 1, 5, 3], &[1, 1, 5, 3], &[1, 1, 5, 2]],
        11,
    );
    // The commitment loss reaches the vectors.
    gradcheck::check_gradient(
        |g, x| {
            let mu = g.constant(
                Value::from_vec(&[1, 2, 3], vec![1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0]).unwrap(),
            )?;
            let km = KMeans::new(g, "mu", &mu, 0.9)?;
            km.commitment_loss(&[&x[0]], 0.5)
        },
        &[&[2, 1, 4, 3]],
        12,
    );
}

#[test]
fn bad_shapes_are_errors() {
    let g = Graph::new();
    let x = g.zeros(&[1, 2, 8, 4], DType::F32).unwrap();
    let mu = g.zeros(&[3, 2, 4], DType::F32).unwrap();
    let e = balanced_routing(&x, &mu, 4).unwrap_err().to_string();
    assert!(
        e.contains("balanced_routing") && e.contains("[3, 2, 4]"),
        "{e}"
    );
    let mu = g.zeros(&[2, 2, 4], DType::F32).unwrap();
    assert!(balanced_routing(&x, &mu, 9).is_err());
    let idx = g.zeros(&[1, 2, 2, 4], DType::F32).unwrap();
    let e = routed_attention(&x, &x, &x, &idx, &idx, Mask::default())
        .expect_err("float indices are an error");
    assert!(e.to_string().contains("q_index"), "{e}");
    let v = g.zeros(&[1, 2, 7, 4], DType::F32).unwrap();
    assert!(dense_attention(&x, &x, &v, Mask::default(), None).is_err());
    assert!(KMeans::new(&g, "bad", ndarray::arr2(&[[1.0f32]]), 0.9).is_err());
    assert!(KMeans::new(&g, "bad2", ndarray::Array3::<f32>::zeros((1, 2, 4)), 1.5).is_err());
}

#[test]
fn routing_lm_backends_agree_and_short_training_reduces_the_loss() {
    let cfg = LmConfig {
        batch: 8,
        ..LmConfig::default()
    };
    let model = RoutingLm::new(&cfg).unwrap();
    let mut rng = Rng::new(9);
    let mut next = || rng.next_u64();
    let (t, y, w) = copy_task_batch(cfg.batch, cfg.seq_len, cfg.vocab, &mut next);
    let feeds = |m: &RoutingLm| -> Vec<(Tensor, Value)> {
        vec![
            (m.tokens.clone(), t.clone()),
            (m.targets.clone(), y.clone()),
            (m.weights.clone(), w.clone()),
        ]
    };
    // Forward values on both backends (fresh sessions, same initial variables).
    let fetch = [&model.loss, &model.commitment, &model.logits];
    let mut ci = Session::with_backend(&model.graph, Backend::Interpreter);
    let mut cc = Session::new(&model.graph);
    let owned = feeds(&model);
    let fed: Vec<(&Tensor, Value)> = owned.iter().map(|(t, v)| (t, v.clone())).collect();
    let a = cc.run(&fed, &fetch).unwrap();
    let b = ci.run(&fed, &fetch).unwrap();
    for (x, y) in a.iter().zip(&b) {
        let d = max_diff(&x.to_f64_vec(), &y.to_f64_vec());
        assert!(d < 1e-4, "compiled vs interpreter: {d}");
    }
    let initial = a[0].to_f64_vec()[0];
    assert!(
        initial > 0.9 * (cfg.vocab as f64).ln(),
        "starts untrained: {initial}"
    );
    // A short run on fresh batches.
    let mut losses = Vec::new();
    for _ in 0..150 {
        let mut next = || rng.next_u64();
        let (t, y, w) = copy_task_batch(cfg.batch, cfg.seq_len, cfg.vocab, &mut next);
        let out = cc
            .run(
                &[(&model.tokens, t), (&model.targets, y), (&model.weights, w)],
                &[&model.loss, &model.train],
            )
            .unwrap();
        losses.push(out[0].to_f64_vec()[0]);
    }
    let last: f64 = losses[130..].iter().sum::<f64>() / 20.0;
    assert!(last < 0.9 * initial, "loss {initial} → {last}");
}
