//! A2C on CartPole-v0 (MODELS.md §2), after the A2C tutorial's `a2c_tf2_cartpole.py`: a
//! shared 64-64 ReLU trunk with a value head and a policy head, actions sampled in the graph
//! from the policy's logits, and one Adam step per batch of 64 consecutive environment steps
//! on the loss the Keras code builds:
//!
//! ```text
//! critic  = 0.5 · mean_t (DR_t − V(s_t))²
//! actor   = Σ_t A_t · (−log softmax(logits_t)[a_t])          (sum reduction, A_t as weights)
//! entropy = mean_t H_t,  H_t = −Σ_a p log clip(p, 1e-7, 1 − 1e-7),  p = softmax(logits_t)
//! loss    = critic + 1.0 · actor − 0.05 · entropy
//! ```
//!
//! with discounted returns `DR` bootstrapped from the value of the state after the batch and
//! advantages `A = DR − V_old` computed on the host ([`discounted_returns`], [`advantages`]),
//! as the tutorial does in NumPy. Stored rewards are 0 on the step that ends an episode and 1
//! otherwise. The graph is built once; a [`Session`] compiles the acting and the training
//! paths once each and reruns them.

use super::cartpole::{CartPole, NUM_ACTIONS, OBS_DIM, REWARD_THRESHOLD};
use crate::nn::{Activation, EPSILON, Initializer, Reduction};
use crate::train::{Adam, Optimizer};
use crate::{Backend, DType, Graph, GraphError, Result, Session, Tensor, Value};

/// The tutorial's hyperparameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Hidden units of each of the two trunk layers (64).
    pub hidden: usize,
    /// Environment steps per update (64).
    pub batch: usize,
    /// Discount γ (0.95).
    pub gamma: f64,
    /// Weight of the critic's mean squared error (0.5).
    pub critic_weight: f64,
    /// Weight of the actor's summed, advantage-weighted cross-entropy (1.0).
    pub actor_weight: f64,
    /// Weight of the mean entropy bonus (0.05).
    pub entropy_weight: f64,
    /// Adam with Keras' defaults (lr 1e-3, ε 1e-7).
    pub optimizer: Adam,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hidden: 64,
            batch: 64,
            gamma: 0.95,
            critic_weight: 0.5,
            actor_weight: 1.0,
            entropy_weight: 0.05,
            optimizer: Adam::default(),
        }
    }
}

/// Discounted returns bootstrapped from `next_value` (the value of the state after the last
/// step): `DR_T = next_value`, `DR_t = r_t + γ·DR_{t+1}·(1 − done_t)`, computed in f64 like
/// the tutorial's NumPy code. Errors when `rewards` and `dones` differ in length.
pub fn discounted_returns(
    rewards: &[f64],
    dones: &[bool],
    next_value: f64,
    gamma: f64,
) -> Result<Vec<f64>> {
    if rewards.len() != dones.len() {
        return Err(GraphError::invalid(format!(
            "a2c::discounted_returns: {} rewards but {} done flags; expected one of each per step",
            rewards.len(),
            dones.len()
        )));
    }
    let mut out = vec![0.0; rewards.len()];
    let mut next = next_value;
    for t in (0..rewards.len()).rev() {
        next = rewards[t] + gamma * next * if dones[t] { 0.0 } else { 1.0 };
        out[t] = next;
    }
    Ok(out)
}

/// Advantages `A_t = DR_t − V_old(s_t)`. Errors when the lengths differ.
pub fn advantages(returns: &[f64], values: &[f64]) -> Result<Vec<f64>> {
    if returns.len() != values.len() {
        return Err(GraphError::invalid(format!(
            "a2c::advantages: {} returns but {} values; expected the same length",
            returns.len(),
            values.len()
        )));
    }
    Ok(returns.iter().zip(values).map(|(r, v)| r - v).collect())
}

/// The entropy `−Σ p log clip(p, 1e-7, 1 − 1e-7)` of a probability vector, as the Keras
/// code's `categorical_crossentropy(probs, probs)` computes it (host reference for tests).
pub fn entropy(probs: &[f64]) -> f64 {
    -probs
        .iter()
        .map(|&p| p * p.clamp(EPSILON, 1.0 - EPSILON).ln())
        .sum::<f64>()
}

