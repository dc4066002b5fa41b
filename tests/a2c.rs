//! A2C on CartPole-v0 (MODELS.md §2): the graph's losses against a host computation of the
//! Keras reductions, the compiled backend against the interpreter on the first updates, and a
//! short training run that must beat a random policy by MODELS.md's margin (3×). The full
//! runs (300k steps, 3 seeds) are `cargo run --release --example a2c_cartpole`.

use flumen::models::a2c::random_policy_return;
use flumen::models::a2c::{Agent, Config, Model, discounted_returns, entropy, window_mean};
use flumen::models::cartpole::{CartPole, OBS_DIM};
use flumen::{Backend, Session, Value};

/// The losses fetched from the graph equal the Keras reductions computed on the host from
/// the fetched values and logits.
#[test]
fn losses_match_the_keras_reductions() {
    let config = Config::default();
    let b = config.batch;
    let model = Model::new(config.clone(), 11).unwrap();
    let mut sess = Session::new(&model.graph);
    let mut env = CartPole::new(5);
    let mut states = Vec::new();
    let mut s = env.reset();
    let mut actions = Vec::new();
    let mut rewards = Vec::new();
    let mut dones = Vec::new();
    for t in 0..b {
        let a = (t * 7 / 3) % 2;
        states.extend(s.iter().map(|&x| x as f32));
        let step = env.step(a).unwrap();
        actions.push(a as i64);
        dones.push(step.done);
        rewards.push(if step.done { 0.0 } else { 1.0 });
        s = if step.done { env.reset() } else { step.state };
    }
    let returns = discounted_returns(&rewards, &dones, 3.0, config.gamma).unwrap();
    let adv: Vec<f64> = returns
        .iter()
        .enumerate()
        .map(|(i, r)| r - 0.1 * i as f64)
        .collect();
    let f32s = |v: &[f64]| Value::from_vec(&[b], v.iter().map(|&x| x as f32).collect()).unwrap();
    let out = sess
        .run(
            &[
                (
                    &model.states,
                    Value::from_vec(&[b, OBS_DIM], states).unwrap(),
                ),
                (
                    &model.actions,
                    Value::from_vec(&[b], actions.clone()).unwrap(),
                ),
                (&model.returns, f32s(&returns)),
                (&model.advantages, f32s(&adv)),
            ],
            &[
                &model.batch_value,
                &model.batch_logits,
                &model.critic_loss,
                &model.actor_loss,
                &model.entropy,
                &model.loss,
            ],
        )
        .unwrap();
    let v: Vec<f64> = out[0].to_f64_vec();
    let logits: Vec<f64> = out[1].to_f64_vec();
    let got: Vec<f64> = out[2..].iter().map(|x| x.to_f64_vec()[0]).collect();
    let (mut critic, mut actor, mut h) = (0.0, 0.0, 0.0);
    for t in 0..b {
        let r = returns[t] as f32 as f64;
        critic += (r - v[t]).powi(2);
        let (l0, l1) = (logits[2 * t], logits[2 * t + 1]);
        let m = l0.max(l1);
        let lse = m + ((l0 - m).exp() + (l1 - m).exp()).ln();
        let logp = [l0 - lse, l1 - lse];
        actor += (adv[t] as f32 as f64) * -logp[actions[t] as usize];
        h += entropy(&[logp[0].exp(), logp[1].exp()]);
    }
    let critic = 0.5 * critic / b as f64;
    let h = h / b as f64;
    let want = [critic, actor, h, critic + actor - 0.05 * h];
    for (name, (g, w)) in ["critic", "actor", "entropy", "total"]
        .iter()
        .zip(got.iter().zip(want))
    {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(1.0),
            "{name}: graph {g}, host {w}"
        );
    }
}

/// With the same seed, the compiled backend and the interpreter take the same actions and
/// compute the same losses over the first updates (before rounding differences could flip a
/// sampled action).
#[test]
fn compiled_matches_interpreter() {
    let mut compiled = Agent::new(Config::default(), 3, Backend::Compiled).unwrap();
    let mut interp = Agent::new(Config::default(), 3, Backend::Interpreter).unwrap();
    for _ in 0..4 {
        let a = compiled.train_batch().unwrap();
        let b = interp.train_batch().unwrap();
        for (x, y) in [
            (a.critic, b.critic),
            (a.actor, b.actor),
            (a.entropy, b.entropy),
            (a.total, b.total),
        ] {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }
    assert_eq!(compiled.episode_returns, interp.episode_returns);
}

/// MODELS.md's CI smoke: after 50k env steps the mean return of the last 100 episodes is
/// more than 3× a random policy's (≈ 22).
#[test]
fn short_run_beats_random_policy() {
    let random = random_policy_return(1000, 0).unwrap();
    assert!(
        (18.0..26.0).contains(&random),
        "random policy mean {random}"
    );
    let mut agent = Agent::new(Config::default(), 0, Backend::Compiled).unwrap();
    agent.train(50_000, false, |_, _| {}).unwrap();
    let last = window_mean(&agent.episode_returns, 100).unwrap();
    assert!(
        last > 3.0 * random,
        "last-100 mean {last} after {} steps is not above 3 × random ({random})",
        agent.env_steps
    );
}
