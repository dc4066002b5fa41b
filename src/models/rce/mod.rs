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
//!   (n = 10) and `B` success examples with the labels and weights of [`label_and_weight`]:
//!   `C̄_i = (C̄_i(s_{t+1}, a') + γⁿ·C̄_i(s_{t+n}, a''))/2`, `C' = min(C̄_1, C̄_2)`,
//!   `w = C'/(1 − C')`, `y = γw/(γw + 1)`; labels `[y; 1]`, weights `[1 + γw; 1 − γ]`;
//!   the loss is `0.5 · Σ weight·(BCE(label, C_1) + BCE(label, C_2)) / 2B` with Keras' BCE on
//!   probabilities clipped to `[1e-7, 1 − 1e-7]`.
//! - Actor: a tanh-Normal policy, `a = tanh(μ + σ·ε)` with `σ = 1e-3 + softplus(raw)` and
//!   `ε ~ N(0, 1)` drawn in the graph (reparameterised), with its exact log-density
//!   ([`tanh_normal_log_prob`]); loss `mean_s[α·log π(a|s) − min(C_1, C_2)(s, a)]`, α = 1e-4.
//! - One environment step and one gradient step (critics, actor and targets in one session
//!   run) per iteration after the initial random steps; a [`ReplayBuffer`] of n-step
//!   transitions.
//!
//! Within one run every update reads the variables' values at the start of the run (TF1
//! semantics), so the targets move toward the critics as they were before that step's update
//! and the actor is scored by the pre-update critics: a lag of one gradient step against the
//! original's sequential updates.

use super::a2c::Layer;
use super::cartpole::SplitMix64;
use crate::nn::{Activation, EPSILON, Initializer, Reduction};
use crate::train::{Adam, Optimizer, ema_update};
use crate::{Backend, DType, Graph, GraphError, Result, Session, Tensor, Value};

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

/// One n-step transition `(s_t, a_t, s_{t+1}, s_{t+n})`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// `s_t`
    pub s: [f32; 2],
    /// `a_t`
    pub a: [f32; 2],
    /// `s_{t+1}`
    pub next: [f32; 2],
    /// `s_{t+n}`, or the episode's last state when the episode ends sooner.
    pub nth: [f32; 2],
}

/// The n-step transitions of one finished episode with states `s_0 … s_T` and actions
/// `a_0 … a_{T−1}`; `s_{t+n}` is clamped to `s_T`. Errors unless there is exactly one more
/// state than actions, or when `n == 0`.
pub fn episode_transitions(
    states: &[[f32; 2]],
    actions: &[[f32; 2]],
    n: usize,
) -> Result<Vec<Transition>> {
    if states.len() != actions.len() + 1 || n == 0 {
        return Err(GraphError::invalid(format!(
            "rce::episode_transitions: {} states, {} actions, n = {n}; expected one more \
             state than actions and n >= 1",
            states.len(),
            actions.len()
        )));
    }
    let last = actions.len();
    Ok((0..last)
        .map(|t| Transition {
            s: states[t],
            a: actions[t],
            next: states[t + 1],
            nth: states[(t + n).min(last)],
        })
        .collect())
}

