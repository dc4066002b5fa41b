//! Weighted Greenwald–Khanna quantile summaries — MODELS.md §9.

use flumen::models::quantiles::{WeightedSummary, exact_weighted_quantile};
use flumen::{DType, Graph, Session};
use proptest::prelude::*;

/// Standard normal density.
fn phi(x: f64) -> f64 {
    (-x * x / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal CDF (Abramowitz & Stegun 7.1.26 for erf; error < 1.5e-7).
fn big_phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t
        * (0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// The post's data: x_k = k/1000 for k = −499,999..=500,000, weight φ(x).
fn normal_points() -> impl Iterator<Item = (f64, f64)> {
    (-499_999i64..=500_000).map(|k| {
        let x = 1000.0 * k as f64 / 1e6;
        (x, phi(x))
    })
}

#[test]
fn the_posts_normal_density_example() {
    let mut s = WeightedSummary::new(0.01).unwrap();
    for (x, w) in normal_points() {
        s.insert(x, w).unwrap();
    }
    s.compress();
    assert_eq!(s.samples().len(), 181);
    let q25 = s.query_sparklyr(0.25).unwrap().unwrap();
    let q75 = s.query_sparklyr(0.75).unwrap().unwrap();
    assert!((q25 - -0.696).abs() < 1e-9, "q25 {q25}");
    assert!((q75 - 0.662).abs() < 1e-9, "q75 {q75}");
    assert!((big_phi(q25) - 0.2432).abs() < 1e-4 && (big_phi(q75) - 0.7460).abs() < 1e-4);
    // The corrected query's answers are within ε of the asked quantile too.
    for q in [0.1, 0.25, 0.5, 0.75, 0.9] {
        let x = s.query(q).unwrap().unwrap();
        assert!((big_phi(x) - q).abs() <= 0.01 + 1e-4, "q {q}: x {x}");
    }
}

#[test]
fn merging_contiguous_partitions() {
    let points: Vec<(f64, f64)> = normal_points().collect();
    for parts in [2usize, 4, 8] {
        let size = points.len() / parts;
        // Spark's treeAggregate: the empty summary folded with each partition's.
        let mut acc = WeightedSummary::new(0.01).unwrap();
        for chunk in points.chunks(size) {
            let mut p = WeightedSummary::new(0.01).unwrap();
            for &(x, w) in chunk {
                p.insert(x, w).unwrap();
            }
            acc = acc.merge(&p);
        }
        let q25 = acc.query_sparklyr(0.25).unwrap().unwrap();
        let q75 = acc.query_sparklyr(0.75).unwrap().unwrap();
        assert!((q25 - -0.696).abs() < 1e-9, "{parts} partitions: q25 {q25}");
        assert!((q75 - 0.663).abs() < 1e-9, "{parts} partitions: q75 {q75}");
        let total: f64 = points.iter().map(|p| p.1).sum();
        assert!((acc.total_weight() - total).abs() < 1e-9);
    }
}

/// SplitMix64 → standard normals by Box–Muller.
struct Rng(u64);
impl Rng {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

#[test]
fn unweighted_normal_samples() {
    let mut rng = Rng(2021);
    let mut s = WeightedSummary::new(0.01).unwrap();
    for _ in 0..1_000_000 {
        s.insert(rng.normal(), 1.0).unwrap();
    }
    for q in [0.25, 0.75] {
        for x in [s.query_sparklyr(q).unwrap(), s.query(q).unwrap()] {
            let x = x.unwrap();
            // ε plus the sampling noise of 10⁶ draws (sd 4.3e-4).
            assert!((big_phi(x) - q).abs() <= 0.01 + 2e-3, "q {q}: x {x}");
        }
    }
}

#[test]
fn toy_data_with_atoms() {
    let plain = [1.0, 1.0, 1.0, 1.0, 0.0, 2.0, -1.0, -1.0];
    let tuples = [(1.0, 0.5), (0.0, 0.125), (2.0, 0.125), (-1.0, 0.25)];
    let pairs: Vec<(f64, f64)> = plain.iter().map(|&x| (x, 1.0)).collect();
    assert_eq!(exact_weighted_quantile(&pairs, 0.5), Some(1.0));
    assert_eq!(exact_weighted_quantile(&tuples, 0.5), Some(1.0));
    for eps in [0.01, 0.1] {
        let mut a = WeightedSummary::new(eps).unwrap();
        for &(x, w) in &pairs {
            a.insert(x, w).unwrap();
        }
        let mut b = WeightedSummary::new(eps).unwrap();
        for &(x, w) in &tuples {
            b.insert(x, w).unwrap();
        }
        for s in [&mut a, &mut b] {
            assert_eq!(s.query(0.5).unwrap(), Some(1.0), "eps {eps}");
            // The literal query cannot select the heavy atom: it falls back to the last.
            assert_eq!(s.query_sparklyr(0.5).unwrap(), Some(2.0), "eps {eps}");
        }
    }
}

#[test]
fn fed_from_session_outputs() {
    let g = Graph::new();
    let x = g
        .random_normal(&[1000], 0.0, 1.0, DType::F64, Some(3))
        .unwrap();
    let w = x.square().unwrap().neg().unwrap().exp().unwrap();
    let mut sess = Session::new(&g);
    let mut s = WeightedSummary::new(0.05).unwrap();
    let mut all = Vec::new();
    for _ in 0..5 {
        let out = sess.run(&[], &[&x, &w]).unwrap();
        s.insert_values(&out[0], &out[1]).unwrap();
        all.extend(out[0].to_f64_vec().into_iter().zip(out[1].to_f64_vec()));
    }
    assert_eq!(all.len(), 5000);
    check_guarantee(&mut s, &all, 0.05);
    let e = s.insert_values(
        &sess.run(&[], &[&x]).unwrap()[0],
        &flumen::Value::zeros(DType::F64, &[3]),
    );
    assert!(e.unwrap_err().to_string().contains("shape"));
}

#[test]
fn bad_input_is_an_error() {
    assert!(WeightedSummary::new(-0.1).is_err());
    assert!(WeightedSummary::new(f64::NAN).is_err());
    let mut s = WeightedSummary::new(0.01).unwrap();
    assert!(s.query(0.5).unwrap().is_none());
    let e = s.insert(1.0, -2.0).unwrap_err().to_string();
    assert!(e.contains("WeightedSummary") && e.contains("-2"), "{e}");
    assert!(s.insert(f64::INFINITY, 1.0).is_err());
    s.insert(f64::NAN, 1.0).unwrap(); // skipped, as in sparklyr
    s.insert(3.0, 1.0).unwrap();
    assert!(s.query(1.5).unwrap_err().to_string().contains("[0, 1]"));
    assert_eq!(s.query(0.5).unwrap(), Some(3.0));
}

/// Every answer for q on a grid satisfies `W(< x) ≤ (q + ε)W` and `W(≤ x) ≥ (q − ε)W`
/// against the exact weighted CDF.
fn check_guarantee(s: &mut WeightedSummary, points: &[(f64, f64)], eps: f64) {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = sorted.iter().map(|p| p.1).sum();
    let slack = 1e-9 * total;
    for k in 0..=100 {
        let q = k as f64 / 100.0;
        let x = s.query(q).unwrap().unwrap();
        let below: f64 = sorted.iter().take_while(|p| p.0 < x).map(|p| p.1).sum();
        let upto: f64 = sorted.iter().take_while(|p| p.0 <= x).map(|p| p.1).sum();
        assert!(
            below <= (q + eps) * total + slack,
            "q {q}: x {x}: W(<x) = {below} of {total}"
        );
        assert!(
            upto >= (q - eps) * total - slack,
            "q {q}: x {x}: W(<=x) = {upto} of {total}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The ε guarantee on 10⁵ random points (continuous values or a few atoms, spread-out
    /// weights), in one summary and merged from partitions.
    #[test]
    fn epsilon_guarantee(
        seed in any::<u64>(),
        eps in prop::sample::select(vec![0.001, 0.01, 0.05]),
        atoms in any::<bool>(),
        parts in 1usize..4,
    ) {
        let mut rng = Rng(seed);
        let points: Vec<(f64, f64)> = (0..100_000)
            .map(|_| {
                let x = if atoms { (rng.uniform() * 20.0).floor() } else { rng.normal() * 3.0 };
                (x, rng.uniform().powi(3) * 10.0)
            })
            .collect();
        let mut acc = WeightedSummary::new(eps).unwrap();
        for chunk in points.chunks(points.len().div_ceil(parts)) {
            let mut p = WeightedSummary::new(eps).unwrap();
            for &(x, w) in chunk {
                p.insert(x, w).unwrap();
            }
            acc = acc.merge(&p);
        }
        check_guarantee(&mut acc, &points, eps);
    }
}
