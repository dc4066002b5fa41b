//! The matrix exponential (`expm`) and linear solves (`solve`) — MODELS.md §3.
//!
//! Every value is computed on both backends (the reference interpreter and the compiled
//! `Session`, which runs both ops as interpreter steps) and the two must agree bit for bit.
//! Tolerances: f64 `|got − want| ≤ 1e-10·max(1, |want|)` per entry unless a test says
//! otherwise (the video's 2×2 values are given to 10 decimals); f32 `1e-5` relative.
//! `tests/data/expm_reference.txt` holds 200 random matrices and `scipy.linalg.expm` of each
//! (written once by `tests/data/make_expm_reference.py`).

mod gradcheck;

use flumen::{Backend, DType, Graph, GraphDef, Session, Tensor, Value};
use gradcheck::{check_gradient_at, check_gradient_in};
use std::f64::consts::PI;

/// Run `build` on both backends and return the (identical) results as f64 vectors.
fn both(build: impl Fn(&Graph) -> flumen::Result<Vec<Tensor>>) -> Vec<Vec<f64>> {
    let mut results = Vec::new();
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let g = Graph::new();
        let fetches = build(&g).unwrap();
        let refs: Vec<&Tensor> = fetches.iter().collect();
        let mut sess = Session::with_backend(&g, backend);
        let out = sess.run(&[], &refs).unwrap();
        results.push(out);
    }
    let (interp, compiled) = (&results[0], &results[1]);
    for (a, b) in interp.iter().zip(compiled) {
        assert!(a.bit_eq(b), "backends differ:\n{a:?}\n{b:?}");
    }
    interp.iter().map(Value::to_f64_vec).collect()
}

fn mat(rows: &[&[f64]]) -> Value {
    let n = rows.len();
    let m = rows[0].len();
    Value::from_vec(&[n, m], rows.concat()).unwrap()
}

/// `expm` of one f64 matrix on both backends.
fn expm64(rows: &[&[f64]]) -> Vec<f64> {
    let a = mat(rows);
    both(|g| Ok(vec![g.constant(a.clone())?.expm()?])).remove(0)
}

#[track_caller]
fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "entry {k}: got {g}, want {w} (tolerance {tol})\n got {got:?}\nwant {want:?}"
        );
    }
}

#[test]
fn rotation_generator_gives_cos_and_sin() {
    for t in [0.3, 1.0, PI, 10.0] {
        let e = expm64(&[&[0.0, -t], &[t, 0.0]]);
        let (c, s) = (t.cos(), t.sin());
        assert_close(&e, &[c, -s, s, c], 1e-10);
    }
    // e^{[[0,−π],[π,0]]} = −I; the off-diagonals are rounding noise.
    let e = expm64(&[&[0.0, -PI], &[PI, 0.0]]);
    assert_close(&e, &[-1.0, 0.0, 0.0, -1.0], 1e-14);
}

#[test]
fn nilpotent_and_diagonal() {
    assert_close(
        &expm64(&[&[0.0, 2.5], &[0.0, 0.0]]),
        &[1.0, 2.5, 0.0, 1.0],
        1e-15,
    );
    let e1 = 1f64.exp();
    assert_close(
        &expm64(&[&[1.0, 0.0], &[0.0, 2.0]]),
        &[e1, 0.0, 0.0, e1 * e1],
        1e-14,
    );
    // The zero matrix and the empty matrix.
    assert_close(
        &expm64(&[&[0.0, 0.0], &[0.0, 0.0]]),
        &[1.0, 0.0, 0.0, 1.0],
        0.0,
    );
    let empty = both(|g| Ok(vec![g.zeros(&[3, 0, 0], DType::F64)?.expm()?]));
    assert!(empty[0].is_empty());
}

