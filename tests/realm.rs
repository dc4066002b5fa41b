//! REALM / c-REALM retrieval (MODELS.md §6): blocked exact MIPS against a full sort, ties,
//! the contrastive loss's values and gradients, the retrieval distribution, the marginal
//! likelihood, errors, and a short version of the toy retrieval task (the full run is
//! `examples/realm_retrieval.rs`).

mod gradcheck;

use flumen::models::realm::{
    DualEncoder, Mips, Rng, ToyData, chunked_top_k, contrastive_loss, marginal_log_likelihood,
    mips_top_k, retrieval_probs,
};
use flumen::{Backend, DType, Graph, Session, Tensor, Value};
use ndarray::Array2;

fn randn(rows: usize, cols: usize, rng: &mut Rng) -> Array2<f32> {
    rng.normal_matrix(rows, cols, 1.0)
}

/// Indices of the k largest entries of each row of `q·dᵀ` (computed in f64), by a full
/// stable sort (ties to the lower index), and those scores.
fn reference(q: &Array2<f32>, d: &Array2<f32>, k: usize) -> (Vec<Vec<usize>>, Vec<Vec<f64>>) {
    let qd = q.mapv(f64::from);
    let dd = d.mapv(f64::from);
    let s = qd.dot(&dd.t());
    let mut idx = Vec::new();
    let mut val = Vec::new();
    for row in s.rows() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        idx.push(order[..k].to_vec());
        val.push(order[..k].iter().map(|&i| row[i]).collect());
    }
    (idx, val)
}

fn run_mips(
    q: &Array2<f32>,
    d: &Array2<f32>,
    k: usize,
    opts: Mips,
    backend: Backend,
) -> (Vec<i64>, Vec<f32>) {
    let g = Graph::new();
    let qt = g
        .placeholder("q", DType::F32, &[q.nrows(), q.ncols()])
        .unwrap();
    let dt = g
        .placeholder("d", DType::F32, &[d.nrows(), d.ncols()])
        .unwrap();
    let top = mips_top_k(&qt, &dt, k, opts).unwrap();
    let mut sess = Session::with_backend(&g, backend);
    let out = sess
        .run(
            &[(&qt, Value::from(q.clone())), (&dt, Value::from(d.clone()))],
            &[&top.indices, &top.scores],
        )
        .unwrap();
    let idx = out[0].as_i64().unwrap().iter().copied().collect();
    let val = out[1].as_f32().unwrap().iter().copied().collect();
    (idx, val)
}

#[test]
fn blocked_mips_equals_a_full_sort() {
    let mut rng = Rng::new(1);
    let (n, d, b, k) = (10_000, 128, 100, 5);
    let docs = randn(n, d, &mut rng);
    let queries = randn(b, d, &mut rng);
    let (want_idx, want_val) = reference(&queries, &docs, k);
    // Several blocks (the last one partial) with the chunk path, and one block without it.
    for opts in [
        Mips {
            block: 2048,
            chunk: 64,
        },
        Mips {
            block: 3000,
            chunk: 7,
        },
        Mips {
            block: 20_000,
            chunk: 10_000,
        },
    ] {
        let (idx, val) = run_mips(&queries, &docs, k, opts, Backend::Compiled);
        for r in 0..b {
            let got: Vec<usize> = idx[r * k..(r + 1) * k]
                .iter()
                .map(|&i| i as usize)
                .collect();
            assert_eq!(got, want_idx[r], "{opts:?}: query {r}");
            let row = &val[r * k..(r + 1) * k];
            assert!(row.windows(2).all(|w| w[0] >= w[1]), "descending scores");
            for (g, w) in row.iter().zip(&want_val[r]) {
                assert!((f64::from(*g) - w).abs() <= 1e-4 * w.abs().max(1.0));
            }
        }
    }
}

