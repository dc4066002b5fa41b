//! Power iteration clustering — MODELS.md §8 (the sparklyr two-circles example).

use flumen::models::pic::{Init, PicConfig, kmeans_1d, power_iteration_clustering, two_circles};

fn example_config() -> PicConfig {
    PicConfig {
        k: 2,
        max_iter: 10,
        init: Init::Degree,
        ..PicConfig::default()
    }
}

#[test]
fn two_circles_reproduce_the_post() {
    let (points, edges) = two_circles(80);
    assert_eq!(points.len(), 160);
    assert_eq!(edges.len(), 160 * 159 / 2);
    let r = power_iteration_clustering(160, &edges, &example_config()).unwrap();
    // Degrees: every inner point 36.444735, every outer one 7.227497.
    for (i, d) in r.degrees.iter().enumerate() {
        let want = if i < 80 { 36.444735 } else { 7.227497 };
        assert!((d - want).abs() < 5e-7, "degree of {i}: {d}");
    }
    // All ten iterations run (no early stop) and v is two-valued.
    assert_eq!(r.iterations, 10);
    let (inner, outer) = (&r.v[..80], &r.v[80..]);
    let spread = |s: &[f64]| {
        s.iter().fold(f64::MIN, |m, &x| m.max(x)) - s.iter().fold(f64::MAX, |m, &x| m.min(x))
    };
    assert!(spread(inner) < 1e-12 && spread(outer) < 1e-12);
    assert!((inner[0] - 8.990737e-3).abs() < 5e-10, "inner {}", inner[0]);
    assert!((outer[0] - 3.509263e-3).abs() < 5e-10, "outer {}", outer[0]);
    assert!((r.v.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    // Exact separation; as in the post, ids 0–4 → 1 and 156–159 → 0.
    for &(id, cluster) in &r.assignments {
        assert_eq!(cluster, usize::from(id < 80), "point {id}");
    }
    assert_eq!(r.centroids.len(), 2);
}

#[test]
fn random_init_returns_k_labels() {
    // Random init with 10 iterations need not separate the circles (MODELS.md §8).
    let (_, edges) = two_circles(40);
    let config = PicConfig {
        init: Init::Random { seed: 7 },
        max_iter: 10,
        ..PicConfig::default()
    };
    let r = power_iteration_clustering(80, &edges, &config).unwrap();
    assert_eq!(r.assignments.len(), 80);
    assert!(r.assignments.iter().all(|&(_, c)| c < 2));
    assert!((r.v.iter().map(|x| x.abs()).sum::<f64>() - 1.0).abs() < 1e-12);
    // The same seed gives the same result.
    assert_eq!(r, power_iteration_clustering(80, &edges, &config).unwrap());
}

#[test]
fn early_stop_and_isolated_points() {
    // Two disconnected pairs plus an isolated point: W is block-diagonal, so from the
    // degree vector the iteration is stationary at once and Spark's rule stops it after
    // two steps (δ = 0 twice).
    let edges = [(0, 1, 1.0), (2, 3, 2.0), (4, 4, 5.0)];
    let config = PicConfig {
        k: 3,
        max_iter: 50,
        ..example_config()
    };
    let r = power_iteration_clustering(5, &edges, &config).unwrap();
    assert_eq!(r.iterations, 2);
    assert_eq!(r.degrees, vec![1.0, 1.0, 2.0, 2.0, 0.0]);
    let labels: Vec<usize> = r.assignments.iter().map(|&(_, c)| c).collect();
    assert_eq!(labels, vec![1, 1, 2, 2, 0]);
}

#[test]
fn bad_input_is_a_clear_error() {
    let msg = |n, edges: &[(usize, usize, f64)], k| {
        let config = PicConfig {
            k,
            ..example_config()
        };
        power_iteration_clustering(n, edges, &config)
            .unwrap_err()
            .to_string()
    };
    let e = msg(3, &[(0, 1, -0.5)], 2);
    assert!(
        e.contains("power_iteration_clustering") && e.contains("-0.5"),
        "{e}"
    );
    let e = msg(3, &[(0, 1, f64::NAN)], 2);
    assert!(e.contains("NaN"), "{e}");
    let e = msg(3, &[(0, 3, 1.0)], 2);
    assert!(e.contains("(0, 3)") && e.contains("0..3"), "{e}");
    let e = msg(3, &[(0, 1, 1.0)], 4);
    assert!(e.contains("k = 4") && e.contains("3 points"), "{e}");
    let e = msg(3, &[(0, 1, 1.0)], 0);
    assert!(e.contains("k = 0"), "{e}");
    let e = msg(0, &[], 1);
    assert!(e.contains("n = 0"), "{e}");
    assert!(kmeans_1d(&[1.0, f64::NAN], 1, 5).is_err());
}

#[test]
fn kmeans_on_a_line() {
    let x = [0.1, 5.0, 0.2, 5.2, 9.9, 0.0, 10.1, 5.1];
    let (labels, centroids) = kmeans_1d(&x, 3, 20).unwrap();
    assert_eq!(labels, vec![0, 1, 0, 1, 2, 0, 2, 1]);
    let want = [0.1, 5.1, 10.0];
    for (c, w) in centroids.iter().zip(want) {
        assert!((c - w).abs() < 1e-12, "{centroids:?}");
    }
}
