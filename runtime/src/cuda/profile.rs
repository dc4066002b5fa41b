//! `FLUMEN_CUDA_PROFILE=1`: where a [`CudaExecutable`](super::exec::CudaExecutable)'s runs
//! spend their time, per phase and (with CUDA graphs off) per device step.

use super::exec::Segment;
use super::program::CudaProgram;

/// Accumulated wall time of each phase of [`CudaExecutable::run`] over all runs, with the
/// stream synchronised after each phase so the device time lands in its phase.
#[derive(Default)]
pub(super) struct Profile {
    pub(super) runs: usize,
    pub(super) variables: std::time::Duration,
    pub(super) feeds: std::time::Duration,
    pub(super) segments: Vec<std::time::Duration>,
    pub(super) fetches: std::time::Duration,
    /// CUDA graphs captured (once per device segment unless buffers move).
    pub(super) captures: usize,
    /// Per device step, when graphs are off (`FLUMEN_CUDA_GRAPHS=0`).
    pub(super) steps: Vec<std::time::Duration>,
}

impl Profile {
    pub(super) fn report(&self, program: &CudaProgram, segments: &[Segment]) -> String {
        use std::fmt::Write;
        let per = |d: std::time::Duration| d.as_secs_f64() * 1e3 / self.runs.max(1) as f64;
        let mut out = format!(
            "flumen cuda profile: {} runs, {} graph captures, mean ms per run: variables {:.4}, feeds {:.4}, fetches {:.4}\n",
            self.runs,
            self.captures,
            per(self.variables),
            per(self.feeds),
            per(self.fetches)
        );
        for (seg, d) in segments.iter().zip(&self.segments) {
            let what = match seg {
                Segment::Device { steps, .. } => format!("device steps {steps:?}"),
                Segment::Host(i) => program.steps[*i].describe(),
            };
            let _ = writeln!(out, "  {:>10.4} ms  {what}", per(*d));
        }
        let mut by_time: Vec<(usize, std::time::Duration)> =
            self.steps.iter().copied().enumerate().collect();
        by_time.sort_by_key(|&(_, d)| std::cmp::Reverse(d));
        if !by_time.is_empty() {
            let total: f64 = by_time.iter().map(|(_, d)| per(*d)).sum();
            let _ = writeln!(out, "  device steps, slowest first (of {total:.4} ms):");
        }
        for (i, d) in by_time.into_iter().take(20) {
            let _ = writeln!(
                out,
                "  {:>10.4} ms  step {i}: {}",
                per(d),
                program.steps[i].describe()
            );
        }
        out
    }
}
