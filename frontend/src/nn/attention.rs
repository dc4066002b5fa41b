//! Scaled dot-product attention with structured masks, and the *blockified* builders that
//! compute BigBird and ETC sparse attention with dense tensor ops only.
//!
//! [`attention`] builds the naive form
//!
//! ```text
//! scores = matmul(q, k, transpose_b) * (1/√d)          [B, H, n, n]
//! logits = scores + structure_bias                      −10000 on disallowed entries
//! logits = logits + key_bias                            padding only: −10000 on padded keys
//! out    = matmul(softmax(logits, -1), v)               [B, H, n, dv]
//! out    = out * query_valid                            padding only: padded query rows are 0
//! ```
//!
//! The structure bias is a constant whose block layout the compiler can read back:
//! - BigBird: a block-level constant `C[H, nb, nb]` (0 allowed, −10000 not) expanded by
//!   `reshape [H,nb,1,nb,1] → broadcast_to [H,nb,b,nb,b] → reshape [H,n,n]`, so the graph
//!   holds `H·nb²` numbers, not `H·n²`; the layout (window, global and random blocks) is
//!   recovered by [`BigBirdLayout::from_block_mask`];
//! - ETC, causal: an element-level constant `[n, n]`; [`EtcLayout::from_dense_mask`]
//!   recognises the ETC pattern.
//!
//! `flumen_compiler::egraph` rewrites the naive form into [`bigbird_blockified`] /
//! [`etc_blockified`] when its cost model says it is cheaper (MODELS.md §4a, §4b). Both
//! builders are public so that other layers (local attention, routing attention) can use
//! the blockified forms directly; they are exactly equal to the naive form under the
//! equivalent mask, up to floating-point summation order (disallowed entries contribute
//! `exp(−10000 + …) = 0` in the naive form).
//!
//! ```
//! use flumen_frontend::{Graph, DType};
//! use flumen_frontend::nn::attention::{attention, AttentionMask};
//! let g = Graph::new();
//! let q = g.placeholder("q", DType::F32, &[1, 2, 64, 16])?;
//! let mask = AttentionMask::BigBird { block: 8, window_blocks: 3, global_blocks: 2,
//!                                     random_blocks: 1, seed: 0 };
//! let out = attention(&q, &q, &q, &mask)?;
//! assert_eq!(out.shape(), &[1, 2, 64, 16]);
//! # Ok::<(), flumen_frontend::GraphError>(())
//! ```

use crate::dtype::DType;
use crate::error::{GraphError, Result};
use crate::op::random::philox;
use crate::op::{SliceDim, SliceSpec};
use crate::tensor::Tensor;
use crate::value::Value;

/// The additive bias on disallowed entries (BigBird's and ETC's `−10000`).
pub const MASK_BIAS: f64 = -10000.0;

/// Which query/key pairs may attend to each other.
#[derive(Clone, Debug)]
pub enum AttentionMask {
    /// Every query attends to every key.
    Dense,
    /// Query `i` attends to keys `j ≤ i`.
    Causal,
    /// Keys (and query rows) marked invalid by `valid` (`[B, n]`, bool or 0/1 of q's
    /// float dtype) are masked out; padded query rows of the output are zero.
    Padding(Tensor),
    /// BigBird (ITC): blocks of `block` tokens; each block row attends to a window of
    /// `window_blocks` blocks around it (odd), to the global blocks (the first
    /// ⌈g/2⌉ and last ⌊g/2⌋ of `global_blocks` = g, which also attend everywhere) and to
    /// `random_blocks` random blocks per head and row, drawn with `seed` so that they never
    /// coincide with window or global blocks.
    BigBird {
        /// Tokens per block (divides n).
        block: usize,
        /// Blocks in the sliding window (odd; MODELS.md: 3).
        window_blocks: usize,
        /// Global blocks (MODELS.md: 2, the first and the last).
        global_blocks: usize,
        /// Random blocks per block row (MODELS.md: r = 3).
        random_blocks: usize,
        /// Seed of the random block plan.
        seed: u64,
    },
    /// ETC global-local: the first `n_global` tokens are global (attend to and are attended
    /// by everything); the others attend to each other within distance `radius`.
    EtcGlobalLocal {
        /// Local attention radius r (|i − j| ≤ r).
        radius: usize,
        /// Number of leading global tokens.
        n_global: usize,
    },
}

