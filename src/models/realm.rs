//! REALM / c-REALM retrieval (MODELS.md §6) as Flumen graphs: exact maximum-inner-product
//! search (MIPS) over a document-embedding matrix, the retrieval distribution over the
//! top-k, REALM's marginal likelihood, and c-REALM's in-batch contrastive loss; plus the
//! offline toy task (`examples/realm_retrieval.rs`) and its data.
//!
//! # Blocked exact MIPS
//! [`mips_top_k`] never forms the `[B, N]` score matrix. The documents are taken in blocks of
//! [`Mips::block`] rows; a block's scores `[B, block]` (one GEMM) are cut into chunks of
//! [`Mips::chunk`] columns whose maxima (one fused reduction) pick the `k` best chunks; only
//! those `k·chunk` scores are sorted (the true top-k of a block always lies in its `k` chunks
//! with the largest maxima: any other chunk's elements are beaten by `k` chunk maxima). The
//! block's top-k then merges with the running top-k of the earlier blocks. Every score
//! returned is the GEMM's own value, so the result is exactly the top-k of the brute-force
//! scores, ties going to the lower document index. On the compiled backend the blocks'
//! buffers share memory, so the working set is `O(B·block)`, not `O(B·N)`.

use flumen_frontend::nn::Reduction;
use flumen_frontend::train::{Adam, Optimizer};
use flumen_frontend::{DType, Graph, GraphError, Result, Tensor, Value};
use ndarray::Array2;

/// Blocking of [`mips_top_k`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mips {
    /// Documents scored per block (bounds the working set to `B·block` scores).
    pub block: usize,
    /// Columns per chunk of a block's scores (the unit of the candidate selection).
    pub chunk: usize,
}

impl Default for Mips {
    fn default() -> Self {
        Mips {
            block: 16_384,
            chunk: 128,
        }
    }
}

/// The `k` best documents per query.
#[derive(Clone, Debug)]
pub struct TopK {
    /// Inner products `[B, k]`, largest first.
    pub scores: Tensor,
    /// Document indices (rows of the document matrix) `[B, k]` i64.
    pub indices: Tensor,
}

fn invalid(what: &str, msg: String) -> GraphError {
    GraphError::invalid(format!("{what}: {msg}"))
}

/// Exact top-`k` documents by inner product for every query: `queries` `[B, d]`, `docs`
/// `[N, d]` (same float dtype), `1 <= k <= N`. See the module docs for the blocking.
pub fn mips_top_k(queries: &Tensor, docs: &Tensor, k: usize, opts: Mips) -> Result<TopK> {
    const WHAT: &str = "mips_top_k";
    let (qs, ds) = (queries.shape(), docs.shape());
    if queries.rank() != 2
        || docs.rank() != 2
        || qs[1] != ds[1]
        || queries.dtype() != docs.dtype()
        || !queries.dtype().is_float()
    {
        return Err(invalid(
            WHAT,
            format!(
                "expected queries [B, d] and docs [N, d] of one float dtype, got {} {qs:?} and {} {ds:?}",
                queries.dtype(),
                docs.dtype()
            ),
        ));
    }
    let n = ds[0];
    if k == 0 || k > n || opts.block == 0 || opts.chunk == 0 {
        return Err(invalid(
            WHAT,
            format!("need 1 <= k <= N = {n} and a positive block and chunk, got k = {k}, {opts:?}"),
        ));
    }
    let mut best: Option<(Tensor, Tensor)> = None;
    for start in (0..n).step_by(opts.block) {
        let len = opts.block.min(n - start);
        let block = if len == n {
            docs.clone()
        } else {
            docs.slice(ndarray::s![start..start + len, ..])?
        };
        let scores = queries.matmul_t(&block, false, true)?; // [B, len]
        let (values, local) = block_top_k(&scores, k.min(len), opts.chunk)?;
        let global = (local + start as i64)?;
        best = Some(match best {
            None => (values, global),
            // Earlier blocks first: ties go to the lower document index.
            Some((bv, bi)) => {
                let v = Tensor::concat(&[&bv, &values], 1)?;
                let i = Tensor::concat(&[&bi, &global], 1)?;
                let (v, p) = v.top_k(k.min(v.shape()[1]))?;
                (v, i.take_along_last_axis(&p)?)
            }
        });
    }
    let (scores, indices) = best.expect("n >= k >= 1 gives a block");
    Ok(TopK { scores, indices })
}

