//! Power iteration clustering (Lin & Cohen 2010, as Spark MLlib's `PowerIterationClustering`
//! and sparklyr's `ml_power_iteration` run it) — MODELS.md §8.
//!
//! The whole computation is a Flumen graph over the edge list, run by a [`Session`]:
//!
//! 1. the edges `(i, j, a_ij)` are symmetrised (both directions; self-loops dropped), the
//!    degrees `d_i = Σ_j a_ij` are a segment sum, and `W_ij = a_ij / max(d_i, 2.22e-16)`
//!    (row-normalised affinities) is a gather and a division;
//! 2. the variable `v` starts from `d / Σd` ([`Init::Degree`]) or `r / Σ|r|` with
//!    `r ~ N(0, 1)` from a seeded `random_normal` op ([`Init::Random`]);
//! 3. one power-iteration step is a sparse matrix–vector product (gather `v` at the edges'
//!    targets, multiply by `W`, segment-sum at their sources), an L1 normalisation and the
//!    change `δ = ‖v_new − v‖₁`, assigned back to `v`; the host runs steps while
//!    `|δ_t − δ_{t−1}| > max(1e-5/n, 1e-8)` (Spark's rule, checked before each step with an
//!    initial difference of +∞), at most `max_iter` times;
//! 4. 1-D k-means on `v` is a second graph (distances to the centroids, `argmin`, segment
//!    sums and counts, assigned to the centroid variable), run until the assignment stops
//!    changing or 20 rounds.
//!
//! Differences from Spark: k-means starts from the values at the quantiles `(c + ½)/k` of
//! the sorted `v` instead of k-means|| with a random seed (deterministic, and on a line the
//! quantiles are already well spread), and clusters are numbered by increasing centroid, so
//! the labels do not depend on a seed. Everything runs in f64.

use crate::{DType, Graph, GraphError, Result, Session, Value};

/// An edge `(i, j, a_ij)` of the similarity graph.
pub type Edge = (usize, usize, f64);

/// How the power iteration's vector starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `v⁰ = d / Σd` (Spark's `"degree"`).
    Degree,
    /// `v⁰ = r / Σ|r|`, `r ~ N(0, 1)` from a Philox stream with this seed (Spark's
    /// `"random"`, the Spark ML default).
    Random {
        /// Seed of the `random_normal` op.
        seed: u64,
    },
}

/// Parameters of [`power_iteration_clustering`] (Spark ML's defaults: `k = 2`,
/// `max_iter = 20`, random init).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PicConfig {
    /// Number of clusters.
    pub k: usize,
    /// Largest number of power iterations.
    pub max_iter: usize,
    /// The starting vector.
    pub init: Init,
    /// Largest number of k-means rounds.
    pub kmeans_max_iter: usize,
}

impl Default for PicConfig {
    fn default() -> Self {
        PicConfig {
            k: 2,
            max_iter: 20,
            init: Init::Random { seed: 0 },
            kmeans_max_iter: 20,
        }
    }
}

/// The result of [`power_iteration_clustering`].
#[derive(Clone, Debug, PartialEq)]
pub struct PicResult {
    /// `(id, cluster)` for every point `0..n`, clusters numbered by increasing centroid.
    pub assignments: Vec<(usize, usize)>,
    /// The degree `d_i` of every point.
    pub degrees: Vec<f64>,
    /// The final power-iteration vector.
    pub v: Vec<f64>,
    /// Power iterations run.
    pub iterations: usize,
    /// The k-means centroids, ascending.
    pub centroids: Vec<f64>,
}

fn invalid(msg: String) -> GraphError {
    GraphError::invalid(format!("power_iteration_clustering: {msg}"))
}

/// Check the input and symmetrise it: both directions of every edge, self-loops dropped.
fn symmetric_edges(n: usize, edges: &[Edge], k: usize) -> Result<(Vec<i64>, Vec<i64>, Vec<f64>)> {
    if n == 0 {
        return Err(invalid("no points (n = 0); expected n >= 1".into()));
    }
    if k == 0 || k > n {
        return Err(invalid(format!(
            "k = {k} clusters for {n} points; expected 1 <= k <= n"
        )));
    }
    let (mut src, mut dst, mut a) = (Vec::new(), Vec::new(), Vec::new());
    for (e, &(i, j, s)) in edges.iter().enumerate() {
        if i >= n || j >= n {
            return Err(invalid(format!(
                "edge {e} ({i}, {j}) has an id outside 0..{n}; expected ids below the number of points"
            )));
        }
        if !(s >= 0.0 && s.is_finite()) {
            return Err(invalid(format!(
                "edge {e} ({i}, {j}) has similarity {s}; expected a finite similarity >= 0"
            )));
        }
        if i != j {
            src.extend([i as i64, j as i64]);
            dst.extend([j as i64, i as i64]);
            a.extend([s, s]);
        }
    }
    Ok((src, dst, a))
}