/// Attention `softmax(q kᵀ/√d + bias) v` in the naive form (see the module docs).
/// `q: [..., n, d]`, `k: [..., m, d]`, `v: [..., m, dv]`; `Padding`, `BigBird` and
/// `EtcGlobalLocal` need rank-4 `[B, H, n, d]` inputs, and all structured masks need `m = n`.
#[track_caller]
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, mask: &AttentionMask) -> Result<Tensor> {
    match mask {
        AttentionMask::Padding(valid) => naive(q, k, v, &AttentionMask::Dense, Some(valid)),
        m => naive(q, k, v, m, None),
    }
}

/// [`attention`] with a structure mask and a padding mask `valid: [B, n]` together.
#[track_caller]
pub fn attention_with_padding(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    valid: &Tensor,
) -> Result<Tensor> {
    if let AttentionMask::Padding(_) = mask {
        return Err(GraphError::invalid(
            "attention_with_padding: give the padding once, as `valid` (the structure mask is Padding)",
        ));
    }
    naive(q, k, v, mask, Some(valid))
}

fn bad(msg: String) -> GraphError {
    GraphError::invalid(format!("attention: {msg}"))
}

/// `(B, H, n, d, dv)` of `q, k: [B, H, n, d]` and `v: [B, H, n, dv]`, or an error naming `op`.
fn qkv_dims(
    op: &str,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<(usize, usize, usize, usize, usize)> {
    let (qs, vs) = (q.shape(), v.shape());
    if qs.len() != 4 || k.shape() != qs || vs.len() != 4 || vs[..3] != qs[..3] {
        return Err(bad(format!(
            "{op}: q, k, v must be [B, H, n, d] (v: [B, H, n, dv]), got {qs:?}, {:?}, {vs:?}",
            k.shape()
        )));
    }
    Ok((qs[0], qs[1], qs[2], qs[3], vs[3]))
}

fn naive(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &AttentionMask,
    valid: Option<&Tensor>,
) -> Result<Tensor> {
    let (qs, ks, vs) = (q.shape(), k.shape(), v.shape());
    let r = qs.len();
    if r < 2 || ks.len() != r || vs.len() != r {
        return Err(bad(format!(
            "q, k, v must have equal rank ≥ 2, got shapes {qs:?}, {ks:?}, {vs:?}"
        )));
    }
    if qs[..r - 2] != ks[..r - 2] || ks[..r - 1] != vs[..r - 1] || qs[r - 1] != ks[r - 1] {
        return Err(bad(format!(
            "expected q [..., n, d], k [..., m, d], v [..., m, dv] with equal leading axes, got {qs:?}, {ks:?}, {vs:?}"
        )));
    }
    if !q.dtype().is_float() || k.dtype() != q.dtype() || v.dtype() != q.dtype() {
        return Err(bad(format!(
            "q, k, v must share a float dtype, got {}, {}, {}",
            q.dtype(),
            k.dtype(),
            v.dtype()
        )));
    }
    let (n, m, d) = (qs[r - 2], ks[r - 2], qs[r - 1]);
    let structured = !matches!(mask, AttentionMask::Dense);
    if structured && n != m {
        return Err(bad(format!(
            "{mask:?} needs as many keys as queries, got n = {n} queries and m = {m} keys"
        )));
    }
    let needs_rank4 = valid.is_some()
        || matches!(
            mask,
            AttentionMask::BigBird { .. } | AttentionMask::EtcGlobalLocal { .. }
        );
    if needs_rank4 && r != 4 {
        return Err(bad(format!(
            "this mask needs q, k, v of shape [B, H, n, d], got {qs:?}"
        )));
    }
    let g = q.graph();
    let dtype = q.dtype();
    let scale = 1.0 / (d as f64).sqrt();
    let scores = (&q.matmul_t(k, false, true)? * scale)?;
    let logits = match mask {
        AttentionMask::Dense | AttentionMask::Padding(_) => scores,
        AttentionMask::Causal => {
            let allowed: Vec<bool> = (0..n * n).map(|e| e % n <= e / n).collect();
            (&scores + &g.constant(bias_value(dtype, &[n, n], &allowed))?)?
        }
        AttentionMask::BigBird {
            block,
            window_blocks,
            global_blocks,
            random_blocks,
            seed,
        } => {
            let layout = BigBirdLayout::generate(
                qs[1],
                n,
                *block,
                *window_blocks,
                *global_blocks,
                *random_blocks,
                *seed,
            )?;
            (&scores + &layout.bias(q)?)?
        }
        AttentionMask::EtcGlobalLocal { radius, n_global } => {
            let layout = EtcLayout::new(n, *radius, *n_global)?;
            (&scores + &g.constant(bias_value(dtype, &[n, n], &layout.dense_mask()))?)?
        }
    };
    let (logits, query_valid) = match valid {
        None => (logits, None),
        Some(valid) => {
            let (kb, qv) = padding_terms(valid, qs[0], n, dtype)?;
            ((&logits + &kb)?, Some(qv))
        }
    };
    let out = logits.softmax(-1)?.matmul(v)?;
    match query_valid {
        None => Ok(out),
        Some(qv) => &out * &qv,
    }
}

/// The padding terms for `valid: [B, n]`: the key bias `[B, 1, 1, n]` (−10000 on padded
/// keys) and the query mask `[B, 1, n, 1]` (0 on padded queries).
pub fn padding_terms(
    valid: &Tensor,
    batch: usize,
    n: usize,
    dtype: DType,
) -> Result<(Tensor, Tensor)> {
    if valid.shape() != [batch, n] {
        return Err(bad(format!(
            "the padding mask must have shape [B, n] = [{batch}, {n}], got {:?}",
            valid.shape()
        )));
    }
    let vf = if valid.dtype() == dtype {
        valid.clone()
    } else if valid.dtype() == DType::Bool {
        valid.cast(dtype)?
    } else {
        return Err(bad(format!(
            "the padding mask must be bool or {dtype}, got {}",
            valid.dtype()
        )));
    };
    let b = batch as i64;
    let nn = n as i64;
    let key_bias = ((&vf - 1.0)? * -MASK_BIAS)?.reshape(&[b, 1, 1, nn])?;
    let query_valid = vf.reshape(&[b, 1, nn, 1])?;
    Ok((key_bias, query_valid))
}

/// A constant of `shape` with 0 where `allowed` and −10000 elsewhere.
pub fn bias_value(dtype: DType, shape: &[usize], allowed: &[bool]) -> Value {
    let data: Vec<f64> = allowed
        .iter()
        .map(|&a| if a { 0.0 } else { MASK_BIAS })
        .collect();
    Value::from_vec(shape, data)
        .expect("shape matches the mask")
        .cast(dtype)
}

fn slice_axis(t: &Tensor, axis: usize, start: usize, len: usize) -> Result<Tensor> {
    let mut spec = SliceSpec::full(t.shape());
    spec.dims[axis] = SliceDim {
        start,
        step: 1,
        len,
    };
    t.slice_spec(spec)
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// A small deterministic stream for plans (Philox-4x32-10 keyed by the seed).
struct PlanRng {
    seed: u64,
    counter: u64,
}

impl PlanRng {
    fn below(&mut self, n: usize) -> usize {
        let w = philox(self.seed, [self.counter, 0, 0x5eed]);
        self.counter += 1;
        let r = ((w[0] as u64) << 32) | w[1] as u64;
        ((r as u128 * n as u128) >> 64) as usize
    }
}

/// The block layout of a BigBird mask: which key blocks each query block attends to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BigBirdLayout {
    /// Tokens per block (b).
    pub block: usize,
    /// Number of blocks (nb = n / b).
    pub num_blocks: usize,
    /// Blocks in the window (odd).
    pub window_blocks: usize,
    /// Global blocks: the first ⌈g/2⌉ and the last ⌊g/2⌋.
    pub global_blocks: usize,
    /// `random[h][i]`: the random key blocks of head `h` and block row `i` (sorted; empty
    /// for global rows). Never a window or global block.
    pub random: Vec<Vec<Vec<usize>>>,
}

impl BigBirdLayout {
    /// Draw the plan for `heads` heads over `n` tokens (like BigBird's
    /// `bigbird_block_rand_mask_with_head`, but always avoiding window and global blocks so
    /// that the blockified form is exactly the masked dense form).
    pub fn generate(
        heads: usize,
        n: usize,
        block: usize,
        window_blocks: usize,
        global_blocks: usize,
        random_blocks: usize,
        seed: u64,
    ) -> Result<BigBirdLayout> {
        if block == 0 || !n.is_multiple_of(block) {
            return Err(bad(format!(
                "BigBird: the block size must divide n, got block {block} and n = {n}"
            )));
        }
        let nb = n / block;
        if window_blocks.is_multiple_of(2) || window_blocks > nb {
            return Err(bad(format!(
                "BigBird: window_blocks must be odd and at most nb = {nb}, got {window_blocks}"
            )));
        }
        if global_blocks > nb {
            return Err(bad(format!(
                "BigBird: global_blocks {global_blocks} exceeds the {nb} blocks"
            )));
        }
        let mut layout = BigBirdLayout {
            block,
            num_blocks: nb,
            window_blocks,
            global_blocks,
            random: vec![vec![Vec::new(); nb]; heads],
        };
        let mut rng = PlanRng { seed, counter: 0 };
        for h in 0..heads {
            for i in 0..nb {
                if layout.is_global(i) {
                    continue;
                }
                let mut free: Vec<usize> = (0..nb).filter(|&j| !layout.fixed(i, j)).collect();
                if free.len() < random_blocks {
                    return Err(bad(format!(
                        "BigBird: block row {i} has only {} blocks outside its window and the globals, \
                         fewer than random_blocks = {random_blocks} (needs nb ≥ r + window + globals; nb = {nb})",
                        free.len()
                    )));
                }
                let mut pick = Vec::with_capacity(random_blocks);
                for _ in 0..random_blocks {
                    pick.push(free.swap_remove(rng.below(free.len())));
                }
                pick.sort_unstable();
                layout.random[h][i] = pick;
            }
        }
        Ok(layout)
    }

    /// Whether block `i` is global.
    pub fn is_global(&self, i: usize) -> bool {
        let first = self.global_blocks.div_ceil(2);
        let last = self.global_blocks / 2;
        i < first || i + last >= self.num_blocks
    }

    /// Whether query block `i` attends to key block `j` regardless of the random plan.
    pub fn fixed(&self, i: usize, j: usize) -> bool {
        let half = self.window_blocks / 2;
        self.is_global(i) || self.is_global(j) || i.abs_diff(j) <= half
    }

    /// Number of heads.
    pub fn heads(&self) -> usize {
        self.random.len()
    }

    /// Random blocks per row (of the first non-global row; equal for all rows when the plan
    /// came from [`BigBirdLayout::generate`]).
    pub fn random_blocks(&self) -> usize {
        self.random
            .first()
            .and_then(|rows| rows.iter().find(|r| !r.is_empty()))
            .map_or(0, Vec::len)
    }

    /// The block mask `[H, nb, nb]`, row-major: `true` where query block `i` attends to key
    /// block `j` for head `h`.
    pub fn block_mask(&self) -> Vec<bool> {
        let nb = self.num_blocks;
        let mut m = vec![false; self.heads() * nb * nb];
        for h in 0..self.heads() {
            for i in 0..nb {
                for j in 0..nb {
                    m[(h * nb + i) * nb + j] = self.fixed(i, j);
                }
                for &j in &self.random[h][i] {
                    m[(h * nb + i) * nb + j] = true;
                }
            }
        }
        m
    }

    /// The element-level mask `[H, n, n]` (for tests and plots).
    pub fn dense_mask(&self) -> Vec<bool> {
        let (nb, b) = (self.num_blocks, self.block);
        let n = nb * b;
        let bm = self.block_mask();
        let mut m = vec![false; self.heads() * n * n];
        for h in 0..self.heads() {
            for i in 0..n {
                for j in 0..n {
                    m[(h * n + i) * n + j] = bm[(h * nb + i / b) * nb + j / b];
                }
            }
        }
        m
    }

    /// Recover an ITC layout (window 3, globals the first and last block, the same number
    /// of random blocks in every non-global row) from a block mask `[heads, nb, nb]`;
    /// `None` when the mask does not have that structure (or there are no middle rows).
    pub fn from_block_mask(
        mask: &[bool],
        heads: usize,
        nb: usize,
        block: usize,
    ) -> Option<BigBirdLayout> {
        if nb < 5 || heads == 0 || mask.len() != heads * nb * nb {
            return None;
        }
        let mut layout = BigBirdLayout {
            block,
            num_blocks: nb,
            window_blocks: 3,
            global_blocks: 2,
            random: vec![vec![Vec::new(); nb]; heads],
        };
        let mut count = None;
        for h in 0..heads {
            for i in 0..nb {
                let row = &mask[(h * nb + i) * nb..(h * nb + i + 1) * nb];
                let mut random = Vec::new();
                for (j, &allowed) in row.iter().enumerate() {
                    match (layout.fixed(i, j), allowed) {
                        (true, false) => return None,
                        (false, true) => random.push(j),
                        _ => {}
                    }
                }
                if layout.is_global(i) {
                    continue;
                }
                if *count.get_or_insert(random.len()) != random.len() {
                    return None;
                }
                layout.random[h][i] = random;
            }
        }
        Some(layout)
    }

    /// The bias of the naive form for queries like `q: [B, H, n, d]`: the block-level
    /// constant `[H, nb, nb]` expanded to `[H, n, n]` (see the module docs).
    pub fn bias(&self, q: &Tensor) -> Result<Tensor> {
        let (h, nb, b) = (self.heads(), self.num_blocks, self.block);
        let c = q
            .graph()
            .constant(bias_value(q.dtype(), &[h, nb, nb], &self.block_mask()))?;
        c.reshape(&dims(&[h, nb, 1, nb, 1]))?
            .broadcast_to(&[h, nb, b, nb, b])?
            .reshape(&dims(&[h, nb * b, nb * b]))
    }

    /// Whether [`bigbird_blockified`] can compute this layout (window 3, the first and last
    /// block global, at least one middle row, the same number of random blocks per row).
    pub fn is_itc(&self) -> bool {
        self.window_blocks == 3
            && self.global_blocks == 2
            && self.num_blocks >= 5
            && BigBirdLayout::from_block_mask(
                &self.block_mask(),
                self.heads(),
                self.num_blocks,
                self.block,
            )
            .is_some()
    }
}

/// BigBird block-sparse attention computed with dense ops (MODELS.md §4a): reshape into
/// blocks, gather the random blocks, global rows attend densely, rows 1 and nb−2 attend to
/// their five block groups, the middle rows get their window by `roll` and attend in one
/// batched matmul and one softmax. `q, k, v: [B, H, n, d]`, `key_bias: [B, 1, 1, n]`
/// (padding; added to every score of that key), `scale` multiplies the scores. Equal to
/// [`attention`] with the layout's mask (padded query rows aside, which the caller zeroes).
pub fn bigbird_blockified(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    layout: &BigBirdLayout,
    key_bias: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let (bsz, h, n, d, dv) = qkv_dims("bigbird_blockified", q, k, v)?;
    let (b, nb) = (layout.block, layout.num_blocks);
    if !layout.is_itc() || nb * b != n || layout.heads() != h {
        return Err(bad(format!(
            "bigbird_blockified: needs an ITC layout (window 3, globals first and last, nb ≥ 5) with {h} heads over n = {n}, got {} heads, nb = {nb}, b = {b}, window {}, globals {}",
            layout.heads(),
            layout.window_blocks,
            layout.global_blocks
        )));
    }
    if let Some(kb) = key_bias
        && kb.shape() != [bsz, 1, 1, n]
    {
        return Err(bad(format!(
            "bigbird_blockified: key_bias must be [B, 1, 1, n] = [{bsz}, 1, 1, {n}], got {:?}",
            kb.shape()
        )));
    }
    let r = layout.random_blocks();
    let g = q.graph();
    // 1. Blockify.
    let qb = q.reshape(&dims(&[bsz, h, nb, b, d]))?;
    let kb = k.reshape(&dims(&[bsz, h, nb, b, d]))?;
    let vb = v.reshape(&dims(&[bsz, h, nb, b, dv]))?;
    // The key bias rides along as a [B, H, nb, b, 1] "key feature".
    let biasb = match key_bias {
        None => None,
        Some(t) => Some(
            t.reshape(&dims(&[bsz, 1, nb, b, 1]))?
                .broadcast_to(&[bsz, h, nb, b, 1])?,
        ),
    };
    // 2. Gather the random blocks of rows 1..nb-2: [B, H, nb-2, r, b, ·].
    let plan: Vec<i64> = (0..h)
        .flat_map(|hh| {
            layout.random[hh][1..nb - 1]
                .iter()
                .flat_map(|row| row.iter().map(|&j| j as i64))
                .collect::<Vec<_>>()
        })
        .collect();
    let plan = g
        .constant(Value::from_vec(&[h, nb - 2, r], plan)?)?
        .broadcast_to(&[bsz, h, nb - 2, r])?;
    let gather = |t: &Tensor, w: usize| -> Result<Tensor> {
        t.gather(&plan, 2, 2)?
            .reshape(&dims(&[bsz, h, nb - 2, r * b, w]))
    };
    let kr = gather(&kb, d)?;
    let vr = gather(&vb, dv)?;
    let br = biasb.as_ref().map(|t| gather(t, 1)).transpose()?;
    let block = |t: &Tensor, i: usize| slice_axis(t, 2, i, 1);
    // Scores of queries [.., rows, b, d] against keys [.., rows, K, d] (+ key bias
    // [.., rows, K, 1]), softmax, times values [.., rows, K, dv].
    let attend = |qq: &Tensor, keys: &Tensor, vals: &Tensor, bias: Option<&Tensor>| {
        let mut s = (&qq.matmul_t(keys, false, true)? * scale)?;
        if let Some(bias) = bias {
            let rank = bias.rank();
            let mut perm: Vec<usize> = (0..rank).collect();
            perm.swap(rank - 1, rank - 2);
            s = (&s + &bias.transpose(&perm)?)?;
        }
        s.softmax(-1)?.matmul(vals)
    };
    // 3. Global rows 0 and nb-1 attend to every key.
    let qg = Tensor::concat(&[&block(&qb, 0)?, &block(&qb, nb - 1)?], 2)?.reshape(&dims(&[
        bsz,
        h,
        2 * b,
        d,
    ]))?;
    let bias_all = key_bias
        .map(|t| t.reshape(&dims(&[bsz, 1, n, 1])))
        .transpose()?;
    let global = attend(&qg, k, v, bias_all.as_ref())?.reshape(&dims(&[bsz, h, 2, b, dv]))?;
    let out0 = block(&global, 0)?;
    let out_last = block(&global, 1)?;
    // 4. Rows 1 and nb-2: five groups of keys each.
    let edge_row = |row: usize, blocks: [usize; 4], rand_row: usize| -> Result<Tensor> {
        let pick = |t: &Tensor, rnd: &Tensor, w: usize| -> Result<Tensor> {
            let mut parts: Vec<Tensor> =
                blocks.iter().map(|&j| block(t, j)).collect::<Result<_>>()?;
            let rr = slice_axis(rnd, 2, rand_row, 1)?;
            parts.push(rr);
            let refs: Vec<&Tensor> = parts.iter().collect();
            Tensor::concat(&refs, 3)?.reshape(&dims(&[bsz, h, 1, (4 + r) * b, w]))
        };
        let keys = pick(&kb, &kr, d)?;
        let vals = pick(&vb, &vr, dv)?;
        let bias = match (&biasb, &br) {
            (Some(bb), Some(brr)) => Some(pick(bb, brr, 1)?),
            _ => None,
        };
        attend(&block(&qb, row)?, &keys, &vals, bias.as_ref())
    };
    let out1 = edge_row(1, [0, 1, 2, nb - 1], 0)?;
    let out_pen = edge_row(nb - 2, [0, nb - 3, nb - 2, nb - 1], nb - 3)?;
    // 5. Middle rows 2..nb-3: window by roll, one batched matmul and one softmax.
    let mid = nb - 4;
    let middle = |t: &Tensor, rnd: &Tensor, w: usize| -> Result<Tensor> {
        let window = Tensor::concat(&[&t.roll(1, 2)?, t, &t.roll(-1, 2)?], 3)?;
        let window = slice_axis(&window, 2, 2, mid)?;
        let first = block(t, 0)?.broadcast_to(&[bsz, h, mid, b, w])?;
        let last = block(t, nb - 1)?.broadcast_to(&[bsz, h, mid, b, w])?;
        let rand = slice_axis(rnd, 2, 1, mid)?;
        Tensor::concat(&[&first, &window, &rand, &last], 3)
    };
    let out_mid = if mid > 0 {
        let keys = middle(&kb, &kr, d)?;
        let vals = middle(&vb, &vr, dv)?;
        let bias = match (&biasb, &br) {
            (Some(bb), Some(brr)) => Some(middle(bb, brr, 1)?),
            _ => None,
        };
        Some(attend(
            &slice_axis(&qb, 2, 2, mid)?,
            &keys,
            &vals,
            bias.as_ref(),
        )?)
    } else {
        None
    };
    // 6. Rows back in order, unblockify.
    let mut rows = vec![&out0, &out1];
    if let Some(m) = &out_mid {
        rows.push(m);
    }
    rows.push(&out_pen);
    rows.push(&out_last);
    Tensor::concat(&rows, 2)?.reshape(&dims(&[bsz, h, n, dv]))
}

/// The layout of an ETC global-local mask over one sequence of `n` tokens whose first
/// `n_global` are global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcLayout {
    /// Sequence length (globals included).
    pub n: usize,
    /// Local radius r.
    pub radius: usize,
    /// Leading global tokens G.
    pub n_global: usize,
}