/// The `k` largest entries along the last axis of `x` (any rank >= 1) and their i64
/// positions, exactly as [`Tensor::top_k`] returns them (largest first, ties to the lower
/// position), but sorting only the `k·chunk` entries of the `k` chunks (runs of `chunk`
/// positions) with the largest maxima, plus the chunk maxima, instead of whole rows.
/// Falls back to [`Tensor::top_k`] when that would not sort fewer values.
pub fn chunked_top_k(x: &Tensor, k: usize, chunk: usize) -> Result<(Tensor, Tensor)> {
    let Some(&len) = x.shape().last() else {
        return Err(invalid(
            "chunked_top_k",
            "needs a tensor of rank >= 1".into(),
        ));
    };
    if k == 0 || k > len || chunk == 0 || !x.dtype().is_float() {
        return Err(invalid(
            "chunked_top_k",
            format!(
                "need a float tensor, 1 <= k <= {len} and chunk >= 1, got {} {:?}, k = {k}, chunk = {chunk}",
                x.dtype(),
                x.shape()
            ),
        ));
    }
    if x.rank() == 2 {
        return block_top_k(x, k, chunk);
    }
    let lead: Vec<i64> = x.shape()[..x.rank() - 1]
        .iter()
        .map(|&d| d as i64)
        .collect();
    let (v, i) = block_top_k(&x.reshape(&[-1, len as i64])?, k, chunk)?;
    let out: Vec<i64> = lead.iter().copied().chain([k as i64]).collect();
    Ok((v.reshape(&out)?, i.reshape(&out)?))
}

/// [`chunked_top_k`] of `scores` `[rows, len]`.
fn block_top_k(scores: &Tensor, k: usize, chunk: usize) -> Result<(Tensor, Tensor)> {
    let (b, len) = (scores.shape()[0], scores.shape()[1]);
    let chunks = len.div_ceil(chunk);
    if chunks <= k || len <= 2 * k * chunk {
        let (v, i) = scores.top_k(k)?;
        return Ok((v, i));
    }
    let padded = if chunks * chunk == len {
        scores.clone()
    } else {
        scores.pad(&[(0, 0), (0, chunks * chunk - len)], f64::NEG_INFINITY)?
    };
    let cut = padded.reshape(&[b as i64, chunks as i64, chunk as i64])?;
    let (_, best_chunks) = cut.max(&[2], false)?.top_k(k)?;
    // In increasing chunk order, so that equal scores keep index order.
    let ids = best_chunks.sort(false)?; // [B, k]
    let candidates = cut
        .gather(&ids, 1, 1)? // [B, k, chunk]
        .reshape(&[b as i64, (k * chunk) as i64])?;
    let (values, pos) = candidates.top_k(k)?;
    let chunk_of = ids.take_along_last_axis(&pos.div(chunk as i64)?)?;
    let index = ((chunk_of * chunk as i64)? + pos.modulo(chunk as i64)?)?;
    Ok((values, index))
}

/// The retrieval distribution `p(z|x)`: a softmax over the top-k scores `[B, k]`.
pub fn retrieval_probs(top_scores: &Tensor) -> Result<Tensor> {
    if top_scores.rank() != 2 || !top_scores.dtype().is_float() {
        return Err(invalid(
            "retrieval_probs",
            format!(
                "expected float scores [B, k], got {} {:?}",
                top_scores.dtype(),
                top_scores.shape()
            ),
        ));
    }
    top_scores.softmax(-1)
}

/// REALM's objective per example: `log p(y|x) = log Σ_{z ∈ top-k} p(y|z,x)·p(z|x)` from the
/// retrieval scores `[B, k]` and the reader's `log p(y|z,x)` `[B, k]`, computed stably as a
/// log-sum-exp. Returns `[B]`.
pub fn marginal_log_likelihood(top_scores: &Tensor, reader_log_probs: &Tensor) -> Result<Tensor> {
    if top_scores.shape() != reader_log_probs.shape() || top_scores.rank() != 2 {
        return Err(invalid(
            "marginal_log_likelihood",
            format!(
                "scores and reader log-probabilities must both be [B, k], got {:?} and {:?}",
                top_scores.shape(),
                reader_log_probs.shape()
            ),
        ));
    }
    let joint = (top_scores.log_softmax(-1)? + reader_log_probs)?;
    let peak = joint.max(&[-1], true)?.stop_gradient()?;
    let sum = (&joint - &peak)?.exp()?.sum(&[-1], false)?;
    sum.log()? + peak.squeeze(&[-1])?
}

/// c-REALM's in-batch contrastive loss: with `logits = q·aᵀ` `[B, B]`,
/// `L = −(1/B) Σ_i log softmax(logits_i)_i` (every other answer of the batch is a negative).
pub fn contrastive_loss(q: &Tensor, a: &Tensor) -> Result<Tensor> {
    if q.rank() != 2 || q.shape() != a.shape() || q.dtype() != a.dtype() || !q.dtype().is_float() {
        return Err(invalid(
            "contrastive_loss",
            format!(
                "expected question and answer encodings [B, d] of one float dtype, got {} {:?} and {} {:?}",
                q.dtype(),
                q.shape(),
                a.dtype(),
                a.shape()
            ),
        ));
    }
    let labels = q.graph().arange(q.shape()[0], DType::I64)?;
    q.matmul_t(a, false, true)?.sparse_softmax_cross_entropy(
        &labels,
        None,
        Reduction::SumOverBatchSize,
    )
}

