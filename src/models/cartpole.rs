//! CartPole-v0 (MODELS.md §2), reimplemented exactly as gym's `cartpole.py` with the v0
//! registration: explicit Euler integration, force ±10 N, τ = 0.02 s, failure beyond ±12°
//! or ±2.4 m, reward 1 per step (including the failing one), episodes cut at 200 steps.
//! The environment runs in f64 like gym's NumPy state; resets draw each state component
//! uniformly from `[-0.05, 0.05)` with [`SplitMix64`], the seeded generator shared by the
//! models' plain-Rust parts.

use crate::{GraphError, Result};

/// Gravity (m/s²).
pub const GRAVITY: f64 = 9.8;
/// Mass of the cart (kg).
pub const MASS_CART: f64 = 1.0;
/// Mass of the pole (kg).
pub const MASS_POLE: f64 = 0.1;
/// Cart + pole.
pub const TOTAL_MASS: f64 = MASS_CART + MASS_POLE;
/// Half the pole's length (m).
pub const LENGTH: f64 = 0.5;
/// `MASS_POLE · LENGTH`.
pub const POLEMASS_LENGTH: f64 = MASS_POLE * LENGTH;
/// Magnitude of the force an action applies (N).
pub const FORCE_MAG: f64 = 10.0;
/// Seconds between state updates.
pub const TAU: f64 = 0.02;
/// The pole fails beyond this angle: 12° in radians (`12 · 2π / 360`).
pub const THETA_THRESHOLD: f64 = 12.0 * 2.0 * std::f64::consts::PI / 360.0;
/// The cart fails beyond this position (m).
pub const X_THRESHOLD: f64 = 2.4;
/// CartPole-v0's `max_episode_steps`.
pub const MAX_EPISODE_STEPS: usize = 200;
/// CartPole-v0's `reward_threshold`: solved when the mean return over 100 consecutive
/// episodes reaches it.
pub const REWARD_THRESHOLD: f64 = 195.0;
/// Resets draw each state component from `[-RESET_BOUND, RESET_BOUND)`.
pub const RESET_BOUND: f64 = 0.05;
/// Observation size `(x, ẋ, θ, θ̇)`.
pub const OBS_DIM: usize = 4;
/// Number of actions (0: push left, 1: push right).
pub const NUM_ACTIONS: usize = 2;

/// A small seeded generator (SplitMix64, Steele et al. 2014): reproducible, fast and
/// dependency-free. Used for environment resets, replay sampling and success examples.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in `[0, 1)` from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `[low, high)`.
    pub fn uniform_in(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// A uniform index in `0..n` (multiply-shift; bias below `n / 2⁶⁴`). Returns 0 for
    /// `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A standard normal sample (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// The result of one [`CartPole::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The state after the step `(x, ẋ, θ, θ̇)`.
    pub state: [f64; 4],
    /// 1.0 (gym pays for every step, the failing one included).
    pub reward: f64,
    /// The pole fell, the cart left the track, or the 200-step limit was reached.
    pub done: bool,
    /// `done` only because of the time limit (gym's `TimeLimit.truncated`).
    pub truncated: bool,
}

/// The CartPole-v0 environment with its time limit.
#[derive(Clone, Debug)]
pub struct CartPole {
    state: [f64; 4],
    steps: usize,
    done: bool,
    rng: SplitMix64,
}

impl CartPole {
    /// An environment whose resets are drawn from a [`SplitMix64`] seeded with `seed`. The
    /// first [`reset`](CartPole::reset) must come before the first step.
    pub fn new(seed: u64) -> CartPole {
        CartPole {
            state: [0.0; 4],
            steps: 0,
            done: true,
            rng: SplitMix64::new(seed),
        }
    }

    /// Start an episode: every state component uniform in `[-0.05, 0.05)`, drawn in the
    /// order `x, ẋ, θ, θ̇`. Returns the initial state.
    pub fn reset(&mut self) -> [f64; 4] {
        for s in &mut self.state {
            *s = self.rng.uniform_in(-RESET_BOUND, RESET_BOUND);
        }
        self.steps = 0;
        self.done = false;
        self.state
    }

    /// Start an episode from a given state (for tests and replays).
    pub fn reset_to(&mut self, state: [f64; 4]) {
        self.state = state;
        self.steps = 0;
        self.done = false;
    }

