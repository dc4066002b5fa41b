//! RCE, recursive classification of examples (MODELS.md §7), on its smallest faithful task: a
//! 2-D point mass that must reach a goal it is never told about, learning only from 200
//! examples of successful states.
//!
//! - Environment ([`PointMass`]): `s ∈ [−1, 1]²`, `a ∈ [−1, 1]²`, `s' = clip(s + 0.1·a, −1, 1)`,
//!   `s₀ ~ U([−1, 1]²)`, 50-step episodes without terminals; an episode succeeds when its last
//!   state lies within 0.1 of `g = (0.5, 0.5)`. [`success_examples`] draws the 200 states
//!   uniformly from that disk.
//! - Critics: twin classifiers `C_i(s, a) = σ(MLP_i([s, a]))` with Polyak-averaged targets
//!   (τ = 0.005 every step), trained on `B` replay transitions `(s_t, a_t, s_{t+1}, s_{t+n})`
//!   (n = 10; the future state as in the original, see the replay below) and `B` success
//!   examples with the labels and weights of [`label_and_weight`]:
//!   `C̄_i = (C̄_i(s_{t+1}, a') + γⁿ·C̄_i(s_{t+n}, a''))/2`, `C' = min(C̄_1, C̄_2)`,
//!   `w = C'/(1 − C')`, `y = γw/(γw + 1)`; labels `[y; 1]`, weights `[1 + γw; 1 − γ]`;
//!   the loss is `0.5 · Σ weight·(BCE(label, C_1) + BCE(label, C_2)) / 2B` with Keras' BCE on
//!   probabilities clipped to `[1e-7, 1 − 1e-7]`.
//! - Actor: a tanh-Normal policy, `a = tanh(μ + σ·ε)` with `σ = 1e-3 + softplus(raw)` and
//!   `ε ~ N(0, 1)` drawn in the graph (reparameterised), with its exact log-density
//!   ([`tanh_normal_log_prob`]); loss `mean_s[α·log π(a|s) − min(C_1, C_2)(s, a)]`, α = 1e-4.
//! - One environment step and one gradient step per iteration after the initial random steps,
//!   in the original's order (google-research `rce_agent.py`): the critic step, then the actor
//!   step scored by the *updated* critics, then the Polyak update toward the updated critics
//!   (three session runs, see [`Agent::train_step`]).
//! - Replay ([`FrameReplay`]): the stream of `(s_t, a_t)` frames with episode boundaries, as
//!   tf_agents' uniform replay stores them; transitions are windows of `n` frames whose first
//!   frame is not a boundary, with `s_{t+1}` the second frame and the future state the last
//!   one (`s_{t+n−1}`, weighted by `γⁿ`), which may lie in the next episode
//!   ([`FutureSampling::AsOriginal`], the default), or `s_{t+n}` clamped to the episode's end
//!   ([`FutureSampling::ClampedToEpisode`], MODELS.md's wording).
//!
//! The submodules: [`env`] (the point mass and success examples), [`replay`], [`model`] (the
//! graph) and [`agent`] (interaction, updates, evaluation).

pub mod agent;
pub mod env;
pub mod model;
pub mod replay;

pub use agent::{Agent, Evaluation, StepStats};
pub use env::{PointMass, is_success, success_examples};
pub use model::Model;
pub use replay::{FrameReplay, FutureSampling, Transition};

use super::a2c::Layer;
use crate::nn::{Activation, EPSILON, Initializer, Reduction};
use crate::{DType, Graph, Result, Tensor};

/// The hidden goal.
pub const GOAL: [f64; 2] = [0.5, 0.5];
/// Success radius around the goal.
pub const GOAL_RADIUS: f64 = 0.1;
/// The action's scale in the dynamics `s' = clip(s + 0.1·a)`.
pub const ACTION_SCALE: f64 = 0.1;
/// Steps per episode.
pub const EPISODE_STEPS: usize = 50;
/// State and action size.
pub const DIM: usize = 2;