/// One dense layer's variables `<name>/W` and `<name>/b`.
#[derive(Clone)]
pub struct Layer {
    /// Kernel `[inputs, units]`.
    pub w: Tensor,
    /// Bias `[units]`.
    pub b: Tensor,
    /// The nonlinearity.
    pub activation: Activation,
}

impl Layer {
    /// Create the variables in scope `name` with the given kernel initializer and zero
    /// biases; the kernel's seed is `seed`, or derives from the graph seed when `None`
    /// (equal seeds give equal initial kernels, e.g. for target networks).
    pub fn new(
        g: &Graph,
        name: &str,
        (inputs, units): (usize, usize),
        activation: Activation,
        kernel_init: &Initializer,
        seed: Option<u64>,
    ) -> Result<Layer> {
        let _scope = g.scope(name);
        let w = g.variable(
            "W",
            &kernel_init.build(g, &[inputs, units], DType::F32, seed)?,
        )?;
        let b = g.variable(
            "b",
            &Initializer::Zeros.build(g, &[units], DType::F32, None)?,
        )?;
        Ok(Layer { w, b, activation })
    }

    /// `activation(x · W + b)` for `x` of shape `[batch, inputs]`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.activation.apply(&(x.matmul(&self.w)? + &self.b)?)
    }
}

/// The tutorial's network: `Dense(64, relu, he_normal)` twice, then a value head
/// `Dense(1)` and a policy head `Dense(2)` (Glorot-uniform kernels); all biases zero.
#[derive(Clone)]
pub struct Network {
    /// First trunk layer `dense1` (4 → 64, ReLU).
    pub dense1: Layer,
    /// Second trunk layer `dense2` (64 → 64, ReLU).
    pub dense2: Layer,
    /// Value head `value` (64 → 1).
    pub value: Layer,
    /// Policy head `policy_logits` (64 → 2).
    pub policy: Layer,
}

impl Network {
    /// Create the variables in `g` (seeds from the graph seed).
    pub fn new(g: &Graph, hidden: usize) -> Result<Network> {
        let he = Initializer::HeNormal;
        let glorot = Initializer::GlorotUniform;
        Ok(Network {
            dense1: Layer::new(g, "dense1", (OBS_DIM, hidden), Activation::Relu, &he, None)?,
            dense2: Layer::new(g, "dense2", (hidden, hidden), Activation::Relu, &he, None)?,
            value: Layer::new(g, "value", (hidden, 1), Activation::Linear, &glorot, None)?,
            policy: Layer::new(
                g,
                "policy_logits",
                (hidden, NUM_ACTIONS),
                Activation::Linear,
                &glorot,
                None,
            )?,
        })
    }

    /// `(V [batch, 1], logits [batch, 2])` of states `[batch, 4]`; every application shares
    /// the variables.
    pub fn apply(&self, states: &Tensor) -> Result<(Tensor, Tensor)> {
        let h = self.dense2.apply(&self.dense1.apply(states)?)?;
        Ok((self.value.apply(&h)?, self.policy.apply(&h)?))
    }
}

/// The whole graph: the acting path on one state and the training path on a batch.
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// The hyperparameters it was built with.
    pub config: Config,
    /// The variables.
    pub net: Network,
    /// One observation `[1, 4]` f32.
    pub obs: Tensor,
    /// The sampled action `[1, 1]` i64 (`categorical` on the policy's logits).
    pub action: Tensor,
    /// `V(obs)` `[1, 1]`.
    pub value: Tensor,
    /// The batch's states `[batch, 4]` f32.
    pub states: Tensor,
    /// The batch's actions `[batch]` i64.
    pub actions: Tensor,
    /// Discounted returns `[batch]` f32.
    pub returns: Tensor,
    /// Advantages `[batch]` f32 (constants).
    pub advantages: Tensor,
    /// `V(states)` `[batch, 1]` on the training path.
    pub batch_value: Tensor,
    /// The policy's logits `[batch, 2]` on the training path.
    pub batch_logits: Tensor,
    /// `0.5 · mean (DR − V)²`.
    pub critic_loss: Tensor,
    /// `Σ A · CE(a, logits)` (times the actor weight 1.0).
    pub actor_loss: Tensor,
    /// `mean H` over the batch (before its weight).
    pub entropy: Tensor,
    /// `critic + actor − 0.05 · entropy`.
    pub loss: Tensor,
    /// One Adam step on `loss`.
    pub train: Tensor,
}