    /// The current state.
    pub fn state(&self) -> [f64; 4] {
        self.state
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Push the cart: action 1 applies `+10 N`, action 0 `−10 N`. Errors for any other
    /// action and for stepping an episode that is over (reset first).
    pub fn step(&mut self, action: usize) -> Result<Step> {
        if action >= NUM_ACTIONS {
            return Err(GraphError::invalid(format!(
                "CartPole::step: action {action} is out of range; expected 0 (left) or 1 (right)"
            )));
        }
        if self.done {
            return Err(GraphError::invalid(
                "CartPole::step: the episode is over (or was never started); call reset first",
            ));
        }
        self.state = dynamics(self.state, action);
        self.steps += 1;
        let [x, _, theta, _] = self.state;
        let failed = !(-X_THRESHOLD..=X_THRESHOLD).contains(&x)
            || !(-THETA_THRESHOLD..=THETA_THRESHOLD).contains(&theta);
        let truncated = !failed && self.steps >= MAX_EPISODE_STEPS;
        self.done = failed || truncated;
        Ok(Step {
            state: self.state,
            reward: 1.0,
            done: self.done,
            truncated,
        })
    }
}

/// One explicit-Euler step of gym's cart-pole equations (no thresholds, no time limit).
pub fn dynamics(state: [f64; 4], action: usize) -> [f64; 4] {
    let [x, x_dot, theta, theta_dot] = state;
    let force = if action == 1 { FORCE_MAG } else { -FORCE_MAG };
    let (sin, cos) = theta.sin_cos();
    let temp = (force + POLEMASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS;
    let theta_acc =
        (GRAVITY * sin - cos * temp) / (LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS));
    let x_acc = temp - POLEMASS_LENGTH * theta_acc * cos / TOTAL_MASS;
    [
        x + TAU * x_dot,
        x_dot + TAU * x_acc,
        theta + TAU * theta_dot,
        theta_dot + TAU * theta_acc,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 4], b: [f64; 4], tol: f64) -> bool {
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() < tol)
    }

    /// Steps from `start` with `policy(t)` until done; returns (steps, final state).
    fn run(start: [f64; 4], policy: impl Fn(usize) -> usize) -> (usize, [f64; 4]) {
        let mut env = CartPole::new(0);
        env.reset_to(start);
        for t in 0.. {
            let s = env.step(policy(t)).unwrap();
            assert_eq!(s.reward, 1.0);
            if s.done {
                return (t + 1, s.state);
            }
        }
        unreachable!()
    }

    #[test]
    fn models_md_test_vectors() {
        let s = dynamics([0.0; 4], 1);
        assert!(close(
            s,
            [0.0, 0.195_121_951_2, 0.0, -0.292_682_926_8],
            1e-10
        ));
        let (n, s) = run([0.0; 4], |_| 1);
        assert_eq!(n, 9);
        assert!((s[2] + 0.215_186).abs() < 1e-6, "{s:?}");
        let (n, s) = run([0.0; 4], |_| 0);
        assert_eq!(n, 9);
        assert!((s[2] - 0.215_186).abs() < 1e-6, "{s:?}");
        assert_eq!(run([0.0; 4], |t| t % 2).0, 33);
        let mut s = [0.01, -0.02, 0.03, -0.04];
        for a in [0, 1, 1, 0] {
            s = dynamics(s, a);
        }
        let want = [
            0.008_347_619_3,
            -0.021_824_009_7,
            0.027_954_024_6,
            0.000_255_475_9,
        ];
        assert!(close(s, want, 1e-10), "{s:?}");
    }

    #[test]
    fn time_limit_and_errors() {
        // Zero gravity would be needed to balance trivially; instead drive the pole with a
        // bang-bang controller on θ̇, which balances for the whole episode.
        let mut env = CartPole::new(3);
        let mut s = env.reset();
        let mut n = 0;
        loop {
            let a = usize::from(s[2] + 0.5 * s[3] > 0.0);
            let st = env.step(a).unwrap();
            n += 1;
            s = st.state;
            if st.done {
                assert!(st.truncated, "failed at step {n}: {s:?}");
                break;
            }
        }
        assert_eq!(n, MAX_EPISODE_STEPS);
        assert!(env.step(0).unwrap_err().to_string().contains("reset"));
        env.reset();
        assert!(env.step(2).unwrap_err().to_string().contains("action 2"));
    }

    #[test]
    fn resets_are_seeded_and_bounded() {
        let (mut a, mut b, mut c) = (CartPole::new(1), CartPole::new(1), CartPole::new(2));
        for _ in 0..100 {
            let (sa, sb, sc) = (a.reset(), b.reset(), c.reset());
            assert_eq!(sa, sb);
            assert_ne!(sa, sc);
            assert!(sa.iter().all(|v| (-0.05..0.05).contains(v)));
        }
        assert!(CartPole::new(0).step(0).is_err());
    }
}