/// RCE's target quantities for a target classifier value `C'` (clipped to
/// `[0, 1 − 1e-7]` so that `w` stays finite): `(w, y, weight)` with `w = C'/(1 − C')`,
/// label `y = γw/(γw + 1)` and sample weight `1 + γw`.
pub fn label_and_weight(c_target: f64, gamma: f64) -> (f64, f64, f64) {
    let c = c_target.clamp(0.0, 1.0 - EPSILON);
    let w = c / (1.0 - c);
    (w, gamma * w / (gamma * w + 1.0), 1.0 + gamma * w)
}

/// Keras' binary cross-entropy of probability `p` (clipped to `[1e-7, 1 − 1e-7]`) against
/// label `y`, times `weight`.
pub fn weighted_bce(y: f64, weight: f64, p: f64) -> f64 {
    let p = p.clamp(EPSILON, 1.0 - EPSILON);
    -weight * (y * p.ln() + (1.0 - y) * (1.0 - p).ln())
}

/// RCE's hyperparameters (`train_eval.py`, with the allowed scale-down of the hidden layers
/// and of the initial random steps as defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Hidden units of both layers of the actor and of each critic (64; the paper: 256).
    pub hidden: usize,
    /// Replay transitions per batch, and as many success examples (256).
    pub batch: usize,
    /// Discount γ (0.99).
    pub gamma: f64,
    /// n of the n-step targets (10).
    pub n_step: usize,
    /// Polyak rate of the target critics, applied every step (0.005).
    pub tau: f64,
    /// Adam learning rate of the critics (3e-4).
    pub critic_lr: f64,
    /// Adam learning rate of the actor (3e-4).
    pub actor_lr: f64,
    /// Entropy coefficient α of the actor loss (1e-4).
    pub alpha: f64,
    /// Weight of the critic loss (0.5).
    pub critic_loss_weight: f64,
    /// Uniformly random steps before learning starts (1,000; the paper: 10,000).
    pub initial_random_steps: usize,
    /// Replay capacity (1e6).
    pub replay_capacity: usize,
    /// Success examples (200).
    pub success_examples: usize,
    /// Which state serves as the n-step future state (the original's by default).
    pub future: FutureSampling,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hidden: 64,
            batch: 256,
            gamma: 0.99,
            n_step: 10,
            tau: 0.005,
            critic_lr: 3e-4,
            actor_lr: 3e-4,
            alpha: 1e-4,
            critic_loss_weight: 0.5,
            initial_random_steps: 1_000,
            replay_capacity: 1_000_000,
            success_examples: 200,
            future: FutureSampling::AsOriginal,
        }
    }
}

/// A two-hidden-layer ReLU MLP with Glorot-uniform kernels and zero biases.
#[derive(Clone)]
pub struct Mlp {
    /// The three layers.
    pub layers: Vec<Layer>,
}

impl Mlp {
    /// Create the variables under `scope`; layer `k`'s kernel has seed `seed + k`, so two
    /// MLPs built with the same seed start equal.
    pub fn new(g: &Graph, scope: &str, sizes: [usize; 4], seed: u64) -> Result<Mlp> {
        let _scope = g.scope(scope);
        let layers = (0..3)
            .map(|k| {
                let act = if k < 2 {
                    Activation::Relu
                } else {
                    Activation::Linear
                };
                let name = format!("dense{}", k + 1);
                let io = (sizes[k], sizes[k + 1]);
                let init = Initializer::GlorotUniform;
                Layer::new(g, &name, io, act, &init, Some(seed.wrapping_add(k as u64)))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Mlp { layers })
    }

    /// Apply to `x` `[batch, in]`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.layers.iter().try_fold(x.clone(), |h, l| l.apply(&h))
    }

    /// The variables (kernel, bias per layer).
    pub fn variables(&self) -> Vec<Tensor> {
        self.layers
            .iter()
            .flat_map(|l| [l.w.clone(), l.b.clone()])
            .collect()
    }

    /// `σ(MLP([s, a]))` `[batch, 1]`: a classifier of state-action pairs.
    pub fn classify(&self, s: &Tensor, a: &Tensor) -> Result<Tensor> {
        self.apply(&Tensor::concat(&[s, a], 1)?)?.sigmoid()
    }
}

