//! Local attention heads of the Routing Transformer (blocked, with a look-back) and the dense
//! attention they and the routing heads are checked against.
//!
//! [`local_attention`] splits the positions into blocks of `block` queries; each block attends
//! to its own block plus `look_back` blocks before it (the repo's `memory_flange`) and, when
//! not causal, `look_ahead` blocks after it. The keys of all blocks are built at once (pad
//! the block axis with zero blocks, take shifted slices, concatenate), so the score tensor
//! is `[B, H, nb, block, (look_back + 1 + look_ahead)·block]`: linear in `n`. Padding
//! positions (when `n` is not a multiple of `block`) never attend or get attended.

use super::{Mask, check_qkv, invalid};
use flumen_frontend::{Result, Tensor, Value};
use ndarray::{ArrayD, IxDyn};

/// Dense attention `softmax(q·kᵀ/√d, masked)·v` over all `n × m` pairs: the reference the
/// sparse heads are tested against. `allowed` (bool, broadcastable to `[B, H, n, m]`)
/// restricts the pairs besides `mask`; the query and key positions are `0..n`, `0..m`.
pub fn dense_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Mask,
    allowed: Option<&Tensor>,
) -> Result<Tensor> {
    let (_, _, n, m, d) = check_qkv("dense_attention", q, k, v)?;
    if let Some(a) = allowed
        && (a.dtype() != flumen_frontend::DType::Bool || a.rank() > 4)
    {
        return Err(invalid(
            "dense_attention",
            format!(
                "`allowed` must be a bool mask broadcastable to [B, H, {n}, {m}], got {} {:?}",
                a.dtype(),
                a.shape()
            ),
        ));
    }
    let g = q.graph();
    let q_pos = g.arange(n, flumen_frontend::DType::I64)?.expand_dims(-1)?;
    let k_pos = g.arange(m, flumen_frontend::DType::I64)?.expand_dims(0)?;
    let raw = (q.matmul_t(k, false, true)? * (1.0 / (d as f64).sqrt()))?;
    mask.apply(&raw, &q_pos, &k_pos, allowed)?
        .softmax(-1)?
        .matmul(v)
}

/// The shape of a local-attention head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAttention {
    /// Queries per block (the repo's `query_shape`).
    pub block: usize,
    /// Previous blocks every block attends to (`memory_flange / query_shape`).
    pub look_back: usize,
    /// Following blocks every block attends to (ignored when causal).
    pub look_ahead: usize,
    /// Causal mask and self exclusion, on the original positions.
    pub mask: Mask,
}

impl LocalAttention {
    /// Key blocks per query block.
    fn span(&self) -> usize {
        let ahead = if self.mask.causal { 0 } else { self.look_ahead };
        self.look_back + 1 + ahead
    }

    /// The boolean mask `[nb, block, span·block]` of real (non-padding) keys inside the
    /// window, and the query/key positions `[nb, block, 1]`, `[nb, 1, span·block]` as i64.
    fn plan(&self, n: usize) -> (Value, Value, Value) {
        let (b, span) = (self.block, self.span());
        let nb = n.div_ceil(b);
        let mut real = ArrayD::from_elem(IxDyn(&[nb, 1, span * b]), false);
        let mut kpos = ArrayD::zeros(IxDyn(&[nb, 1, span * b]));
        let mut qpos = ArrayD::zeros(IxDyn(&[nb, b, 1]));
        for blk in 0..nb {
            for i in 0..b {
                qpos[[blk, i, 0]] = (blk * b + i) as i64;
            }
            for j in 0..span * b {
                // Key j of block blk sits at (blk − look_back)·b + j.
                let p = (blk * b + j) as i64 - (self.look_back * b) as i64;
                kpos[[blk, 0, j]] = p;
                real[[blk, 0, j]] = p >= 0 && p < n as i64;
            }
        }
        (Value::from(real), Value::from(qpos), Value::from(kpos))
    }
}

/// Blocked local attention (see the module docs): `q` `[B,H,n,d]`, `k` `[B,H,n,d]`,
/// `v` `[B,H,n,e]` → `[B,H,n,e]`. Returns the output and the score tensor
/// `[B,H,nb,block,span·block]`.
pub fn local_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    cfg: LocalAttention,
) -> Result<(Tensor, Tensor)> {
    const WHAT: &str = "local_attention";
    let (b, h, n, m, d) = check_qkv(WHAT, q, k, v)?;
    if n != m {
        return Err(invalid(
            WHAT,
            format!("queries and keys must have the same length, got {n} and {m}"),
        ));
    }
    if cfg.block == 0 || n == 0 {
        return Err(invalid(
            WHAT,
            format!(
                "block must be positive and n non-zero, got block {} and n {n}",
                cfg.block
            ),
        ));
    }
    let (bl, span) = (cfg.block, cfg.span());
    let nb = n.div_ceil(bl);
    let e = v.shape()[3];
    let blockify = |t: &Tensor, width: usize| -> Result<Tensor> {
        let t = if nb * bl == n {
            t.clone()
        } else {
            t.pad(&[(0, 0), (0, 0), (0, nb * bl - n), (0, 0)], 0.0)?
        };
        t.reshape(&[b as i64, h as i64, nb as i64, bl as i64, width as i64])
    };
    let window = |t: &Tensor, width: usize| -> Result<Tensor> {
        let blocks = blockify(t, width)?;
        let ahead = span - 1 - cfg.look_back;
        if span == 1 {
            return Ok(blocks);
        }
        let padded = blocks.pad(
            &[(0, 0), (0, 0), (cfg.look_back, ahead), (0, 0), (0, 0)],
            0.0,
        )?;
        let shifted = (0..span)
            .map(|o| padded.slice(ndarray::s![.., .., o..o + nb, .., ..]))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = shifted.iter().collect();
        Tensor::concat(&refs, 3)
    };
    let qb = blockify(q, d)?; // [B,H,nb,bl,d]
    let kw = window(k, d)?; // [B,H,nb,span·bl,d]
    let vw = window(v, e)?;
    let g = q.graph();
    let (real, qpos, kpos) = cfg.plan(n);
    let real = g.constant(real)?;
    let (qpos, kpos) = (g.constant(qpos)?, g.constant(kpos)?);
    let raw = (qb.matmul_t(&kw, false, true)? * (1.0 / (d as f64).sqrt()))?;
    let scores = cfg.mask.apply(&raw, &qpos, &kpos, Some(&real))?;
    let out = scores.softmax(-1)?.matmul(&vw)?.reshape(&[
        b as i64,
        h as i64,
        (nb * bl) as i64,
        e as i64,
    ])?;
    let out = if nb * bl == n {
        out
    } else {
        out.slice(ndarray::s![.., .., ..n, ..])?
    };
    Ok((out, scores))
}

/// The dense equivalent of a [`LocalAttention`] window: `[n, n]` bool, true where query `i`
/// may attend key `j` by the block structure (before the causal/self mask).
pub fn local_window_mask(n: usize, cfg: LocalAttention) -> ArrayD<bool> {
    let span = cfg.span();
    ArrayD::from_shape_fn(IxDyn(&[n, n]), |ix| {
        let (qb, kb) = ((ix[0] / cfg.block) as i64, (ix[1] / cfg.block) as i64);
        let lo = qb - cfg.look_back as i64;
        kb >= lo && kb < lo + span as i64
    })
}