impl EtcLayout {
    /// A layout; `n_global ≤ n`.
    pub fn new(n: usize, radius: usize, n_global: usize) -> Result<EtcLayout> {
        if n_global > n {
            return Err(bad(format!(
                "EtcGlobalLocal: n_global = {n_global} exceeds the sequence length {n}"
            )));
        }
        Ok(EtcLayout {
            n,
            radius,
            n_global,
        })
    }

    /// Whether query `i` may attend to key `j`.
    pub fn allowed(&self, i: usize, j: usize) -> bool {
        i < self.n_global || j < self.n_global || i.abs_diff(j) <= self.radius
    }

    /// The element-level mask `[n, n]`, row-major.
    pub fn dense_mask(&self) -> Vec<bool> {
        let n = self.n;
        (0..n * n).map(|e| self.allowed(e / n, e % n)).collect()
    }

    /// Recover the layout from an element mask `[n, n]`: the largest G whose rows and
    /// columns are all allowed, then the radius of row G; `None` unless the mask is exactly
    /// that layout with at least one long token and a radius below the long length.
    pub fn from_dense_mask(mask: &[bool], n: usize) -> Option<EtcLayout> {
        if n == 0 || mask.len() != n * n {
            return None;
        }
        let at = |i: usize, j: usize| mask[i * n + j];
        let mut g = 0;
        while g < n && (0..n).all(|j| at(g, j)) && (0..n).all(|i| at(i, g)) {
            g += 1;
        }
        if g >= n {
            return None;
        }
        let radius = (g..n).take_while(|&j| at(g, j)).count().checked_sub(1)?;
        if radius + 1 >= n - g {
            return None;
        }
        let layout = EtcLayout::new(n, radius, g).ok()?;
        (layout.dense_mask() == mask).then_some(layout)
    }
}