#[test]
fn the_videos_matrices() {
    let e = expm64(&[&[3.0, 1.0, 4.0], &[1.0, 5.0, 9.0], &[2.0, 6.0, 5.0]]);
    #[rustfmt::skip]
    let want = [
        33159.1082481292, 93457.3669284599, 120428.2080495041,
        75981.4179860919, 214248.5257909263, 276060.6198862415,
        64583.0912603441, 182098.6411527869, 234637.1328903556,
    ];
    assert_close(&e, &want, 1e-10);
    let cases: [(&[&[f64]], [f64; 4]); 3] = [
        (
            &[&[3.0, 1.0], &[4.0, 1.0]],
            [50.2451744501, 15.2825737301, 61.1302949202, 19.6800269899],
        ),
        (
            &[&[0.5, -3.0], &[1.0, -0.5]],
            [0.2129530383, -1.8021446056, 0.6007148685, -0.3877618303],
        ),
        (
            &[&[1.0, 2.0], &[3.0, 4.0]],
            [51.9689561987, 74.7365645670, 112.1048468505, 164.0738030492],
        ),
    ];
    for (a, want) in cases {
        // Given to 10 decimals: 1e-10 absolute (the half-unit of the last digit is 5e-11).
        for (g, w) in expm64(a).iter().zip(want) {
            assert!((g - w).abs() <= 1e-10, "{a:?}: got {g}, want {w}");
        }
    }
}

/// Determinant by Gaussian elimination with partial pivoting (cofactor expansion loses
/// six digits to cancellation on e^A, whose entries reach 2.8e5 while det is 4.4e5).
fn det(m: &[f64], n: usize) -> f64 {
    let mut a = m.to_vec();
    let mut det = 1.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| a[i * n + k].abs().total_cmp(&a[j * n + k].abs()))
            .unwrap();
        if p != k {
            for c in 0..n {
                a.swap(k * n + c, p * n + c);
            }
            det = -det;
        }
        det *= a[k * n + k];
        for i in k + 1..n {
            let l = a[i * n + k] / a[k * n + k];
            for c in k..n {
                a[i * n + c] -= l * a[k * n + c];
            }
        }
    }
    det
}

#[test]
fn determinant_trace_and_inverse_identities() {
    let a = mat(&[&[3.0, 1.0, 4.0], &[1.0, 5.0, 9.0], &[2.0, 6.0, 5.0]]);
    let out = both(|g| {
        let a = g.constant(a.clone())?;
        let ea = a.expm()?;
        let ena = a.neg()?.expm()?;
        Ok(vec![ea.clone(), ea.matmul(&ena)?])
    });
    // det e^A = e^{tr A} = e^13 = 442413.392…
    let det = det(&out[0], 3);
    assert!((det - 13f64.exp()).abs() <= 1e-9 * det, "det {det}");
    assert!((det - 442413.392).abs() < 1e-3, "det {det}");
    // e^A e^{−A} = I (entries of e^A reach 2.8e5, so allow that much cancellation).
    assert_close(
        &out[1],
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        1e-9,
    );
}

#[test]
fn non_commuting_matrices_do_not_add_exponents() {
    let a = mat(&[&[2.0, 7.0, 1.0], &[8.0, 2.0, 8.0], &[1.0, 8.0, 2.0]]);
    let b = mat(&[&[8.0, 4.0, 5.0], &[9.0, 0.0, 4.0], &[5.0, 2.0, 3.0]]);
    let out = both(|g| {
        let (a, b) = (g.constant(a.clone())?, g.constant(b.clone())?);
        let sum = (&a + &b)?.expm()?;
        let prod = a.expm()?.matmul(&b.expm()?)?;
        Ok(vec![sum, prod])
    });
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff: Vec<f64> = out[0].iter().zip(&out[1]).map(|(x, y)| x - y).collect();
    let ratio = norm(&diff) / norm(&out[0]);
    assert!((ratio - 2.16).abs() < 0.005, "ratio {ratio}");
}

#[test]
fn f32_matches_f64_and_batches_are_independent() {
    let rows: [[f64; 4]; 3] = [
        [3.0, 1.0, 4.0, 1.0],
        [0.5, -3.0, 1.0, -0.5],
        [0.0, -10.0, 10.0, 0.0],
    ];
    let flat: Vec<f64> = rows.concat();
    let batch64 = Value::from_vec(&[3, 2, 2], flat.clone()).unwrap();
    let batch32 = batch64.cast(DType::F32);
    let out = both(|g| {
        Ok(vec![
            g.constant(batch64.clone())?.expm()?,
            g.constant(batch32.clone())?.expm()?,
        ])
    });
    for (i, r) in rows.iter().enumerate() {
        let single = expm64(&[&r[..2], &r[2..]]);
        assert_eq!(&out[0][4 * i..4 * i + 4], &single[..], "batch {i}");
        assert_close(&out[1][4 * i..4 * i + 4], &single, 1e-5);
    }
}

