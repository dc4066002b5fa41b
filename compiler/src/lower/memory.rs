//! Memory planning: every temporary gets an offset in one arena, reusing space between
//! buffers whose lifetimes (first write .. last read, following aliases) do not overlap.

use super::Lowered;
use crate::kernel::BufId;
use flumen_runtime::exec::Storage;

const ALIGN: usize = 64;

fn root(l: &Lowered, b: BufId) -> BufId {
    super::alias_root(&l.buffers, b)
}

/// Assign arena offsets; returns the arena size in bytes.
pub fn plan(l: &mut Lowered) -> usize {
    let n = l.buffers.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    let touch = |first: &mut Vec<usize>, last: &mut Vec<usize>, b: BufId, at: usize| {
        first[b.0] = first[b.0].min(at);
        last[b.0] = last[b.0].max(at);
    };
    for (i, s) in l.steps.iter().enumerate() {
        for b in s.writes().into_iter().chain(s.reads()) {
            let r = root(l, b);
            touch(&mut first, &mut last, r, i);
        }
    }
    let end = l.steps.len();
    for (f, _) in &l.fetches {
        let r = root(l, *f);
        touch(&mut first, &mut last, r, end);
    }
    // Place big buffers first; each at the lowest offset not overlapping a live neighbour.
    let mut order: Vec<usize> = (0..n)
        .filter(|&b| {
            matches!(l.buffers[b].storage, Storage::Arena { .. }) && l.buffers[b].bytes() > 0
        })
        .collect();
    order.sort_by_key(|&b| (std::cmp::Reverse(l.buffers[b].bytes()), b));
    let mut placed: Vec<(usize, usize, usize, usize)> = Vec::new(); // (offset, size, first, last)
    let mut arena = 0;
    for b in order {
        let size = l.buffers[b].bytes().div_ceil(ALIGN) * ALIGN;
        let (f, la) = if first[b] == usize::MAX {
            (0, end)
        } else {
            (first[b], last[b])
        };
        let mut conflicts: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(_, _, pf, pl)| pf <= la && f <= pl)
            .map(|&(o, s, _, _)| (o, s))
            .collect();
        conflicts.sort_unstable();
        let mut offset = 0;
        for (o, s) in conflicts {
            if offset + size <= o {
                break;
            }
            offset = offset.max(o + s);
        }
        l.buffers[b].storage = Storage::Arena { offset };
        placed.push((offset, size, f, la));
        arena = arena.max(offset + size);
    }
    arena
}

/// Total bytes of temporaries without reuse (for reporting the planner's savings).
pub fn unplanned_bytes(l: &Lowered) -> usize {
    l.buffers
        .iter()
        .filter(|b| matches!(b.storage, Storage::Arena { .. }))
        .map(|b| b.bytes().div_ceil(ALIGN) * ALIGN)
        .sum()
}
