//! The RCE agent: environment interaction, replay, gradient steps and greedy evaluation.

use super::*;
use crate::models::cartpole::SplitMix64;
use crate::{Backend, GraphError, Result, Session, Value};

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
    /// The replay (a stream of frames with episode boundaries).
    pub replay: FrameReplay,
    /// The success examples.
    pub success: Vec<[f32; 2]>,
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
        let replay = FrameReplay::new(config.replay_capacity, config.n_step.max(2), config.future)?;
        let success = success_examples(config.success_examples, seed ^ 0x5375_6363_6573_7321);
        if success.is_empty() {
            return Err(GraphError::invalid(
                "rce::Agent::new: at least one success example is needed",
            ));
        }
        let model = Model::new(config, seed)?;
        let sess = Session::with_backend(&model.graph, backend);
        let mut env = PointMass::new(seed ^ 0x706f_696e_746d_6173);
        env.reset();
        Ok(Agent {
            model,
            sess,
            env,
            rng: SplitMix64::new(seed ^ 0x7265_706c_6179_2121),
            replay,
            success,
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
        self.replay.push_step(to_f32(state), to_f32(action));
        if done {
            self.replay.push_final(to_f32(next));
            self.env.reset();
        }
        if self.env_steps < self.model.config.initial_random_steps || !self.replay.has_transition()
        {
            return Ok(None);
        }
        self.train_step().map(Some)
    }

    /// One gradient step on a fresh batch, in `rce_agent.py`'s order: the critics' Adam step,
    /// then the actor's Adam step scored by the updated critics, then the Polyak update of the
    /// targets toward the updated critics. Each is its own session run (a run reads every
    /// variable as it was when the run started), so nothing lags. The statistics are taken
    /// before the respective step.
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
        let states = col(|t| t.s)?;
        let out = self.sess.run(
            &[
                (&m.s, states.clone()),
                (&m.a, col(|t| t.a)?),
                (&m.s_next, col(|t| t.next)?),
                (&m.s_nth, col(|t| t.nth)?),
                (&m.s_success, Value::from_vec(&[b, DIM], success)?),
            ],
            &[
                &m.critic_loss,
                &m.success_score,
                &m.replay_score,
                &m.critic_step,
            ],
        )?;
        let actor = self
            .sess
            .run(&[(&m.s, states)], &[&m.actor_loss, &m.actor_step])?;
        self.sess.run(&[], &[&m.target_update])?;
        self.grad_steps += 1;
        let s = |i: usize| -> Result<f32> {
            out[i]
                .as_f32()?
                .iter()
                .next()
                .copied()
                .ok_or_else(|| GraphError::invalid("rce: empty loss"))
        };
        let actor_loss = actor[0]
            .as_f32()?
            .iter()
            .next()
            .copied()
            .ok_or_else(|| GraphError::invalid("rce: empty loss"))?;
        Ok(StepStats {
            critic_loss: s(0)?,
            actor_loss,
            success_score: s(1)?,
            replay_score: s(2)?,
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

fn to_f32(s: [f64; 2]) -> [f32; 2] {
    [s[0] as f32, s[1] as f32]
}