impl Model {
    /// Build the graph; `seed` fixes the initializers and the action sampler.
    pub fn new(config: Config, seed: u64) -> Result<Model> {
        if config.batch == 0 || config.hidden == 0 {
            return Err(GraphError::invalid(format!(
                "a2c::Model::new: batch ({}) and hidden ({}) must be positive",
                config.batch, config.hidden
            )));
        }
        let g = Graph::new();
        g.set_seed(seed);
        let net = Network::new(&g, config.hidden)?;

        let obs = g.placeholder("obs", DType::F32, &[1, OBS_DIM])?;
        let (value, action) = {
            let _scope = g.scope("act");
            let (value, logits) = net.apply(&obs)?;
            (value, logits.categorical(1, None)?)
        };

        let b = config.batch;
        let states = g.placeholder("states", DType::F32, &[b, OBS_DIM])?;
        let actions = g.placeholder("actions", DType::I64, &[b])?;
        let returns = g.placeholder("returns", DType::F32, &[b])?;
        let advantages = g.placeholder("advantages", DType::F32, &[b])?;
        let (critic_loss, actor_loss, entropy, loss, batch_value, batch_logits) = {
            let _scope = g.scope("loss");
            let (v, logits) = net.apply(&states)?;
            // Keras: mean_squared_error(DR [b, 1], V [b, 1]) · 0.5, averaged over the batch.
            let critic = (v.mean_squared_error(
                &returns.reshape(&[b as i64, 1])?,
                None,
                Reduction::SumOverBatchSize,
            )? * config.critic_weight)?;
            // Keras: SparseCategoricalCrossentropy(from_logits, SUM) with sample_weight = A.
            let actor = (logits.sparse_softmax_cross_entropy(
                &actions,
                Some(&advantages.stop_gradient()?),
                Reduction::Sum,
            )? * config.actor_weight)?;
            // Keras: categorical_crossentropy(probs, probs), gradient through both.
            let p = logits.softmax(-1)?;
            let h = (&p * &p.clip(EPSILON, 1.0 - EPSILON)?.log()?)?
                .sum(&[-1], false)?
                .neg()?;
            let entropy = h.mean_all()?;
            let loss = ((&critic + &actor)? - &(&entropy * config.entropy_weight)?)?;
            (critic, actor, entropy, loss, v, logits)
        };
        let train = config.optimizer.minimize(&loss, None)?;
        Ok(Model {
            graph: g,
            config,
            net,
            obs,
            action,
            value,
            states,
            actions,
            returns,
            advantages,
            batch_value,
            batch_logits,
            critic_loss,
            actor_loss,
            entropy,
            loss,
            train,
        })
    }
}

/// The losses of one update (before the step).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Losses {
    /// The critic term.
    pub critic: f32,
    /// The actor term.
    pub actor: f32,
    /// The mean entropy.
    pub entropy: f32,
    /// The total loss.
    pub total: f32,
}

/// The agent: the model, its session, the environment and the episode bookkeeping.
pub struct Agent {
    /// The graph and its tensors.
    pub model: Model,
    /// The session holding the variables and the compiled executables.
    pub sess: Session,
    env: CartPole,
    state: [f64; 4],
    episode_return: f64,
    /// Returns of the finished episodes, in order.
    pub episode_returns: Vec<f64>,
    /// Environment steps taken.
    pub env_steps: usize,
    // Per-batch buffers, reused.
    states: Vec<f32>,
    actions: Vec<i64>,
    rewards: Vec<f64>,
    dones: Vec<bool>,
    values: Vec<f64>,
}

