//! The RCE graph: twin classifier critics with Polyak targets, the tanh-Normal actor, the
//! losses and the update ops.

use super::{Config, DIM, Mlp, critic_loss, tanh_normal_log_prob};
use crate::train::{Adam, Optimizer, ema_update};
use crate::{DType, Graph, GraphError, Result, Tensor};

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
    /// Replay future states `[B, 2]` (`s_{t+n−1}` of the original's window, or `s_{t+n}`
    /// clamped; see [`super::FutureSampling`]).
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
    /// The critics' Adam step on [`Model::critic_loss`] (run first).
    pub critic_step: Tensor,
    /// The actor's Adam step on [`Model::actor_loss`] (run second, with the updated critics).
    pub actor_step: Tensor,
    /// The Polyak update of the target critics (run last, toward the updated critics).
    pub target_update: Tensor,
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
        let target_update = ema_update(&refs(&target_vars), &refs(&critic_vars), config.tau)?;

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
            critic_step,
            actor_step,
            target_update,
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

fn refs(v: &[Tensor]) -> Vec<&Tensor> {
    v.iter().collect()
}