/// The 200 random matrices of MODELS.md §3 against scipy.linalg.expm.
#[test]
fn random_matrices_match_scipy() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/expm_reference.txt"
    ))
    .unwrap();
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let mut cases = Vec::new();
    while let Some(header) = lines.next() {
        let words: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(words[0], "case", "{header}");
        let n: usize = words[3].parse().unwrap();
        let mut read = || -> Vec<f64> {
            (0..n)
                .flat_map(|_| {
                    let line = lines.next().expect("row");
                    line.split_whitespace()
                        .map(|x| x.parse::<f64>().unwrap())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let a = read();
        let want = read();
        cases.push((n, words[5].to_string(), a, want));
    }
    assert_eq!(cases.len(), 200);
    let out = both(|g| {
        cases
            .iter()
            .map(|(n, _, a, _)| g.constant(Value::from_vec(&[*n, *n], a.clone())?)?.expm())
            .collect()
    });
    let mut worst = 0.0f64;
    for ((n, sigma, _, want), got) in cases.iter().zip(&out) {
        let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
        let err = got
            .iter()
            .zip(want)
            .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
        let rel = err / scale;
        assert!(rel <= 1e-10, "n={n} sigma={sigma}: relative error {rel:e}");
        worst = worst.max(rel);
    }
    eprintln!("largest relative error vs scipy over 200 matrices: {worst:e}");
}

#[test]
fn expm_gradient_matches_finite_differences() {
    // Small norms (low Padé degrees), norms needing scaling and squaring, and a batch.
    check_gradient_in(|_, x| x[0].expm(), &[&[3, 3]], 1, (-0.01, 0.01));
    check_gradient_in(|_, x| x[0].expm(), &[&[3, 3]], 2, (-0.3, 0.3));
    check_gradient_in(|_, x| x[0].expm(), &[&[4, 4]], 3, (-2.0, 2.0));
    check_gradient_in(|_, x| x[0].expm(), &[&[2, 3, 3]], 4, (-1.0, 1.0));
    // Through a product, so the upstream gradient is not a constant pattern.
    check_gradient_in(
        |_, x| x[0].expm()?.matmul(&x[1]),
        &[&[2, 2], &[2, 3]],
        5,
        (-1.5, 1.5),
    );
}

#[test]
fn solve_values_broadcasting_and_gradients() {
    // [[2,1],[1,3]] x = [[3],[5]] → x = [0.8, 1.4]; a zero first pivot needs a row swap.
    let out = both(|g| {
        let a = g.constant(mat(&[&[2.0, 1.0], &[1.0, 3.0]]))?;
        let b = g.constant(mat(&[&[3.0], &[5.0]]))?;
        let p = g.constant(mat(&[&[0.0, 1.0], &[1.0, 0.0]]))?;
        let c = g.constant(mat(&[&[2.0, 7.0], &[3.0, 5.0]]))?;
        // a broadcast over a batch of right-hand sides
        let bb = g.constant(Value::from_vec(&[2, 2, 1], vec![3.0, 5.0, 1.0, 0.0])?)?;
        Ok(vec![a.solve(&b)?, p.solve(&c)?, a.solve(&bb)?])
    });
    assert_close(&out[0], &[0.8, 1.4], 1e-15);
    assert_close(&out[1], &[3.0, 5.0, 2.0, 7.0], 0.0);
    assert_close(&out[2], &[0.8, 1.4, 0.6, -0.2], 1e-15);
    // Diagonally dominant so the solve is well conditioned.
    let a = vec![4.0, 1.0, -0.5, 0.3, 3.0, 0.7, -1.0, 0.2, 5.0];
    let b = vec![1.0, -2.0, 0.5, 0.3, 2.0, -1.0];
    check_gradient_at(
        |_, x| x[0].solve(&x[1]),
        &[&[3, 3], &[3, 2]],
        &[a.clone(), b.clone()],
        6,
    );
    // a [3, 3] broadcast against b [2, 3, 2]: a's gradient sums over the batch.
    check_gradient_at(
        |_, x| x[0].solve(&x[1]),
        &[&[3, 3], &[2, 3, 2]],
        &[a, [b.clone(), b].concat()],
        7,
    );
}

#[test]
fn singular_and_malformed_inputs_are_errors() {
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let g = Graph::new();
        let a = g.placeholder("a", DType::F64, &[2, 2]).unwrap();
        let b = g.constant(mat(&[&[1.0], &[2.0]])).unwrap();
        let x = a.solve(&b).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        let feed = mat(&[&[1.0, 2.0], &[2.0, 4.0]]);
        let err = sess.run(&[(&a, feed)], &[&x]).unwrap_err().to_string();
        assert!(err.contains("singular"), "{backend:?}: {err}");
        assert!(err.contains("solve"), "{backend:?}: {err}");
        // A NaN entry is not singular: it propagates.
        let nan = mat(&[&[f64::NAN, 0.0], &[0.0, 1.0]]);
        let out = sess.run(&[(&a, nan)], &[&x]).unwrap();
        assert!(out[0].to_f64_vec()[0].is_nan());
    }
    let g = Graph::new();
    let f = |s: &[usize], d: DType| g.zeros(s, d).unwrap();
    let msg = |r: flumen::Result<Tensor>| r.unwrap_err().to_string();
    let e = msg(f(&[2, 3], DType::F64).expm());
    assert!(e.contains("square matrices") && e.contains("[2, 3]"), "{e}");
    let e = msg(f(&[3], DType::F64).expm());
    assert!(e.contains("square matrices"), "{e}");
    let e = msg(f(&[2, 2], DType::I32).expm());
    assert!(e.contains("float dtype") && e.contains("expm"), "{e}");
    let e = msg(f(&[2, 3], DType::F64).solve(&f(&[2, 1], DType::F64)));
    assert!(e.contains("square matrix"), "{e}");
    let e = msg(f(&[2, 2], DType::F64).solve(&f(&[3, 1], DType::F64)));
    assert!(e.contains("as many rows"), "{e}");
    let e = msg(f(&[2, 2], DType::F64).solve(&f(&[2], DType::F64)));
    assert!(e.contains("rank >= 2"), "{e}");
    let e = msg(f(&[2, 2], DType::F64).solve(&f(&[2, 1], DType::F32)));
    assert!(e.contains("dtype mismatch"), "{e}");
    let e = msg(f(&[2, 2, 2], DType::F64).solve(&f(&[3, 2, 1], DType::F64)));
    assert!(e.contains("broadcast"), "{e}");
}

#[test]
fn text_ir_round_trip_and_compiled_report() {
    let g = Graph::new();
    let a = g.placeholder("a", DType::F64, &[2, 3, 3]).unwrap();
    let b = g.placeholder("b", DType::F64, &[3, 2]).unwrap();
    let e = a.expm().unwrap();
    let x = e.solve(&b).unwrap();
    let text = g.def().to_string();
    assert!(text.contains("expm(") && text.contains("solve("), "{text}");
    let parsed: GraphDef = text.parse().unwrap();
    assert_eq!(parsed.to_string(), text);
    let mut sess = Session::new(&g);
    let report = sess.compile_report(&[&a, &b], &[&x]).unwrap().unwrap();
    assert_eq!(report.interpreted.len(), 2, "{:?}", report.interpreted);
}

/// MODELS.md §3: `e^{tA}x₀` against RK4 (dt = 1e-4) on `[[3,1],[4,1]]` at t = 1.
#[test]
fn ode_solution_matches_rk4() {
    let a = [[3.0, 1.0], [4.0, 1.0]];
    let x0 = [1.0, -0.5];
    let out = both(|g| {
        let e = g.constant(mat(&[&a[0], &a[1]]))?.expm()?;
        Ok(vec![e.matmul(&g.constant(mat(&[&[x0[0]], &[x0[1]]]))?)?])
    });
    let f = |x: [f64; 2]| {
        [
            a[0][0] * x[0] + a[0][1] * x[1],
            a[1][0] * x[0] + a[1][1] * x[1],
        ]
    };
    let add = |x: [f64; 2], k: [f64; 2], h: f64| [x[0] + h * k[0], x[1] + h * k[1]];
    let (mut x, h) = (x0, 1e-4);
    for _ in 0..10_000 {
        let k1 = f(x);
        let k2 = f(add(x, k1, h / 2.0));
        let k3 = f(add(x, k2, h / 2.0));
        let k4 = f(add(x, k3, h));
        for i in 0..2 {
            x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
    }
    let err = (out[0][0] - x[0]).hypot(out[0][1] - x[1]) / x[0].hypot(x[1]);
    assert!(err <= 1e-8, "relative error {err:e}");
}