/// Cluster the points `0..n` of the similarity graph `edges` (`(i, j, a_ij)`, `a_ij >= 0`;
/// each undirected edge once, in either direction) into `config.k` clusters.
///
/// Errors: a negative or non-finite similarity, an id `>= n`, `k = 0` or `k > n`.
pub fn power_iteration_clustering(
    n: usize,
    edges: &[Edge],
    config: &PicConfig,
) -> Result<PicResult> {
    let (src, dst, a) = symmetric_edges(n, edges, config.k)?;
    let e = a.len();
    let g = Graph::new();
    let src_t = g.constant_named("pic/src", Value::from_vec(&[e], src)?)?;
    let dst_t = g.constant_named("pic/dst", Value::from_vec(&[e], dst)?)?;
    let a_t = g.constant_named("pic/affinity", Value::from_vec(&[e], a)?)?;
    let degree = a_t.unsorted_segment_sum(&src_t, n)?;
    let w = (&a_t / &degree.maximum(2.22e-16)?.gather(&src_t, 0, 0)?)?;
    let init = match config.init {
        Init::Degree => (&degree / &degree.sum_all()?)?,
        Init::Random { seed } => {
            let r = g.random_normal(&[n], 0.0, 1.0, DType::F64, Some(seed))?;
            (&r / &r.abs()?.sum_all()?)?
        }
    };
    let v = g.variable_with("pic/v", init, false)?;
    let u = (&w * &v.gather(&dst_t, 0, 0)?)?.unsorted_segment_sum(&src_t, n)?;
    let v_new = (&u / &u.abs()?.sum_all()?)?;
    let delta = (&v_new - &v)?.abs()?.sum_all()?;
    let step = v.assign(&v_new)?;

    let mut sess = Session::new(&g);
    let degrees = sess.run(&[], &[&degree])?[0].to_f64_vec();
    let tol = (1e-5 / n as f64).max(1e-8);
    let (mut prev, mut diff, mut iterations) = (f64::INFINITY, f64::INFINITY, 0);
    while iterations < config.max_iter && diff.abs() > tol {
        let d = sess.run(&[], &[&delta, &step])?[0].to_f64_vec()[0];
        diff = (d - prev).abs();
        prev = d;
        iterations += 1;
    }
    let values = sess.variable(&v)?.to_f64_vec();
    let (labels, centroids) = kmeans_1d(&values, config.k, config.kmeans_max_iter)?;
    Ok(PicResult {
        assignments: labels.into_iter().enumerate().collect(),
        degrees,
        v: values,
        iterations,
        centroids,
    })
}

/// 1-D k-means of `x` as a graph: returns each point's cluster and the centroids, both
/// ordered by increasing centroid. Starts from the quantiles `(c + ½)/k` of the sorted
/// values; runs until the assignment is stable or `max_iter` rounds.
pub fn kmeans_1d(x: &[f64], k: usize, max_iter: usize) -> Result<(Vec<usize>, Vec<f64>)> {
    let n = x.len();
    if k == 0 || k > n {
        return Err(GraphError::invalid(format!(
            "kmeans_1d: k = {k} clusters for {n} values; expected 1 <= k <= n"
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(GraphError::invalid(
            "kmeans_1d: the values must be finite (a NaN or infinity has no cluster)",
        ));
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let start: Vec<f64> = (0..k).map(|c| sorted[(2 * c + 1) * n / (2 * k)]).collect();

    let g = Graph::new();
    let xs = g.constant_named("kmeans/x", Value::from_vec(&[n], x.to_vec())?)?;
    let c = g.variable_with("kmeans/centroids", Value::from_vec(&[k], start)?, false)?;
    let dist = (&xs.reshape(&[n as i64, 1])? - &c.reshape(&[1, k as i64])?)?.abs()?;
    let label = dist.argmin(1)?;
    let sums = xs.unsorted_segment_sum(&label, k)?;
    let counts = g.ones(&[n], DType::F64)?.unsorted_segment_sum(&label, k)?;
    // An empty cluster keeps its centroid.
    let updated = counts
        .greater(0.0)?
        .select(&(&sums / &counts.maximum(1.0)?)?, &c)?;
    let step = c.assign(&updated)?;

    let mut sess = Session::new(&g);
    let mut labels: Vec<i64> = Vec::new();
    for _ in 0..max_iter.max(1) {
        let out = sess.run(&[], &[&label, &step])?;
        let now = out[0].as_i64()?.iter().copied().collect::<Vec<_>>();
        let stable = now == labels;
        labels = now;
        if stable {
            break;
        }
    }
    let centroids = sess.variable(&c)?.to_f64_vec();
    // Number clusters by increasing centroid.
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| centroids[a].total_cmp(&centroids[b]));
    let mut rank = vec![0; k];
    for (r, &c) in order.iter().enumerate() {
        rank[c] = r;
    }
    let labels = labels.iter().map(|&l| rank[l as usize]).collect();
    Ok((labels, order.iter().map(|&c| centroids[c]).collect()))
}

/// The two-circles example of the sparklyr post (MODELS.md §8): `per_circle` points on the
/// unit circle (ids `0..per_circle`) and as many on the circle of radius 4, similarity
/// `exp(−‖p − q‖²/2)`, one edge per pair `src > dst` (the lower triangle). Returns the points
/// and the edges.
pub fn two_circles(per_circle: usize) -> (Vec<(f64, f64)>, Vec<Edge>) {
    let mut points = Vec::with_capacity(2 * per_circle);
    for radius in [1.0, 4.0] {
        for i in 0..per_circle {
            let t = 2.0 * std::f64::consts::PI * i as f64 / per_circle as f64;
            points.push((radius * t.cos(), radius * t.sin()));
        }
    }
    let mut edges = Vec::new();
    for i in 0..points.len() {
        for j in 0..i {
            let (dx, dy) = (points[i].0 - points[j].0, points[i].1 - points[j].1);
            edges.push((i, j, (-(dx * dx + dy * dy) / 2.0).exp()));
        }
    }
    (points, edges)
}