/// A small deterministic generator (SplitMix64) with normal samples (Box–Muller), for the
/// toy data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform on `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// A standard normal sample.
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// A `[rows, cols]` matrix of `N(0, std²)` samples.
    pub fn normal_matrix(&mut self, rows: usize, cols: usize, std: f64) -> Array2<f32> {
        Array2::from_shape_simple_fn((rows, cols), || (std * self.normal()) as f32)
    }
}

/// The offline toy retrieval task: answers `a_i` uniform on the unit sphere of `R^dim`,
/// questions `x_i = M·a_i + noise·ε_i` with a fixed `M` of `N(0, 1)` entries and `ε ~ N(0, I)`.
pub struct ToyData {
    /// Questions `[N, dim]`.
    pub questions: Array2<f32>,
    /// Answers `[N, dim]` (unit rows).
    pub answers: Array2<f32>,
}

impl ToyData {
    /// `n` pairs in `R^dim`.
    pub fn new(n: usize, dim: usize, noise: f64, seed: u64) -> ToyData {
        let mut rng = Rng::new(seed);
        let m = rng.normal_matrix(dim, dim, 1.0);
        let mut answers = rng.normal_matrix(n, dim, 1.0);
        for mut row in answers.rows_mut() {
            let norm = row.dot(&row).sqrt().max(1e-12);
            row /= norm;
        }
        let clean = answers.dot(&m.t());
        let questions = clean + rng.normal_matrix(n, dim, noise);
        ToyData { questions, answers }
    }

    /// The rows at `indices` of (questions, answers).
    pub fn batch(&self, indices: &[usize]) -> (Value, Value) {
        let q = self.questions.select(ndarray::Axis(0), indices);
        let a = self.answers.select(ndarray::Axis(0), indices);
        (Value::from(q), Value::from(a))
    }
}

/// The toy task's dual encoder: linear maps of questions and answers to `embed` dimensions,
/// trained with [`contrastive_loss`] by Adam, and an evaluation path retrieving each of a
/// batch of questions' best answers among all answers by [`mips_top_k`].
#[derive(Clone, Debug)]
pub struct DualEncoder {
    /// The graph.
    pub graph: Graph,
    /// Training questions `[batch, dim]`.
    pub questions: Tensor,
    /// Training answers `[batch, dim]`.
    pub answers: Tensor,
    /// The contrastive loss of the batch.
    pub loss: Tensor,
    /// One Adam step.
    pub train: Tensor,
    /// Evaluation questions `[eval_batch, dim]`.
    pub eval_questions: Tensor,
    /// The answer corpus `[N, dim]` (fed once per evaluation).
    pub corpus: Tensor,
    /// Top-k over the whole corpus for the evaluation questions.
    pub retrieved: TopK,
    /// `p(z|x)` over the retrieved answers `[eval_batch, k]`.
    pub probs: Tensor,
}

impl DualEncoder {
    /// Build the encoders (`dim → embed`, Glorot-uniform, no bias), the training step on
    /// batches of `batch` pairs (Adam with learning rate `lr`), and top-`k` retrieval for
    /// `eval_batch` questions over a corpus of `corpus` answers.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        embed: usize,
        batch: usize,
        lr: f64,
        eval_batch: usize,
        corpus: usize,
        k: usize,
        seed: u64,
    ) -> Result<DualEncoder> {
        let g = Graph::new();
        g.set_seed(seed);
        let init = flumen_frontend::nn::Initializer::GlorotUniform;
        let wq = g.variable("W_q", &init.build(&g, &[dim, embed], DType::F32, None)?)?;
        let wa = g.variable("W_a", &init.build(&g, &[dim, embed], DType::F32, None)?)?;
        let questions = g.placeholder("questions", DType::F32, &[batch, dim])?;
        let answers = g.placeholder("answers", DType::F32, &[batch, dim])?;
        let loss = contrastive_loss(&questions.matmul(&wq)?, &answers.matmul(&wa)?)?;
        let train = Adam::new(lr).minimize(&loss, None)?;
        let eval_questions = g.placeholder("eval_questions", DType::F32, &[eval_batch, dim])?;
        let corpus_in = g.placeholder("corpus", DType::F32, &[corpus, dim])?;
        let retrieved = {
            let _scope = g.scope("retrieve");
            mips_top_k(
                &eval_questions.matmul(&wq)?,
                &corpus_in.matmul(&wa)?,
                k,
                Mips::default(),
            )?
        };
        let probs = retrieval_probs(&retrieved.scores)?;
        Ok(DualEncoder {
            graph: g,
            questions,
            answers,
            loss,
            train,
            eval_questions,
            corpus: corpus_in,
            retrieved,
            probs,
        })
    }
}
