//! A small Routing Transformer language model (MODELS.md §5, acceptance 5): pre-norm layers
//! whose attention mixes local heads ([`local_attention`]) and routing heads
//! ([`routed_attention`] over [`balanced_routing`] with shared, layer-normalised queries and
//! keys and per-layer [`KMeans`] centroids), trained with Adam on the cross-entropy plus the
//! commitment loss while one op moves the centroids. [`copy_task_batch`] makes the synthetic
//! copy task `[s, s]` on which `examples/routing_lm.rs` trains it.

use super::{KMeans, LocalAttention, Mask, balanced_routing, invalid, local_attention};
use super::{Routed, routed_attention};
use flumen_frontend::nn::{Activation, Initializer, Reduction, dense};
use flumen_frontend::train::{Adam, Optimizer};
use flumen_frontend::{DType, Graph, Result, Tensor, Value};

/// Hyper-parameters of [`RoutingLm`].
#[derive(Clone, Debug, PartialEq)]
pub struct LmConfig {
    /// Vocabulary size.
    pub vocab: usize,
    /// Sequence length `n`.
    pub seq_len: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Model width.
    pub dim: usize,
    /// Layers.
    pub layers: usize,
    /// Local heads per layer.
    pub local_heads: usize,
    /// Routing heads per layer.
    pub routing_heads: usize,
    /// Size of every head.
    pub head_dim: usize,
    /// Hidden units of the feed-forward blocks.
    pub ffn: usize,
    /// Queries per local block.
    pub block: usize,
    /// Blocks a local block looks back.
    pub look_back: usize,
    /// Clusters `k` of the routing heads (the window is `seq_len / k`).
    pub clusters: usize,
    /// Centroid EMA decay λ.
    pub decay: f64,
    /// Commitment-loss weight β.
    pub beta: f64,
    /// Adam's learning rate.
    pub lr: f64,
    /// Seed of the initializers.
    pub seed: u64,
}

impl Default for LmConfig {
    /// The configuration `examples/routing_lm.rs` trains on the copy task.
    fn default() -> Self {
        LmConfig {
            vocab: 16,
            seq_len: 64,
            batch: 16,
            dim: 64,
            layers: 2,
            local_heads: 2,
            routing_heads: 2,
            head_dim: 32,
            ffn: 128,
            block: 16,
            look_back: 1,
            clusters: 4,
            decay: 0.999,
            beta: 1e-4,
            lr: 3e-3,
            seed: 0,
        }
    }
}

/// The model's graph and the handles to feed, fetch and run.
pub struct RoutingLm {
    /// The graph.
    pub graph: Graph,
    /// Input tokens `[batch, seq_len]` i64.
    pub tokens: Tensor,
    /// Next-token targets `[batch, seq_len]` i64.
    pub targets: Tensor,
    /// Loss weight per position `[batch, seq_len]` f32 (0 where the target is unpredictable).
    pub weights: Tensor,
    /// Logits `[batch, seq_len, vocab]`.
    pub logits: Tensor,
    /// Weighted mean cross-entropy (a scalar).
    pub loss: Tensor,
    /// The commitment loss summed over layers (a scalar).
    pub commitment: Tensor,
    /// One training step: Adam on `loss + commitment` and the centroid updates.
    pub train: Tensor,
    /// The centroids of every layer.
    pub kmeans: Vec<KMeans>,
}

/// `[B, n, H·d]` → `[B, H, n, d]`.
fn heads(x: &Tensor, h: usize, d: usize) -> Result<Tensor> {
    let (b, n) = (x.shape()[0] as i64, x.shape()[1] as i64);
    x.reshape(&[b, n, h as i64, d as i64])?
        .transpose(&[0, 2, 1, 3])
}

/// `[B, H, n, d]` → `[B, n, H·d]`.
fn merge(x: &Tensor) -> Result<Tensor> {
    let s = x.shape();
    x.transpose(&[0, 2, 1, 3])?
        .reshape(&[s[0] as i64, s[2] as i64, (s[1] * s[3]) as i64])
}