/// `log π(a|s)` `[batch]` of the tanh-Normal policy for pre-squash samples `u` `[batch, d]`
/// of `N(mean, std²)`, `a = tanh(u)`: `Σ_d [log N(u; mean, std) − log(1 − tanh²u)]` with the
/// stable form `log(1 − tanh²u) = 2(log 2 − u − softplus(−2u))`.
pub fn tanh_normal_log_prob(u: &Tensor, mean: &Tensor, std: &Tensor) -> Result<Tensor> {
    let z = ((u - mean)? / std)?;
    let log_normal =
        ((&z.square()? * -0.5)? - &(std.log()? + 0.5 * (2.0 * std::f64::consts::PI).ln())?)?;
    let log_det = ((&(&(u * -2.0)?.softplus()? + u)? * -2.0)? + 2.0 * std::f64::consts::LN_2)?;
    (log_normal - &log_det)?.sum(&[-1], false)
}

/// The same log-density on the host (f64), for tests.
pub fn tanh_normal_log_prob_host(u: &[f64], mean: &[f64], std: &[f64]) -> f64 {
    u.iter()
        .zip(mean)
        .zip(std)
        .map(|((&u, &m), &s)| {
            let z = (u - m) / s;
            let log_normal = -0.5 * z * z - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
            log_normal - (1.0 - u.tanh().powi(2)).ln()
        })
        .sum()
}

/// The critic loss of MODELS.md §7 from tensors: target classifier values `c_target` `[B, 1]`
/// (`C'` before clipping), the online critics' probabilities on the replay pairs `p1`, `p2`
/// `[B, 1]` and on the success examples `q1`, `q2` `[B, 1]`. Returns `(loss, labels,
/// weights)` with labels `[2B, 1]` and weights `[2B]`.
#[allow(clippy::too_many_arguments)]
pub fn critic_loss(
    c_target: &Tensor,
    p1: &Tensor,
    p2: &Tensor,
    q1: &Tensor,
    q2: &Tensor,
    gamma: f64,
    critic_loss_weight: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let b = c_target.shape()[0];
    let c = c_target.clip(0.0, 1.0 - EPSILON)?.stop_gradient()?;
    let w = (&c / &(1.0f64 - &c)?)?;
    let gw = (&w * gamma)?;
    let y = (&gw / &(&gw + 1.0)?)?;
    let g = c_target.graph();
    let ones = g.ones(&[b, 1], DType::F32)?;
    let labels = Tensor::concat(&[&y, &ones], 0)?;
    let weights = Tensor::concat(&[&(&gw + 1.0)?, &(&ones * (1.0 - gamma))?], 0)?.reshape(&[-1])?;
    let pred1 = Tensor::concat(&[p1, q1], 0)?;
    let pred2 = Tensor::concat(&[p2, q2], 0)?;
    let l1 = pred1.binary_cross_entropy(&labels, Some(&weights), Reduction::Sum)?;
    let l2 = pred2.binary_cross_entropy(&labels, Some(&weights), Reduction::Sum)?;
    let loss = (&(&l1 + &l2)? * (critic_loss_weight / (2 * b) as f64))?;
    Ok((loss, labels, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_md_loss_numbers() {
        let (w, y, weight) = label_and_weight(0.5, 0.99);
        assert!((w - 1.0).abs() < 1e-12);
        assert!((y - 0.497_487).abs() < 1e-6);
        assert!((weight - 1.99).abs() < 1e-12);
        assert!((weighted_bce(y, weight, 0.3) - 1.548_608).abs() < 1e-6);
        let (w, y, weight) = label_and_weight(0.9, 0.99);
        assert!((w - 9.0).abs() < 1e-9);
        assert!((y - 0.899_092).abs() < 1e-6);
        assert!((weight - 9.91).abs() < 1e-9);
        assert!((weighted_bce(y, weight, 0.8) - 3.597_647).abs() < 1e-6);
        assert!((weighted_bce(1.0, 1.0 - 0.99, 0.3) - 0.012_040).abs() < 1e-6);
        assert!((0.99f64.powi(10) - 0.904_382).abs() < 1e-6);
    }
}