/// A FIFO replay buffer of n-step transitions with uniform sampling (with replacement).
#[derive(Clone, Debug)]
pub struct ReplayBuffer {
    data: Vec<Transition>,
    capacity: usize,
    next: usize,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` (> 0) transitions.
    pub fn new(capacity: usize) -> Result<ReplayBuffer> {
        if capacity == 0 {
            return Err(GraphError::invalid(
                "rce::ReplayBuffer::new: capacity must be positive",
            ));
        }
        Ok(ReplayBuffer {
            data: Vec::new(),
            capacity,
            next: 0,
        })
    }

    /// Stored transitions.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Add a transition, evicting the oldest when full.
    pub fn push(&mut self, t: Transition) {
        if self.data.len() < self.capacity {
            self.data.push(t);
        } else {
            self.data[self.next] = t;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    /// `k` transitions drawn uniformly with replacement; errors when empty.
    pub fn sample(&self, rng: &mut SplitMix64, k: usize) -> Result<Vec<Transition>> {
        if self.data.is_empty() {
            return Err(GraphError::invalid(
                "rce::ReplayBuffer::sample: the buffer is empty",
            ));
        }
        Ok((0..k)
            .map(|_| self.data[rng.below(self.data.len())])
            .collect())
    }
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

/// The whole RCE graph.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// The hyperparameters.
    pub config: Config,
    /// Online critics.
    pub critics: [Mlp; 2],
    /// Target critics (Polyak averages of the critics).
    pub targets: [Mlp; 2],
    /// The actor (outputs mean and raw std per action dimension).
    pub actor: Mlp,
    /// Replay `s_t` `[B, 2]`.
    pub s: Tensor,
    /// Replay `a_t` `[B, 2]`.
    pub a: Tensor,
    /// Replay `s_{t+1}` `[B, 2]`.
    pub s_next: Tensor,
    /// Replay `s_{t+n}` `[B, 2]`.
    pub s_nth: Tensor,
    /// Success examples `[B, 2]`.
    pub s_success: Tensor,
    /// The critic loss.
    pub critic_loss: Tensor,
    /// The actor loss.
    pub actor_loss: Tensor,
    /// Mean online classifier value on the success examples.
    pub success_score: Tensor,
    /// Mean online classifier value on the replay pairs.
    pub replay_score: Tensor,
    /// Critic step, actor step and target update in one op.
    pub train: Tensor,
    /// One observation `[1, 2]`.
    pub obs: Tensor,
    /// A sampled action for `obs` `[1, 2]`.
    pub sample: Tensor,
    /// The greedy action `tanh(mean)` for `obs` `[1, 2]`.
    pub greedy: Tensor,
}

impl Model {
    /// Build the graph for `config`; `seed` fixes every initializer and random op.
    pub fn new(config: Config, seed: u64) -> Result<Model> {
        if config.batch == 0 || config.hidden == 0 || config.n_step == 0 {
            return Err(GraphError::invalid(format!(
                "rce::Model::new: batch ({}), hidden ({}) and n_step ({}) must be positive",
                config.batch, config.hidden, config.n_step
            )));
        }
        let g = Graph::new();
        g.set_seed(seed);
        let (h, b) = (config.hidden, config.batch);
        let seed_of = |k: u64| seed.wrapping_mul(97).wrapping_add(k * 1000);
        let critic_sizes = [2 * DIM, h, h, 1];
        let critics = [
            Mlp::new(&g, "critic1", critic_sizes, seed_of(1))?,
            Mlp::new(&g, "critic2", critic_sizes, seed_of(2))?,
        ];
        let targets = [
            Mlp::new(&g, "target_critic1", critic_sizes, seed_of(1))?,
            Mlp::new(&g, "target_critic2", critic_sizes, seed_of(2))?,
        ];
        let actor = Mlp::new(&g, "actor", [DIM, h, h, 2 * DIM], seed_of(3))?;

        let ph = |name: &str, rows: usize| g.placeholder(name, DType::F32, &[rows, DIM]);
        let (s, a, s_next, s_nth, s_success) = (
            ph("s", b)?,
            ph("a", b)?,
            ph("s_next", b)?,
            ph("s_nth", b)?,
            ph("s_success", b)?,
        );
        let policy = |x: &Tensor| -> Result<(Tensor, Tensor, Tensor)> {
            let out = actor.apply(x)?;
            let parts = out.split(2, 1)?;
            let std = (parts[1].softplus()? + 1e-3)?;
            let noise = g.random_normal(&[x.shape()[0], DIM], 0.0, 1.0, DType::F32, None)?;
            let u = (&parts[0] + &(&std * &noise)?)?;
            let logp = tanh_normal_log_prob(&u, &parts[0], &std)?;
            Ok((u.tanh()?, logp, parts[0].tanh()?))
        };

        let (critic_loss, success_score, replay_score) = {
            let _scope = g.scope("critic_loss");
            let a_next = policy(&s_next)?.0.stop_gradient()?;
            let a_nth = policy(&s_nth)?.0.stop_gradient()?;
            let a_success = policy(&s_success)?.0.stop_gradient()?;
            let gn = config.gamma.powi(config.n_step as i32);
            let target = |t: &Mlp| -> Result<Tensor> {
                let c1 = t.classify(&s_next, &a_next)?;
                let cn = t.classify(&s_nth, &a_nth)?;
                (&c1 + &(&cn * gn)?)? * 0.5
            };
            let c_target = target(&targets[0])?.minimum(&target(&targets[1])?)?;
            let p1 = critics[0].classify(&s, &a)?;
            let p2 = critics[1].classify(&s, &a)?;
            let q1 = critics[0].classify(&s_success, &a_success)?;
            let q2 = critics[1].classify(&s_success, &a_success)?;
            let (loss, _, _) = critic_loss(
                &c_target,
                &p1,
                &p2,
                &q1,
                &q2,
                config.gamma,
                config.critic_loss_weight,
            )?;
            (loss, q1.mean_all()?, p1.mean_all()?)
        };
        let actor_loss = {
            let _scope = g.scope("actor_loss");
            let (act, logp, _) = policy(&s)?;
            let c = critics[0]
                .classify(&s, &act)?
                .minimum(&critics[1].classify(&s, &act)?)?
                .reshape(&[-1])?;
            ((&logp * config.alpha)? - &c)?.mean_all()?
        };
        let critic_vars: Vec<Tensor> = critics.iter().flat_map(Mlp::variables).collect();
        let target_vars: Vec<Tensor> = targets.iter().flat_map(Mlp::variables).collect();
        let actor_vars = actor.variables();
        let critic_step =
            Adam::new(config.critic_lr).minimize(&critic_loss, Some(&refs(&critic_vars)))?;
        let actor_step =
            Adam::new(config.actor_lr).minimize(&actor_loss, Some(&refs(&actor_vars)))?;
        let polyak = ema_update(&refs(&target_vars), &refs(&critic_vars), config.tau)?;
        let train = g.group("train", &[&critic_step, &actor_step, &polyak])?;

        let obs = g.placeholder("obs", DType::F32, &[1, DIM])?;
        let (sample, greedy) = {
            let _scope = g.scope("act");
            let (sample, _, greedy) = policy(&obs)?;
            (sample, greedy)
        };
        Ok(Model {
            graph: g,
            config,
            critics,
            targets,
            actor,
            s,
            a,
            s_next,
            s_nth,
            s_success,
            critic_loss,
            actor_loss,
            success_score,
            replay_score,
            train,
            obs,
            sample,
            greedy,
        })
    }

    /// `min(C_1, C_2)(s, tanh(mean(s)))` `[n]` on states `[n, 2]` (a new path in the graph;
    /// build it once per grid size).
    pub fn classifier_on(&self, states: &Tensor) -> Result<Tensor> {
        let _scope = self.graph.scope("classifier");
        let out = self.actor.apply(states)?;
        let a = out.split(2, 1)?[0].tanh()?;
        self.critics[0]
            .classify(states, &a)?
            .minimum(&self.critics[1].classify(states, &a)?)?
            .reshape(&[-1])
    }
}

/// The losses and scores of one gradient step (before the step).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// The critic loss.
    pub critic_loss: f32,
    /// The actor loss.
    pub actor_loss: f32,
    /// Mean `C_1` on the success examples.
    pub success_score: f32,
    /// Mean `C_1` on the replay pairs.
    pub replay_score: f32,
}

/// The agent: graph, session, environment, replay and success examples.
pub struct Agent {
    /// The graph and its tensors.
    pub model: Model,
    /// The session.
    pub sess: Session,
    env: PointMass,
    rng: SplitMix64,
    /// The replay buffer.
    pub replay: ReplayBuffer,
    /// The success examples.
    pub success: Vec<[f32; 2]>,
    episode_states: Vec<[f32; 2]>,
    episode_actions: Vec<[f32; 2]>,
    /// Environment steps taken.
    pub env_steps: usize,
    /// Gradient steps taken.
    pub grad_steps: usize,
    seed: u64,
}

impl Agent {
    /// A fresh agent for `config` and `seed` (graph, environment, success examples and replay
    /// sampling all derive from it).
    pub fn new(config: Config, seed: u64, backend: Backend) -> Result<Agent> {
        let replay = ReplayBuffer::new(config.replay_capacity)?;
        let success = success_examples(config.success_examples, seed ^ 0x5375_6363_6573_7321);
        if success.is_empty() {
            return Err(GraphError::invalid(
                "rce::Agent::new: at least one success example is needed",
            ));
        }
        let model = Model::new(config, seed)?;
        let sess = Session::with_backend(&model.graph, backend);
        let mut env = PointMass::new(seed ^ 0x706f_696e_746d_6173);
        let s0 = env.reset();
        Ok(Agent {
            model,
            sess,
            env,
            rng: SplitMix64::new(seed ^ 0x7265_706c_6179_2121),
            replay,
            success,
            episode_states: vec![to_f32(s0)],
            episode_actions: Vec::new(),
            env_steps: 0,
            grad_steps: 0,
            seed,
        })
    }

    /// The policy's action for `state`: sampled, or greedy (`tanh(mean)`).
    pub fn act(&mut self, state: [f64; 2], greedy: bool) -> Result<[f64; 2]> {
        let obs = Value::from_vec(&[1, DIM], to_f32(state).to_vec())?;
        let fetch = if greedy {
            &self.model.greedy
        } else {
            &self.model.sample
        };
        let out = self.sess.run(&[(&self.model.obs, obs)], &[fetch])?;
        let v = out[0].as_f32()?;
        let a: Vec<f64> = v.iter().map(|&x| (x as f64).clamp(-1.0, 1.0)).collect();
        match a.as_slice() {
            [x, y] if x.is_finite() && y.is_finite() => Ok([*x, *y]),
            _ => Err(GraphError::invalid(format!(
                "rce: the actor produced a non-finite action {a:?}"
            ))),
        }
    }

    /// One iteration: one environment step (uniformly random during the initial steps, else
    /// sampled from the policy), then, once learning has started, one gradient step. Returns
    /// the gradient step's statistics, if one was taken.
    pub fn iterate(&mut self) -> Result<Option<StepStats>> {
        let state = self.env.state();
        let action = if self.env_steps < self.model.config.initial_random_steps {
            [
                self.rng.uniform_in(-1.0, 1.0),
                self.rng.uniform_in(-1.0, 1.0),
            ]
        } else {
            self.act(state, false)?
        };
        let (next, done) = self.env.step(action)?;
        self.env_steps += 1;
        self.episode_actions.push(to_f32(action));
        self.episode_states.push(to_f32(next));
        if done {
            let ts = episode_transitions(
                &self.episode_states,
                &self.episode_actions,
                self.model.config.n_step,
            )?;
            ts.into_iter().for_each(|t| self.replay.push(t));
            self.episode_states = vec![to_f32(self.env.reset())];
            self.episode_actions.clear();
        }
        if self.env_steps < self.model.config.initial_random_steps || self.replay.is_empty() {
            return Ok(None);
        }
        self.train_step().map(Some)
    }

    /// One gradient step on a fresh batch.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let b = self.model.config.batch;
        let batch = self.replay.sample(&mut self.rng, b)?;
        let col = |f: fn(&Transition) -> [f32; 2]| {
            Value::from_vec(&[b, DIM], batch.iter().flat_map(f).collect())
        };
        let success: Vec<f32> = (0..b)
            .flat_map(|_| self.success[self.rng.below(self.success.len())])
            .collect();
        let m = &self.model;
        let out = self.sess.run(
            &[
                (&m.s, col(|t| t.s)?),
                (&m.a, col(|t| t.a)?),
                (&m.s_next, col(|t| t.next)?),
                (&m.s_nth, col(|t| t.nth)?),
                (&m.s_success, Value::from_vec(&[b, DIM], success)?),
            ],
            &[
                &m.critic_loss,
                &m.actor_loss,
                &m.success_score,
                &m.replay_score,
                &m.train,
            ],
        )?;
        self.grad_steps += 1;
        let s = |i: usize| -> Result<f32> {
            out[i]
                .as_f32()?
                .iter()
                .next()
                .copied()
                .ok_or_else(|| GraphError::invalid("rce: empty loss"))
        };
        Ok(StepStats {
            critic_loss: s(0)?,
            actor_loss: s(1)?,
            success_score: s(2)?,
            replay_score: s(3)?,
        })
    }

    /// The greedy policy on `episodes` evaluation episodes (start states from their own
    /// seeded stream, the same for every call with the same `round`).
    pub fn evaluate(&mut self, episodes: usize, round: u64) -> Result<Evaluation> {
        let mut env = PointMass::new(self.seed ^ 0x6576_616c ^ round.wrapping_mul(0x9e37));
        let (mut wins, mut reached, mut distance) = (0, 0, 0.0);
        for _ in 0..episodes {
            let mut s = env.reset();
            let mut touched = is_success(s);
            loop {
                let (next, done) = env.step(self.act(s, true)?)?;
                s = next;
                touched |= is_success(s);
                if done {
                    break;
                }
            }
            wins += usize::from(is_success(s));
            reached += usize::from(touched);
            distance += (s[0] - GOAL[0]).hypot(s[1] - GOAL[1]);
        }
        let n = episodes.max(1) as f64;
        Ok(Evaluation {
            success: wins as f64 / n,
            reached: reached as f64 / n,
            final_distance: distance / n,
        })
    }
}

/// The greedy policy's evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Fraction of episodes whose last state is within 0.1 of the goal (the task's success).
    pub success: f64,
    /// Fraction of episodes that entered the goal disk at some step (a diagnostic).
    pub reached: f64,
    /// Mean distance of the last state from the goal.
    pub final_distance: f64,
}

fn refs(v: &[Tensor]) -> Vec<&Tensor> {
    v.iter().collect()
}

fn to_f32(s: [f64; 2]) -> [f32; 2] {
    [s[0] as f32, s[1] as f32]
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

    #[test]
    fn transitions_and_replay() {
        let states: Vec<[f32; 2]> = (0..6).map(|i| [i as f32, 0.0]).collect();
        let actions = vec![[0.5f32, 0.5]; 5];
        let ts = episode_transitions(&states, &actions, 3).unwrap();
        assert_eq!(ts.len(), 5);
        assert_eq!((ts[0].s[0], ts[0].next[0], ts[0].nth[0]), (0.0, 1.0, 3.0));
        assert_eq!((ts[4].s[0], ts[4].next[0], ts[4].nth[0]), (4.0, 5.0, 5.0));
        assert!(episode_transitions(&states, &actions[..4], 3).is_err());
        let mut rb = ReplayBuffer::new(3).unwrap();
        let mut rng = SplitMix64::new(0);
        assert!(rb.sample(&mut rng, 1).is_err());
        ts.iter().for_each(|&t| rb.push(t));
        assert_eq!(rb.len(), 3);
        let firsts: Vec<f32> = rb
            .sample(&mut rng, 50)
            .unwrap()
            .iter()
            .map(|t| t.s[0])
            .collect();
        assert!(
            firsts.iter().all(|&x| x >= 2.0),
            "evicted transitions sampled: {firsts:?}"
        );
        assert!(ReplayBuffer::new(0).is_err());
    }
}