impl Agent {
    /// A fresh agent: the graph from `config` with `seed`, the environment seeded from
    /// `seed` too (an independent stream), and the first episode started.
    pub fn new(config: Config, seed: u64, backend: Backend) -> Result<Agent> {
        let model = Model::new(config, seed)?;
        let sess = Session::with_backend(&model.graph, backend);
        let mut env = CartPole::new(env_seed(seed));
        let state = env.reset();
        let b = model.config.batch;
        Ok(Agent {
            model,
            sess,
            env,
            state,
            episode_return: 0.0,
            episode_returns: Vec::new(),
            env_steps: 0,
            states: Vec::with_capacity(b * OBS_DIM),
            actions: Vec::with_capacity(b),
            rewards: Vec::with_capacity(b),
            dones: Vec::with_capacity(b),
            values: Vec::with_capacity(b),
        })
    }

    /// Sample an action for `state` and return it with `V(state)`.
    pub fn act(&mut self, state: &[f64; 4]) -> Result<(usize, f64)> {
        let obs = Value::from_vec(&[1, OBS_DIM], state.map(|x| x as f32).to_vec())?;
        let out = self.sess.run(
            &[(&self.model.obs, obs)],
            &[&self.model.action, &self.model.value],
        )?;
        let action = first(out[0].as_i64()?.iter())?;
        let value = first(out[1].as_f32()?.iter())?;
        let action = usize::try_from(action)
            .ok()
            .filter(|&a| a < NUM_ACTIONS)
            .ok_or_else(|| {
                GraphError::invalid(format!("a2c: the sampler returned action {action}"))
            })?;
        Ok((action, value as f64))
    }

    /// Collect one batch of `config.batch` steps (crossing episode boundaries), then take one
    /// Adam step on it. Returns the losses before the step.
    pub fn train_batch(&mut self) -> Result<Losses> {
        self.states.clear();
        self.actions.clear();
        self.rewards.clear();
        self.dones.clear();
        self.values.clear();
        for _ in 0..self.model.config.batch {
            let (action, value) = self.act(&self.state.clone())?;
            let step = self.env.step(action)?;
            self.states.extend(self.state.iter().map(|&x| x as f32));
            self.actions.push(action as i64);
            self.values.push(value);
            self.dones.push(step.done);
            self.episode_return += step.reward;
            self.env_steps += 1;
            if step.done {
                // The tutorial stores 0 for the step that ends an episode.
                self.rewards.push(0.0);
                self.episode_returns.push(self.episode_return);
                self.episode_return = 0.0;
                self.state = self.env.reset();
            } else {
                self.rewards.push(1.0);
                self.state = step.state;
            }
        }
        let (_, next_value) = self.act(&self.state.clone())?;
        let returns = discounted_returns(
            &self.rewards,
            &self.dones,
            next_value,
            self.model.config.gamma,
        )?;
        let adv = advantages(&returns, &self.values)?;
        self.update(&returns, &adv)
    }

    fn update(&mut self, returns: &[f64], adv: &[f64]) -> Result<Losses> {
        let b = self.model.config.batch;
        let m = &self.model;
        let f32s = |v: &[f64]| Value::from_vec(&[b], v.iter().map(|&x| x as f32).collect());
        let out = self.sess.run(
            &[
                (
                    &m.states,
                    Value::from_vec(&[b, OBS_DIM], self.states.clone())?,
                ),
                (&m.actions, Value::from_vec(&[b], self.actions.clone())?),
                (&m.returns, f32s(returns)?),
                (&m.advantages, f32s(adv)?),
            ],
            &[&m.critic_loss, &m.actor_loss, &m.entropy, &m.loss, &m.train],
        )?;
        let s = |i: usize| -> Result<f32> { first(out[i].as_f32()?.iter()) };
        Ok(Losses {
            critic: s(0)?,
            actor: s(1)?,
            entropy: s(2)?,
            total: s(3)?,
        })
    }

