//! Routing Transformer attention (MODELS.md §5) as Flumen graphs: content-based sparse
//! attention through online k-means.
//!
//! A routing head normalises its (usually shared) query/key vectors, scores them against
//! `k` centroids `μ[H, k, d]` (a non-trainable variable), and routes to every centroid its
//! top-`w` queries and keys (*balanced* routing, `w = n/k`: indices `[B, H, k, w]` from
//! [`balanced_routing`]). Each cluster attends within itself ([`routed_attention`]: gather →
//! `[B, H, k, w, w]` scores with an optional causal mask → softmax → scatter back, averaging
//! positions routed to several clusters). With `k = √n` that is `k·(n/k)² = n^1.5` score
//! entries instead of `n²`.
//!
//! The centroids follow the mini-batch k-means rule as an exponential moving average
//! ([`KMeans::ema_update`]) and the vectors are pulled toward their centroid by the
//! commitment loss ([`KMeans::commitment_loss`]). Local heads (blocked attention with a
//! look-back, [`local_attention`]) and the dense reference ([`dense_attention`]) live in
//! [`local`]; a two-layer language model mixing both kinds of heads is in [`model`].
//!
//! All tensors are `[B, H, n, d]` (batch, heads, positions, head size) and any float dtype.

pub mod local;
pub mod model;

pub use local::{LocalAttention, dense_attention, local_attention, local_window_mask};

use flumen_frontend::{DType, Graph, GraphError, Init, Result, Tensor};

/// The score given to disallowed (masked) query/key pairs before the softmax.
pub const MASK_VALUE: f64 = -1e9;
/// The score of a position attending to itself when [`Mask::exclude_self`] is set (lucidrains'
/// `TOKEN_SELF_ATTN_VALUE`): with shared queries and keys `q·q` would dominate, yet a
/// position with no other allowed key still attends to itself.
pub const SELF_VALUE: f64 = -5e4;

/// Which query/key pairs may attend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    /// Only keys at positions `<=` the query's (language modelling).
    pub causal: bool,
    /// Give a position's own key the score [`SELF_VALUE`] (for shared queries and keys).
    pub exclude_self: bool,
}

impl Mask {
    /// Apply the mask to scores, given broadcastable query and key positions (integers).
    /// `extra` (bool, broadcastable) further restricts the allowed pairs.
    pub(crate) fn apply(
        self,
        scores: &Tensor,
        q_pos: &Tensor,
        k_pos: &Tensor,
        extra: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut scores = scores.clone();
        if self.exclude_self {
            scores = q_pos.equal(k_pos)?.select(SELF_VALUE, &scores)?;
        }
        let mut allowed = extra.cloned();
        if self.causal {
            let c = q_pos.greater_equal(k_pos)?;
            allowed = Some(match allowed {
                Some(a) => a.logical_and(&c)?,
                None => c,
            });
        }
        match allowed {
            Some(a) => a.select(&scores, MASK_VALUE),
            None => Ok(scores),
        }
    }
}

/// An error from one of this module's builders (named `what`).
pub(crate) fn invalid(what: &str, msg: String) -> GraphError {
    GraphError::invalid(format!("{what}: {msg}"))
}