#[test]
fn mips_breaks_ties_toward_the_lower_index_on_both_backends() {
    // 600 documents made of 6 distinct rows repeated: the best row occurs 100 times, so
    // the top 5 are its first five occurrences, across chunks and blocks.
    let mut rng = Rng::new(2);
    let distinct = randn(6, 16, &mut rng);
    let docs = Array2::from_shape_fn((600, 16), |(i, c)| distinct[[(i * 5 + i / 7) % 6, c]]);
    let queries = randn(8, 16, &mut rng);
    let (want, _) = reference(&queries, &docs, 5);
    let opts = Mips {
        block: 128,
        chunk: 8,
    };
    let compiled = run_mips(&queries, &docs, 5, opts, Backend::Compiled);
    let interp = run_mips(&queries, &docs, 5, opts, Backend::Interpreter);
    assert_eq!(compiled.0, interp.0);
    // The GEMM (f32 accumulation) and the interpreter's matmul (f64, rounded once) may
    // differ in the last bits; both backends' ties are exact.
    for (c, i) in compiled.1.iter().zip(&interp.1) {
        assert!((c - i).abs() <= 1e-5 * i.abs().max(1.0), "{c} vs {i}");
    }
    let got: Vec<Vec<usize>> = compiled
        .0
        .chunks(5)
        .map(|r| r.iter().map(|&i| i as usize).collect())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn chunked_top_k_is_top_k() {
    // Rank 3, values on a coarse grid (many ties), a length not divisible by the chunk.
    let mut rng = Rng::new(9);
    let x =
        ndarray::Array3::from_shape_simple_fn((3, 4, 1000), || (rng.normal() * 4.0).round() as f32);
    let g = Graph::new();
    let t = g.constant(x).unwrap();
    let (v0, i0) = t.top_k(7).unwrap();
    let (v1, i1) = chunked_top_k(&t, 7, 16).unwrap();
    assert_eq!(i1.shape(), &[3, 4, 7]);
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let out = Session::with_backend(&g, backend)
            .run(&[], &[&v0, &i0, &v1, &i1])
            .unwrap();
        assert_eq!(out[0], out[2], "{backend:?}: values");
        assert_eq!(
            out[1], out[3],
            "{backend:?}: indices, ties to the lower position"
        );
    }
    let ints = g.zeros(&[4, 10], DType::I64).unwrap();
    assert!(chunked_top_k(&ints, 2, 2).is_err());
    assert!(chunked_top_k(&t, 1001, 2).is_err());
}

#[test]
fn contrastive_loss_values() {
    let g = Graph::new();
    let same = g.constant(Array2::from_elem((4, 128), 0.3f32)).unwrap();
    let loss = contrastive_loss(&same, &same).unwrap();
    let mut losses = vec![loss];
    // Orthonormal q_i = s·a_i: the loss falls to 0 as s grows.
    let eye = Array2::from_shape_fn((4, 8), |(i, j)| if i == j { 1.0f64 } else { 0.0 });
    let a = g.constant(eye.clone()).unwrap();
    for s in [1.0, 3.0, 10.0, 30.0] {
        let q = g.constant(eye.mapv(|x| x * s)).unwrap();
        losses.push(contrastive_loss(&q, &a).unwrap());
    }
    let refs: Vec<&Tensor> = losses.iter().collect();
    for backend in [Backend::Compiled, Backend::Interpreter] {
        let out: Vec<f64> = Session::with_backend(&g, backend)
            .run(&[], &refs)
            .unwrap()
            .iter()
            .map(|v| v.to_f64_vec()[0])
            .collect();
        assert!(
            (out[0] - 4f64.ln()).abs() < 1e-6,
            "ln 4 = 1.386294, got {}",
            out[0]
        );
        assert!((out[0] - 1.386294).abs() < 1e-6);
        for (i, s) in [1.0f64, 3.0, 10.0, 30.0].iter().enumerate() {
            // −log(e^s / (e^s + 3)) exactly.
            let want = (1.0 + 3.0 * (-s).exp()).ln();
            assert!(
                (out[i + 1] - want).abs() < 1e-12,
                "s = {s}: {} vs {want}",
                out[i + 1]
            );
        }
        assert!(out[1..].windows(2).all(|w| w[1] < w[0]) && out[4] < 1e-12);
    }
}

