//! In-place variable updates: `assign(v, f(...))` normally computes `f` into a temporary and
//! copies it into the variable. When nothing reads the variable's old value between the
//! step computing `f` and the copy (other than that step itself, element for element), the
//! step writes straight into the variable's storage and the copy disappears — an optimizer
//! step then updates each parameter and slot in place.

use super::{LStep, Lowered};
use crate::kernel::{BufId, Expr, PhaseKind};
use flumen_runtime::exec::Storage;

fn root(l: &Lowered, b: BufId) -> BufId {
    super::alias_root(&l.buffers, b)
}

/// Whether buffer `b` is the variable storage `store` or a view of it.
fn is_var(l: &Lowered, b: BufId, store: BufId) -> bool {
    root(l, b) == store
}

/// Retarget the step at `si` from writing `t` to writing `store`, if that is safe.
fn retarget(l: &mut Lowered, si: usize, t: BufId, store: BufId) -> bool {
    match &mut l.steps[si] {
        LStep::Kernel(k) => {
            let Some(out) = k.accesses.iter().find(|a| a.buf == t).cloned() else {
                return false;
            };
            // Reads of the old value must be element-for-element with the write.
            let var_reads_ok = k
                .accesses
                .iter()
                .filter(|a| root_is(&l.buffers, a.buf, store))
                .all(|a| {
                    a.offset == out.offset
                        && a.outer_strides == out.outer_strides
                        && a.inner_strides == out.inner_strides
                });
            // In a multi-phase kernel (a reduction group), no phase after the one storing
            // the new value may read the variable (each outer index runs its phases in
            // order, so earlier phases read the old value).
            let out_index = k.accesses.iter().position(|a| a.buf == t);
            let store_phase = k.phases.iter().position(|p| match &p.kind {
                PhaseKind::Store { stores } => stores.iter().any(|(a, _)| Some(*a) == out_index),
                PhaseKind::Reduce { .. } => false,
            });
            let Some(sp) = store_phase else {
                return false;
            };
            let reads_var_later = k.phases[sp + 1..].iter().any(|p| {
                p.exprs.iter().any(|e| {
                    matches!(e, Expr::Load(a) if root_is(&l.buffers, k.accesses[*a].buf, store))
                })
            });
            if !var_reads_ok || reads_var_later {
                return false;
            }
            for a in &mut k.accesses {
                if a.buf == t {
                    a.buf = store;
                }
            }
            true
        }
        LStep::MatMul {
            a, b, c, epilogue, ..
        } => {
            if root_is(&l.buffers, *a, store) || root_is(&l.buffers, *b, store) {
                return false;
            }
            match epilogue {
                None if *c == t => {
                    *c = store;
                    true
                }
                Some(k) if k.outputs().contains(&t) => {
                    if k.accesses.iter().any(|x| root_is(&l.buffers, x.buf, store)) {
                        return false;
                    }
                    for x in &mut k.accesses {
                        if x.buf == t {
                            x.buf = store;
                        }
                    }
                    true
                }
                _ => false,
            }
        }
        _ => false,
    }
}

fn root_is(buffers: &[flumen_runtime::exec::BufferDecl], b: BufId, store: BufId) -> bool {
    super::alias_root(buffers, b) == store
}

/// Apply every safe in-place update.
pub fn assign_in_place(l: &mut Lowered) {
    let mut ci = 0;
    while ci < l.steps.len() {
        let LStep::Copy { src: t, dst: store } = l.steps[ci] else {
            ci += 1;
            continue;
        };
        let ok = matches!(l.buffers[store.0].storage, Storage::Variable(_))
            && matches!(l.buffers[t.0].storage, Storage::Arena { .. })
            && !l.fetches.iter().any(|(f, _)| root(l, *f) == t);
        let writers: Vec<usize> = (0..l.steps.len())
            .filter(|&j| l.steps[j].writes().contains(&t))
            .collect();
        // Other readers of the new value will read it from the variable instead: no later
        // write of the variable may come before them.
        let last_reader = (0..l.steps.len())
            .filter(|&j| {
                j != ci
                    && !writers.contains(&j)
                    && l.steps[j].reads().iter().any(|&r| root(l, r) == t)
            })
            .max();
        let rewritten_before_read = last_reader.is_some_and(|last| {
            l.steps[ci + 1..=last.max(ci)]
                .iter()
                .any(|s| s.writes().iter().any(|&b| is_var(l, b, store)))
        });
        if !ok || rewritten_before_read || writers.len() != 1 || writers[0] > ci {
            ci += 1;
            continue;
        }
        let si = writers[0];
        let touched_between = l.steps[si + 1..ci].iter().any(|s| {
            s.reads()
                .into_iter()
                .chain(s.writes())
                .any(|b| is_var(l, b, store))
        });
        // Readers of the new value between the write and the copy read `t`, not the
        // variable, so they do not count as touching it.
        if touched_between || !retarget(l, si, t, store) {
            ci += 1;
            continue;
        }
        // Buffers that aliased the temporary (the assign node's own value) now alias the
        // variable.
        for b in 0..l.buffers.len() {
            if l.buffers[b].storage == Storage::Alias(t) {
                l.buffers[b].storage = Storage::Alias(store);
            }
        }
        l.steps.remove(ci);
        for s in &mut l.steps {
            replace_reads(s, t, store);
        }
    }
}

/// Make `s` read `to` wherever it read `from`.
fn replace_reads(s: &mut LStep, from: BufId, to: BufId) {
    let swap = |b: &mut BufId| {
        if *b == from {
            *b = to;
        }
    };
    match s {
        LStep::Kernel(k) => k.accesses.iter_mut().for_each(|a| swap(&mut a.buf)),
        LStep::MatMul { a, b, epilogue, .. } => {
            swap(a);
            swap(b);
            if let Some(k) = epilogue {
                k.accesses.iter_mut().for_each(|a| swap(&mut a.buf));
            }
        }
        LStep::Interpret { inputs, .. } => inputs.iter_mut().for_each(|(b, _)| swap(b)),
        LStep::Copy { src, .. } => swap(src),
    }
}
