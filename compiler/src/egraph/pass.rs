//! The `saturate` pass: equality saturation and extraction as a [`Pass`] of the pipeline.
//!
//! It is not in the default pipeline (see `passes::default_pipeline`): run it with
//! [`crate::passes::optimizing_pipeline`], `Pipeline::new().with(Saturate::default())`, or
//! `FLUMEN_EGRAPH=1` for the compiled backend. It goes before `canonicalize`, so that
//! composites (`softmax`) are single e-nodes the attention rules can match, and before
//! constant folding, which would fold the structured masks the rules read.

use super::{Config, Report, explain, saturate};
use crate::pass::{Pass, Unit};
use flumen_frontend::Result;
use std::sync::Mutex;

/// Equality saturation + sharing-aware extraction (see [`crate::egraph`]).
#[derive(Default)]
pub struct Saturate {
    /// Stages and limits.
    pub config: Config,
    /// The report of the last run (for `explain`).
    pub last_report: Mutex<Option<Report>>,
}

impl Saturate {
    /// The pass with a given configuration.
    pub fn new(config: Config) -> Saturate {
        Saturate {
            config,
            last_report: Mutex::new(None),
        }
    }

    /// The explanation of the last run, if any.
    pub fn last_explanation(&self) -> Option<String> {
        self.last_report
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(explain))
    }
}

impl Pass for Saturate {
    fn name(&self) -> &'static str {
        "saturate"
    }

    fn run(&self, unit: Unit) -> Result<Unit> {
        let (out, report) = saturate(unit, &self.config)?;
        if std::env::var("FLUMEN_EXPLAIN").is_ok() {
            eprintln!("{}", explain(&report));
        }
        if let Ok(mut slot) = self.last_report.lock() {
            *slot = Some(report);
        }
        Ok(out)
    }
}
