//! Session state shared by every backend: variable values and random-op counters.
//!
//! Both are keyed by node name, which every compiler pass preserves for stateful nodes, so
//! an interpreted run and a compiled run of the same graph see and leave the same state.

use flumen_frontend::Value;
use std::collections::BTreeMap;

/// Variables and random-op execution counters of one session.
#[derive(Clone, Debug, Default)]
pub struct SessionState {
    /// Current value of each initialised variable, by variable node name.
    pub variables: BTreeMap<String, Value>,
    /// How many times each random node has run, by node name (its Philox counter).
    pub counters: BTreeMap<String, u64>,
}

impl SessionState {
    /// Empty state: no variable initialised, every counter at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter of random node `name`, post-incremented.
    pub fn next_counter(&mut self, name: &str) -> u64 {
        let c = self.counters.entry(name.to_string()).or_insert(0);
        let v = *c;
        *c += 1;
        v
    }
}
