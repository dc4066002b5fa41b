//! Matrix-product epilogues: when the only reader of a product `C` is the elementwise
//! kernel right after it, reading `C` element for element (bias-add, activation, scaling),
//! that kernel becomes the product's epilogue. The executor then runs it on each block of
//! rows as soon as the block is computed, while it is still in cache, and `C` never makes a
//! round trip through memory between the two.

use super::affine::contiguous_strides;
use super::{LStep, Lowered};
use crate::kernel::{BufId, Kernel};
use flumen_runtime::exec::MatMulDims;

/// Whether `k` can run over `c`'s elements as an epilogue: an elementwise kernel over
/// exactly `c`'s elements that reads `c` only at the same linear index.
fn fits(k: &Kernel, c: BufId, dims: &MatMulDims) -> bool {
    let numel = dims.batch * dims.m * dims.n;
    if !k.inner.is_empty()
        || k.phases.len() != 1
        || k.phases[0].over_inner
        || k.outer_len() != numel
    {
        return false;
    }
    let identity = contiguous_strides(&k.outer);
    let reads_c = k.accesses.iter().any(|a| a.buf == c);
    let c_ok = k
        .accesses
        .iter()
        .filter(|a| a.buf == c)
        .all(|a| a.offset == 0 && a.outer_strides == identity);
    let writes_c = k.outputs().contains(&c);
    reads_c && c_ok && !writes_c
}

/// Fold eligible elementwise kernels into the matrix product before them.
pub fn fuse_matmul_epilogues(l: &mut Lowered) {
    let mut i = 0;
    while i + 1 < l.steps.len() {
        let fusable = match (&l.steps[i], &l.steps[i + 1]) {
            (
                LStep::MatMul {
                    c,
                    dims,
                    epilogue: None,
                    ..
                },
                LStep::Kernel(k),
            ) => {
                let c = *c;
                let other_readers = l
                    .steps
                    .iter()
                    .enumerate()
                    .any(|(j, s)| j != i + 1 && j != i && s.reads().contains(&c))
                    || l.fetches.iter().any(|(f, _)| *f == c)
                    || l.buffers
                        .iter()
                        .any(|b| b.storage == flumen_runtime::exec::Storage::Alias(c));
                fits(k, c, dims) && !other_readers
            }
            _ => false,
        };
        if fusable {
            let LStep::Kernel(k) = l.steps.remove(i + 1) else {
                unreachable!("checked above")
            };
            if let LStep::MatMul { epilogue, .. } = &mut l.steps[i] {
                *epilogue = Some(k);
            }
        }
        i += 1;
    }
}