/// Check that `t` is a float tensor of rank `rank`.
pub(crate) fn expect_float(what: &str, name: &str, t: &Tensor, rank: usize) -> Result<()> {
    if t.rank() != rank || !t.dtype().is_float() {
        return Err(invalid(
            what,
            format!(
                "`{name}` must be a float tensor of rank {rank}, got {} {:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// Check that `q`, `k`, `v` are `[B, H, n, d]` float tensors of one dtype, `k` and `v` of the
/// same shape and `q` with the same `B`, `H`, `d`. Returns `(B, H, n_q, n_k, d)`.
pub(crate) fn check_qkv(
    what: &str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(usize, usize, usize, usize, usize)> {
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        expect_float(what, name, t, 4)?;
    }
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let same_dtype = q.dtype() == k.dtype() && k.dtype() == v.dtype();
    if !same_dtype || ks[..3] != vs[..3] || qs[..2] != ks[..2] || qs[3] != ks[3] {
        return Err(invalid(
            what,
            format!(
                "expected q [B,H,n,d], k [B,H,m,d] and v [B,H,m,e] of one dtype; got q {} {qs:?}, k {} {ks:?}, v {} {vs:?}",
                q.dtype(),
                k.dtype(),
                v.dtype()
            ),
        ));
    }
    Ok((qs[0], qs[1], qs[2], ks[2], qs[3]))
}

/// Balanced routing: for every head and centroid, the positions of the `window` vectors of
/// `x` (`[B, H, n, d]`) that score highest against that centroid (`centroids` `[H, k, d]`).
/// Returns i64 indices `[B, H, k, window]`; a position may be routed to several clusters or to none. The selection is exact
/// ([`chunked_top_k`](crate::models::realm::chunked_top_k) with chunks of about
/// `√(n/window)` positions, so only a fraction of each row is sorted); the order of the
/// positions within a cluster is unspecified (attention within a cluster does not depend on
/// it).
pub fn balanced_routing(x: &Tensor, centroids: &Tensor, window: usize) -> Result<Tensor> {
    const WHAT: &str = "balanced_routing";
    expect_float(WHAT, "x", x, 4)?;
    expect_float(WHAT, "centroids", centroids, 3)?;
    let (xs, cs) = (x.shape(), centroids.shape());
    if cs[0] != xs[1] || cs[2] != xs[3] || x.dtype() != centroids.dtype() {
        return Err(invalid(
            WHAT,
            format!(
                "centroids must be [H, k, d] = [{}, k, {}] of x's dtype {}, got {} {cs:?}",
                xs[1],
                xs[3],
                x.dtype(),
                centroids.dtype()
            ),
        ));
    }
    if window == 0 || window > xs[2] {
        return Err(invalid(
            WHAT,
            format!(
                "window must be in 1..={} (the positions), got {window}",
                xs[2]
            ),
        ));
    }
    // [B,H,n,d]·[H,d,k] → [B,H,n,k] → [B,H,k,n] → top-w along n.
    let scores = x.matmul_t(centroids, false, true)?;
    scores
        .transpose(&[0, 1, 3, 2])?
        .top_k(window)
        .map(|(_, i)| i)
}

/// The result of [`routed_attention`].
#[derive(Clone, Debug)]
pub struct Routed {
    /// The attention output `[B, H, n, e]` (zero at positions routed to no cluster).
    pub output: Tensor,
    /// The masked score tensor `[B, H, k, w, w]` (its size is the cost of the head).
    pub scores: Tensor,
    /// How many clusters each query position was routed to, `[B, H, n]` (as `q`'s dtype).
    pub counts: Tensor,
}

/// Attention within clusters: query cluster `c` (positions `q_index[b,h,c,:]`) attends to key
/// cluster `c` (positions `k_index[b,h,c,:]`), with scores `q·k/√d`, the `mask` applied on the
/// original positions, a softmax per query, and the outputs scattered back to their
/// positions, averaged over the clusters a position was routed to.
///
/// `q` `[B,H,n,d]`, `k` `[B,H,m,d]`, `v` `[B,H,m,e]`; `q_index` `[B,H,k,w]` and `k_index`
/// `[B,H,k,w']` are integer positions (e.g. from [`balanced_routing`]).
pub fn routed_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    q_index: &Tensor,
    k_index: &Tensor,
    mask: Mask,
) -> Result<Routed> {
    const WHAT: &str = "routed_attention";
    let (b, h, n, _m, d) = check_qkv(WHAT, q, k, v)?;
    for (name, idx) in [("q_index", q_index), ("k_index", k_index)] {
        let s = idx.shape();
        if !idx.dtype().is_int() || s.len() != 4 || s[0] != b || s[1] != h {
            return Err(invalid(
                WHAT,
                format!(
                    "`{name}` must be integer positions [B, H, clusters, window] = [{b}, {h}, _, _], got {} {s:?}",
                    idx.dtype()
                ),
            ));
        }
    }
    if q_index.shape()[2] != k_index.shape()[2] {
        return Err(invalid(
            WHAT,
            format!(
                "q_index {:?} and k_index {:?} must have the same number of clusters",
                q_index.shape(),
                k_index.shape()
            ),
        ));
    }
    // Gather the clusters: [B,H,k,w,d].
    let qg = q.gather(q_index, 2, 2)?;
    let kg = k.gather(k_index, 2, 2)?;
    let vg = v.gather(k_index, 2, 2)?;
    let raw = (qg.matmul_t(&kg, false, true)? * (1.0 / (d as f64).sqrt()))?;
    let q_pos = q_index.expand_dims(-1)?;
    let k_pos = k_index.expand_dims(-2)?;
    let scores = mask.apply(&raw, &q_pos, &k_pos, None)?;
    let out = scores.softmax(-1)?.matmul(&vg)?;
    // Scatter back and average over duplicates.
    let sums = out.scatter_add(q_index, 2, 2, n)?;
    let ones = q.graph().ones(q_index.shape(), q.dtype())?;
    let counts = ones.scatter_add(q_index, 2, 2, n)?;
    let output = (&sums / &counts.maximum(1.0)?.expand_dims(-1)?)?;
    Ok(Routed {
        output,
        scores,
        counts,
    })
}

/// Online k-means over `[B, H, n, d]` vectors with one set of centroids per head: the
/// centroids `μ[H, k, d]` are a non-trainable variable moved by an exponential moving
/// average of the clusters' means ([`KMeans::ema_update`]).
#[derive(Clone, Debug)]
pub struct KMeans {
    /// The centroids `[H, k, d]` (a non-trainable variable).
    pub centroids: Tensor,
    /// The EMA decay λ (the repo's `decay = 0.999`).
    pub decay: f64,
    /// Rescale every updated centroid to unit length (lucidrains); off in the paper's rule.
    pub renormalize: bool,
}

impl KMeans {
    /// Centroids named `name` with the given initial value (`[H, k, d]`, float).
    pub fn new(g: &Graph, name: &str, init: impl Into<Init>, decay: f64) -> Result<KMeans> {
        if !(0.0..=1.0).contains(&decay) {
            return Err(invalid(
                "KMeans::new",
                format!("decay must be in [0, 1], got {decay}"),
            ));
        }
        let centroids = g.variable_with(name, init, false)?;
        expect_float("KMeans::new", name, &centroids, 3)?;
        Ok(KMeans {
            centroids,
            decay,
            renormalize: false,
        })
    }

    /// Centroids named `name` initialised to random unit vectors (normal samples scaled to
    /// length 1; the seed derives from the graph seed when `None`).
    pub fn random(
        g: &Graph,
        name: &str,
        shape: [usize; 3],
        dtype: DType,
        decay: f64,
        seed: Option<u64>,
    ) -> Result<KMeans> {
        if shape.contains(&0) {
            return Err(invalid(
                "KMeans::random",
                format!("the centroid shape [H, k, d] must be non-empty, got {shape:?}"),
            ));
        }
        let init = g
            .random_normal(&shape, 0.0, 1.0, dtype, seed)?
            .l2_normalize(-1, 1e-12)?;
        KMeans::new(g, name, init, decay)
    }

    /// `[H, k, d]`: heads, clusters, dimension.
    pub fn shape(&self) -> (usize, usize, usize) {
        let s = self.centroids.shape();
        (s[0], s[1], s[2])
    }

    fn check(&self, what: &str, x: &Tensor) -> Result<()> {
        expect_float(what, "x", x, 4)?;
        let (h, _, d) = self.shape();
        if x.shape()[1] != h || x.shape()[3] != d || x.dtype() != self.centroids.dtype() {
            return Err(invalid(
                what,
                format!(
                    "x must be [B, {h}, n, {d}] {}, got {} {:?}",
                    self.centroids.dtype(),
                    x.dtype(),
                    x.shape()
                ),
            ));
        }
        Ok(())
    }

    /// The cluster of every vector, `argmax_j x·μ_j` (the nearest centroid for unit vectors
    /// and centroids): i64 `[B, H, n]`.
    pub fn assign(&self, x: &Tensor) -> Result<Tensor> {
        self.check("KMeans::assign", x)?;
        x.matmul_t(&self.centroids, false, true)?.argmax(-1)
    }

    /// The per-head sums and counts of the vectors assigned to each cluster:
    /// (`[H, k, d]`, `[H, k]`).
    fn cluster_sums(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, k, _) = self.shape();
        let onehot = self.assign(x)?.one_hot(k, x.dtype())?; // [B,H,n,k]
        let sums = onehot.matmul_t(x, true, false)?.sum(&[0], false)?; // [H,k,d]
        let counts = onehot.sum(&[0, 2], false)?; // [H,k]
        Ok((sums, counts))
    }

    /// One mini-batch k-means step as an EMA (the paper's rule with cluster means):
    /// `μ_j ← λ·μ_j + (1 − λ)·m_j`, where `m_j` averages, over the sources in `xs` (the
    /// queries and the keys; one source with shared queries and keys), the mean of that
    /// source's vectors assigned to `j` (sources with no such vector are skipped; a centroid
    /// no source reaches keeps its value). Assignments use the centroids at the start of the
    /// run and no gradient flows. Returns the assign op (the new centroids).
    pub fn ema_update(&self, xs: &[&Tensor]) -> Result<Tensor> {
        const WHAT: &str = "KMeans::ema_update";
        if xs.is_empty() {
            return Err(invalid(WHAT, "no vectors to update from".into()));
        }
        let mu = &self.centroids;
        let mut total: Option<Tensor> = None;
        let mut sources: Option<Tensor> = None;
        for x in xs {
            self.check(WHAT, x)?;
            let (sums, counts) = self.cluster_sums(&x.stop_gradient()?)?;
            let present = counts.greater(0.0)?.cast(x.dtype())?;
            let mean = (&sums / &counts.maximum(1.0)?.expand_dims(-1)?)?;
            total = Some(match total {
                Some(t) => (t + mean)?,
                None => mean,
            });
            sources = Some(match sources {
                Some(s) => (s + present)?,
                None => present,
            });
        }
        let (total, sources) = (total.expect("xs non-empty"), sources.expect("xs non-empty"));
        let mean = (&total / &sources.maximum(1.0)?.expand_dims(-1)?)?;
        let moved = ((mu * self.decay)? + (mean * (1.0 - self.decay))?)?;
        let moved = if self.renormalize {
            moved.l2_normalize(-1, 1e-12)?
        } else {
            moved
        };
        let reached = sources.greater(0.0)?.expand_dims(-1)?;
        mu.assign(reached.select(&moved, mu)?)
    }

    /// The commitment loss `β · mean_i ‖x_i − μ_{c(x_i)}‖²` over all vectors of all sources
    /// (gradients reach the vectors, not the centroids).
    pub fn commitment_loss(&self, xs: &[&Tensor], beta: f64) -> Result<Tensor> {
        const WHAT: &str = "KMeans::commitment_loss";
        let mut losses = Vec::new();
        for x in xs {
            self.check(WHAT, x)?;
            // The centroids [H,k,d] are gathered per head: heads lead, so index [H,B,n].
            let ct = self.assign(x)?.transpose(&[1, 0, 2])?;
            let picked = self
                .centroids
                .stop_gradient()?
                .gather(&ct, 1, 1)? // [H,B,n,d]
                .transpose(&[1, 0, 2, 3])?;
            losses.push((*x - &picked)?.square()?.sum(&[-1], false)?.mean_all()?);
        }
        let Some(first) = losses.first().cloned() else {
            return Err(invalid(WHAT, "no vectors".into()));
        };
        let sum = losses[1..].iter().try_fold(first, |acc, l| acc + l)?;
        sum * (beta / xs.len() as f64)
    }
}