/// Layer norm with a learned gain and bias in scope `name`.
fn norm(name: &str, x: &Tensor) -> Result<Tensor> {
    let g = x.graph();
    let _scope = g.scope(name);
    let dim = x.shape()[x.rank() - 1];
    let gamma = g.variable("gamma", ndarray::Array1::from_elem(dim, 1.0f32))?;
    let beta = g.variable("beta", ndarray::Array1::from_elem(dim, 0.0f32))?;
    x.layer_norm_affine(&gamma, &beta, 1e-5)
}

fn linear(name: &str, x: &Tensor, units: usize) -> Result<Tensor> {
    dense(
        name,
        x,
        units,
        Activation::Linear,
        &Initializer::GlorotUniform,
        &Initializer::Zeros,
    )
}

impl RoutingLm {
    /// Build the model and its training step.
    pub fn new(cfg: &LmConfig) -> Result<RoutingLm> {
        const WHAT: &str = "RoutingLm::new";
        if cfg.clusters == 0 || !cfg.seq_len.is_multiple_of(cfg.clusters) {
            return Err(invalid(
                WHAT,
                format!(
                    "clusters ({}) must divide seq_len ({})",
                    cfg.clusters, cfg.seq_len
                ),
            ));
        }
        if cfg.local_heads + cfg.routing_heads == 0 || cfg.layers == 0 || cfg.vocab == 0 {
            return Err(invalid(
                WHAT,
                "the model needs layers, heads and a vocabulary".into(),
            ));
        }
        let g = Graph::new();
        g.set_seed(cfg.seed);
        let (b, n) = (cfg.batch, cfg.seq_len);
        let tokens = g.placeholder("tokens", DType::I64, &[b, n])?;
        let targets = g.placeholder("targets", DType::I64, &[b, n])?;
        let weights = g.placeholder("weights", DType::F32, &[b, n])?;
        let init = Initializer::Normal {
            mean: 0.0,
            stddev: 0.1,
        };
        let emb = g.variable(
            "embedding",
            &init.build(&g, &[cfg.vocab, cfg.dim], DType::F32, None)?,
        )?;
        let pos = g.variable(
            "position",
            &init.build(&g, &[n, cfg.dim], DType::F32, None)?,
        )?;
        let mut x = (emb.gather(&tokens, 0, 0)? + &pos)?;
        let mut kmeans = Vec::new();
        let mut units = Vec::new();
        let mut commitment: Option<Tensor> = None;
        let dh = cfg.head_dim;
        for layer in 0..cfg.layers {
            let _scope = g.scope(&format!("layer{layer}"));
            let h = norm("attn_norm", &x)?;
            let mut outs = Vec::new();
            if cfg.local_heads > 0 {
                let hl = cfg.local_heads;
                let q = heads(&linear("local_q", &h, hl * dh)?, hl, dh)?;
                let k = heads(&linear("local_k", &h, hl * dh)?, hl, dh)?;
                let v = heads(&linear("local_v", &h, hl * dh)?, hl, dh)?;
                let local = LocalAttention {
                    block: cfg.block,
                    look_back: cfg.look_back,
                    look_ahead: 0,
                    mask: Mask {
                        causal: true,
                        exclude_self: false,
                    },
                };
                outs.push(local_attention(&q, &k, &v, local)?.0);
            }
            if cfg.routing_heads > 0 {
                let hr = cfg.routing_heads;
                // Shared, layer-normalised queries/keys (length √d); unit vectors route.
                let qk = heads(&linear("routing_qk", &h, hr * dh)?, hr, dh)?.layer_norm(1e-6)?;
                let unit = (&qk * (1.0 / (dh as f64).sqrt()))?;
                let v = heads(&linear("routing_v", &h, hr * dh)?, hr, dh)?;
                let km = KMeans::random(
                    &g,
                    "centroids",
                    [hr, cfg.clusters, dh],
                    DType::F32,
                    cfg.decay,
                    None,
                )?;
                let idx =
                    balanced_routing(&unit.stop_gradient()?, &km.centroids, n / cfg.clusters)?;
                let mask = Mask {
                    causal: true,
                    exclude_self: true,
                };
                let Routed { output, .. } = routed_attention(&qk, &qk, &v, &idx, &idx, mask)?;
                outs.push(output);
                let c = km.commitment_loss(&[&unit], cfg.beta)?;
                commitment = Some(match commitment {
                    Some(t) => (t + c)?,
                    None => c,
                });
                kmeans.push(km);
                units.push(unit);
            }
            let refs: Vec<&Tensor> = outs.iter().collect();
            let attn = merge(&Tensor::concat(&refs, 1)?)?;
            x = (&x + &linear("attn_out", &attn, cfg.dim)?)?;
            let f = norm("ffn_norm", &x)?;
            let f = dense(
                "ffn_in",
                &f,
                cfg.ffn,
                Activation::Relu,
                &Initializer::GlorotUniform,
                &Initializer::Zeros,
            )?;
            x = (&x + &linear("ffn_out", &f, cfg.dim)?)?;
        }
        let logits = linear("logits", &norm("final_norm", &x)?, cfg.vocab)?;
        let per_token = logits.sparse_softmax_cross_entropy(&targets, None, Reduction::None)?;
        let loss = ((&per_token * &weights)?.sum_all()? / &weights.sum_all()?.maximum(1.0)?)?;
        let commitment = match commitment {
            Some(c) => c,
            None => g.scalar(0.0, DType::F32)?,
        };
        let total = (&loss + &commitment)?;
        let adam = Adam::new(cfg.lr).minimize(&total, None)?;
        let mut steps = vec![adam];
        for (km, unit) in kmeans.iter().zip(&units) {
            steps.push(km.ema_update(&[unit])?);
        }
        let refs: Vec<&Tensor> = steps.iter().collect();
        let train = g.group("train_step", &refs)?;
        Ok(RoutingLm {
            graph: g,
            tokens,
            targets,
            weights,
            logits,
            loss,
            commitment,
            train,
            kmeans,
        })
    }
}