    /// Train until `max_steps` environment steps have been taken (whole batches) or, when
    /// `stop_when_solved`, until CartPole-v0 is solved. `on_batch` sees the agent after each
    /// update. Returns the first solve, if any.
    pub fn train(
        &mut self,
        max_steps: usize,
        stop_when_solved: bool,
        mut on_batch: impl FnMut(&Agent, &Losses),
    ) -> Result<Option<Solved>> {
        let mut solved = None;
        while self.env_steps < max_steps {
            let before = self.episode_returns.len();
            let losses = self.train_batch()?;
            if solved.is_none() {
                for end in before + 1..=self.episode_returns.len() {
                    if let Some(mean) = window_mean(&self.episode_returns[..end], 100)
                        && mean >= REWARD_THRESHOLD
                    {
                        solved = Some(Solved {
                            episode: end,
                            env_steps: self.env_steps,
                            mean,
                        });
                        break;
                    }
                }
            }
            on_batch(self, &losses);
            if stop_when_solved && solved.is_some() {
                break;
            }
        }
        Ok(solved)
    }
}

/// When CartPole-v0 was first solved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Solved {
    /// The episode (1-based) completing the first 100-episode window with mean ≥ 195.
    pub episode: usize,
    /// Environment steps taken by the end of the update batch containing that episode.
    pub env_steps: usize,
    /// That window's mean return.
    pub mean: f64,
}

/// The mean of the last `n` values, or `None` with fewer than `n`.
pub fn window_mean(values: &[f64], n: usize) -> Option<f64> {
    (n > 0 && values.len() >= n).then(|| values[values.len() - n..].iter().sum::<f64>() / n as f64)
}

/// The environment's seed for a run seed (a stream independent of the graph's).
pub fn env_seed(seed: u64) -> u64 {
    seed ^ 0x6361_7274_706f_6c65 // "cartpole"
}

/// The mean return of a uniformly random policy over `episodes` episodes (the baseline the
/// CI smoke test must beat; ≈ 22).
pub fn random_policy_return(episodes: usize, seed: u64) -> Result<f64> {
    let mut env = CartPole::new(env_seed(seed));
    let mut rng = super::cartpole::SplitMix64::new(seed);
    let mut total = 0.0;
    for _ in 0..episodes {
        env.reset();
        loop {
            let step = env.step(rng.below(NUM_ACTIONS))?;
            total += step.reward;
            if step.done {
                break;
            }
        }
    }
    Ok(total / episodes.max(1) as f64)
}

fn first<'a, T: Copy + 'a>(mut it: impl Iterator<Item = &'a T>) -> Result<T> {
    it.next()
        .copied()
        .ok_or_else(|| GraphError::invalid("a2c: expected a value, got an empty tensor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_md_returns() {
        let dr = discounted_returns(&[1.0, 1.0, 1.0], &[false; 3], 10.0, 0.95).unwrap();
        for (a, b) in dr.iter().zip([11.42625, 10.975, 10.5]) {
            assert!((a - b).abs() < 1e-12, "{dr:?}");
        }
        let dr = discounted_returns(&[1.0, 1.0, 0.0], &[false, false, true], 5.0, 0.95).unwrap();
        assert_eq!(dr, vec![1.95, 1.0, 0.0]);
        let adv = advantages(&dr, &[0.5, 0.5, 0.5]).unwrap();
        assert_eq!(adv, vec![1.45, 0.5, -0.5]);
        assert!(discounted_returns(&[1.0], &[], 0.0, 0.9).is_err());
        assert!(advantages(&[1.0], &[]).is_err());
    }

    #[test]
    #[allow(clippy::approx_constant)] // MODELS.md's figures, to six places
    fn models_md_entropy() {
        assert!((entropy(&[0.1, 0.9]) - 0.325_083).abs() < 1e-6);
        assert!((entropy(&[0.5, 0.5]) - 0.693_147).abs() < 1e-6);
        assert!((-(0.9f64.ln()) - 0.105_361).abs() < 1e-6);
    }

    #[test]
    fn window_means() {
        assert_eq!(window_mean(&[1.0, 2.0], 3), None);
        assert_eq!(window_mean(&[1.0, 2.0, 4.0], 2), Some(3.0));
    }
}