/// ETC global-local attention computed blockwise (MODELS.md §4b) for one sequence whose
/// first G tokens are global: global queries attend densely to all keys; long queries are
/// cut into blocks of `bl = r + 1`, attend to their block and both neighbours
/// (`concat_3_blocks`, zero blocks at the ends) plus the global keys, with a static mask for
/// the radius, in one batched matmul and one softmax. `q, k, v: [B, H, n, d]`,
/// `key_bias: [B, 1, 1, n]`.
pub fn etc_blockified(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    layout: &EtcLayout,
    key_bias: Option<&Tensor>,
    scale: f64,
) -> Result<Tensor> {
    let (bsz, h, n, d, dv) = qkv_dims("etc_blockified", q, k, v)?;
    if layout.n != n || layout.n_global >= n {
        return Err(bad(format!(
            "etc_blockified: the layout is for n = {} with {} globals, the inputs have n = {n}",
            layout.n, layout.n_global
        )));
    }
    if let Some(kb) = key_bias
        && kb.shape() != [bsz, 1, 1, n]
    {
        return Err(bad(format!(
            "etc_blockified: key_bias must be [B, 1, 1, n] = [{bsz}, 1, 1, {n}], got {:?}",
            kb.shape()
        )));
    }
    let gq = layout.n_global;
    let long = n - gq;
    let bl = layout.radius + 1;
    let nb = long.div_ceil(bl);
    let padded = nb * bl;
    let g = q.graph();
    let dtype = q.dtype();
    let attend = |qq: &Tensor, keys: &Tensor, vals: &Tensor, bias: Option<&Tensor>| {
        let mut s = (&qq.matmul_t(keys, false, true)? * scale)?;
        if let Some(bias) = bias {
            s = (&s + bias)?;
        }
        s.softmax(-1)?.matmul(vals)
    };
    // Global queries: full attention over [global; long].
    let global_out = if gq > 0 {
        Some(attend(&slice_axis(q, 2, 0, gq)?, k, v, key_bias)?)
    } else {
        None
    };
    // 1. Long tokens padded to nb·bl and blockified.
    let blocks = |t: &Tensor, w: usize| -> Result<Tensor> {
        slice_axis(t, 2, gq, long)?
            .pad(&[(0, 0), (0, 0), (0, padded - long), (0, 0)], 0.0)?
            .reshape(&dims(&[bsz, h, nb, bl, w]))
    };
    // 2. concat_3_blocks: the previous block, the block, the next block (zeros at the ends).
    let three = |t: &Tensor| -> Result<Tensor> {
        let s = t.shape().to_vec();
        let mut pad_prev = vec![(0, 0); s.len()];
        pad_prev[2] = (1, 0);
        let mut pad_next = vec![(0, 0); s.len()];
        pad_next[2] = (0, 1);
        let prev = slice_axis(&t.pad(&pad_prev, 0.0)?, 2, 0, nb)?;
        let next = slice_axis(&t.pad(&pad_next, 0.0)?, 2, 1, nb)?;
        Tensor::concat(&[&prev, t, &next], 3)
    };
    // 4. Global keys and values appended to every block.
    let with_globals = |t: &Tensor, w: usize| -> Result<Tensor> {
        let local = three(&blocks(t, w)?)?;
        if gq == 0 {
            return Ok(local);
        }
        let glob = slice_axis(t, 2, 0, gq)?
            .reshape(&dims(&[bsz, h, 1, gq, w]))?
            .broadcast_to(&[bsz, h, nb, gq, w])?;
        Tensor::concat(&[&local, &glob], 3)
    };
    let qb = blocks(q, d)?;
    let keys = with_globals(k, d)?;
    let vals = with_globals(v, dv)?;
    // 3. The static mask [nb, bl, 3bl + G].
    let width = 3 * bl + gq;
    let mut allowed = vec![false; nb * bl * width];
    for blk in 0..nb {
        for j in 0..bl {
            for kk in 0..width {
                allowed[(blk * bl + j) * width + kk] = if kk >= 3 * bl {
                    true
                } else {
                    let o = kk as i64 - bl as i64 - j as i64;
                    let pos = (blk * bl + j) as i64 + o;
                    o.unsigned_abs() as usize <= layout.radius && pos >= 0 && pos < long as i64
                };
            }
        }
    }
    let mut bias = g.constant(bias_value(dtype, &[nb, bl, width], &allowed))?;
    if let Some(kbias) = key_bias {
        // Key bias blockified like the keys: [B, 1, nb, 1, 3bl + G].
        let as_keys = kbias.reshape(&dims(&[bsz, 1, n, 1]))?;
        let local = {
            let t = slice_axis(&as_keys, 2, gq, long)?
                .pad(&[(0, 0), (0, 0), (0, padded - long), (0, 0)], 0.0)?
                .reshape(&dims(&[bsz, 1, nb, bl, 1]))?;
            three(&t)?
        };
        let kb = if gq > 0 {
            let glob = slice_axis(&as_keys, 2, 0, gq)?
                .reshape(&dims(&[bsz, 1, 1, gq, 1]))?
                .broadcast_to(&[bsz, 1, nb, gq, 1])?;
            Tensor::concat(&[&local, &glob], 3)?
        } else {
            local
        };
        bias = (&bias + &kb.reshape(&dims(&[bsz, 1, nb, 1, width]))?)?;
    }
    // 5. Scores, softmax, weighted sum; back to [B, H, L, dv].
    let long_out = attend(&qb, &keys, &vals, Some(&bias))?.reshape(&dims(&[bsz, h, padded, dv]))?;
    let long_out = slice_axis(&long_out, 2, 0, long)?;
    match global_out {
        Some(go) => Tensor::concat(&[&go, &long_out], 2),
        None => Ok(long_out),
    }
}
