//! The point-mass task of MODELS.md §7: the environment and the success examples.

use super::{ACTION_SCALE, EPISODE_STEPS, GOAL, GOAL_RADIUS};
use crate::models::cartpole::SplitMix64;
use crate::{GraphError, Result};

/// The point-mass environment.
#[derive(Clone, Debug)]
pub struct PointMass {
    state: [f64; 2],
    steps: usize,
    rng: SplitMix64,
}

impl PointMass {
    /// An environment whose start states come from a [`SplitMix64`] seeded with `seed`.
    pub fn new(seed: u64) -> PointMass {
        PointMass {
            state: [0.0; 2],
            steps: EPISODE_STEPS,
            rng: SplitMix64::new(seed),
        }
    }

    /// Start an episode at a state uniform in `[−1, 1]²` (x drawn first).
    pub fn reset(&mut self) -> [f64; 2] {
        self.state = [
            self.rng.uniform_in(-1.0, 1.0),
            self.rng.uniform_in(-1.0, 1.0),
        ];
        self.steps = 0;
        self.state
    }

    /// The current state.
    pub fn state(&self) -> [f64; 2] {
        self.state
    }

    /// Move by `0.1·a` (each action component must lie in `[−1, 1]`), clipped to the square.
    /// Returns the new state and whether the episode (50 steps) is over. Errors for an action
    /// out of range or not finite, and after the episode ended.
    pub fn step(&mut self, action: [f64; 2]) -> Result<([f64; 2], bool)> {
        if action.iter().any(|a| !(-1.0..=1.0).contains(a)) {
            return Err(GraphError::invalid(format!(
                "PointMass::step: action {action:?} is out of range; expected both components \
                 in [-1, 1]"
            )));
        }
        if self.steps >= EPISODE_STEPS {
            return Err(GraphError::invalid(
                "PointMass::step: the episode is over (or was never started); call reset first",
            ));
        }
        for (s, a) in self.state.iter_mut().zip(action) {
            *s = (*s + ACTION_SCALE * a).clamp(-1.0, 1.0);
        }
        self.steps += 1;
        Ok((self.state, self.steps >= EPISODE_STEPS))
    }
}

/// Whether `state` lies within [`GOAL_RADIUS`] of [`GOAL`].
pub fn is_success(state: [f64; 2]) -> bool {
    (state[0] - GOAL[0]).hypot(state[1] - GOAL[1]) <= GOAL_RADIUS
}

/// `n` states uniform in the success disk (radius `0.1·√u`, angle `2πv`).
pub fn success_examples(n: usize, seed: u64) -> Vec<[f32; 2]> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let r = GOAL_RADIUS * rng.uniform().sqrt();
            let phi = 2.0 * std::f64::consts::PI * rng.uniform();
            [
                (GOAL[0] + r * phi.cos()) as f32,
                (GOAL[1] + r * phi.sin()) as f32,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_and_examples() {
        let mut env = PointMass::new(4);
        let s0 = env.reset();
        assert!(s0.iter().all(|x| (-1.0..1.0).contains(x)));
        let (s1, done) = env.step([1.0, -1.0]).unwrap();
        assert!(!done);
        assert!((s1[0] - (s0[0] + 0.1).min(1.0)).abs() < 1e-12);
        assert!((s1[1] - (s0[1] - 0.1).max(-1.0)).abs() < 1e-12);
        assert!(env.step([1.5, 0.0]).is_err());
        for _ in 1..EPISODE_STEPS - 1 {
            assert!(!env.step([1.0, 1.0]).unwrap().1);
        }
        let (last, done) = env.step([1.0, 1.0]).unwrap();
        assert!(done && last == [1.0, 1.0]);
        assert!(env.step([0.0, 0.0]).is_err());
        let ex = success_examples(200, 1);
        assert_eq!(ex.len(), 200);
        assert!(ex.iter().all(|s| is_success([s[0] as f64, s[1] as f64])));
        assert!(!is_success([-0.5, -0.5]));
    }
}