/// A batch of the copy task: every sequence is `[s, s]` with `s` uniform on `0..vocab` of
/// length `seq_len / 2`; targets are the next tokens, weighted 1 from the last token of the
/// first half on (the copied tokens, predictable by looking back `seq_len/2 − 1` positions)
/// and 0 before. Returns `(tokens, targets, weights)` for [`RoutingLm`]'s placeholders.
pub fn copy_task_batch(
    batch: usize,
    seq_len: usize,
    vocab: usize,
    rng: &mut impl FnMut() -> u64,
) -> (Value, Value, Value) {
    let m = seq_len / 2;
    let mut tokens = Vec::with_capacity(batch * seq_len);
    let mut targets = Vec::with_capacity(batch * seq_len);
    let mut weights = Vec::with_capacity(batch * seq_len);
    for _ in 0..batch {
        let s: Vec<i64> = (0..m).map(|_| (rng() % vocab as u64) as i64).collect();
        let row: Vec<i64> = s.iter().chain(&s).copied().collect();
        let row = if row.len() < seq_len {
            [row, vec![0; seq_len - 2 * m]].concat()
        } else {
            row
        };
        for t in 0..seq_len {
            tokens.push(row[t]);
            targets.push(if t + 1 < seq_len { row[t + 1] } else { 0 });
            let predictable = t + 1 >= m && t + 1 < 2 * m;
            weights.push(if predictable { 1.0f32 } else { 0.0 });
        }
    }
    let shape = [batch, seq_len];
    (
        Value::from_vec(&shape, tokens).expect("shape"),
        Value::from_vec(&shape, targets).expect("shape"),
        Value::from_vec(&shape, weights).expect("shape"),
    )
}