#[test]
fn contrastive_and_marginal_gradients_match_finite_differences() {
    gradcheck::check_gradient(
        |_, x| contrastive_loss(&x[0], &x[1]),
        &[&[4, 6], &[4, 6]],
        3,
    );
    gradcheck::check_gradient(
        |_, x| marginal_log_likelihood(&x[0], &x[1]),
        &[&[3, 5], &[3, 5]],
        4,
    );
    gradcheck::check_gradient(|_, x| retrieval_probs(&x[0]), &[&[3, 5]], 5);
}

#[test]
fn retrieval_probabilities_sum_to_one_and_follow_the_scores() {
    let mut rng = Rng::new(6);
    let g = Graph::new();
    let q = g.constant(randn(16, 32, &mut rng)).unwrap();
    let d = g.constant(randn(500, 32, &mut rng)).unwrap();
    let top = mips_top_k(&q, &d, 5, Mips::default()).unwrap();
    let p = retrieval_probs(&top.scores).unwrap();
    // log p(y|x) with a reader certain of every document is 0: Σ p(z|x) = 1.
    let zeros = g.zeros(&[16, 5], DType::F32).unwrap();
    let mll = marginal_log_likelihood(&top.scores, &zeros).unwrap();
    let out = Session::new(&g).run(&[], &[&p, &mll]).unwrap();
    let p = out[0].to_f64_vec();
    for row in p.chunks(5) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(row.windows(2).all(|w| w[0] >= w[1]) && row.iter().all(|&x| x > 0.0));
    }
    assert!(out[1].to_f64_vec().iter().all(|x| x.abs() < 1e-6));
}

#[test]
fn bad_inputs_are_errors() {
    let g = Graph::new();
    let q = g.zeros(&[2, 8], DType::F32).unwrap();
    let d = g.zeros(&[10, 8], DType::F32).unwrap();
    let e = mips_top_k(&q, &d, 11, Mips::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("mips_top_k") && e.contains("k = 11"), "{e}");
    let d64 = g.zeros(&[10, 8], DType::F64).unwrap();
    assert!(mips_top_k(&q, &d64, 1, Mips::default()).is_err());
    let d7 = g.zeros(&[10, 7], DType::F32).unwrap();
    assert!(mips_top_k(&q, &d7, 1, Mips::default()).is_err());
    let zero = Mips { block: 0, chunk: 4 };
    assert!(mips_top_k(&q, &d, 1, zero).is_err());
    let e = contrastive_loss(&q, &d).unwrap_err().to_string();
    assert!(e.contains("contrastive_loss"), "{e}");
    let s = g.zeros(&[2, 3], DType::F32).unwrap();
    let r = g.zeros(&[2, 4], DType::F32).unwrap();
    assert!(marginal_log_likelihood(&s, &r).is_err());
}

#[test]
fn toy_retrieval_learns_quickly() {
    // A shorter run than the example (2,000 answers, 300 steps) with a loose bar.
    let (n, dim) = (2000, 64);
    let data = ToyData::new(n, dim, 0.1, 7);
    let model = DualEncoder::new(dim, 128, 128, 1e-3, 500, n, 1, 7).unwrap();
    let mut sess = Session::new(&model.graph);
    let mut rng = Rng::new(8);
    let mut first = None;
    for _ in 0..300 {
        let idx: Vec<usize> = (0..128).map(|_| rng.below(n)).collect();
        let (q, a) = data.batch(&idx);
        let out = sess
            .run(
                &[(&model.questions, q), (&model.answers, a)],
                &[&model.loss, &model.train],
            )
            .unwrap();
        first.get_or_insert(out[0].to_f64_vec()[0]);
    }
    let corpus = Value::from(data.answers.clone());
    let mut hits = 0;
    for start in (0..n).step_by(500) {
        let (q, _) = data.batch(&(start..start + 500).collect::<Vec<_>>());
        let out = sess
            .run(
                &[(&model.eval_questions, q), (&model.corpus, corpus.clone())],
                &[&model.retrieved.indices],
            )
            .unwrap();
        hits += out[0]
            .as_i64()
            .unwrap()
            .iter()
            .enumerate()
            .filter(|&(i, &j)| j as usize == start + i)
            .count();
    }
    let recall = hits as f64 / n as f64;
    assert!(
        recall > 0.5,
        "recall@1 after 300 steps: {recall} (first loss {first:?})"
    );
}
