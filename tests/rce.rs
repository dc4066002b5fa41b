//! RCE (MODELS.md §7): the graph's critic loss on MODELS.md's worked numbers, the tanh-Normal
//! log-density against the host formula, the original's update order (targets follow the
//! critics as updated in the same step), and a short smoke run on the point mass (finite
//! losses, a classifier that scores the success examples above the replay pairs). The full
//! runs (50k steps, 3 seeds) are `cargo run --release --example rce_pointmass`.

use flumen::models::rce::{
    Agent, Config, critic_loss, label_and_weight, tanh_normal_log_prob, tanh_normal_log_prob_host,
    weighted_bce,
};
use flumen::{Backend, Graph, Session};
use ndarray::arr2;

#[test]
fn critic_loss_graph_matches_models_md() {
    let g = Graph::new();
    let c = |v: [[f32; 1]; 2]| g.constant(arr2(&v)).unwrap();
    // Replay rows: C' = 0.5 with p = 0.3, and C' = 0.9 with p = 0.8 (both critics alike);
    // success rows: p = 0.3.
    let c_target = c([[0.5], [0.9]]);
    let p = c([[0.3], [0.8]]);
    let q = c([[0.3], [0.3]]);
    let (loss, labels, weights) = critic_loss(&c_target, &p, &p, &q, &q, 0.99, 0.5).unwrap();
    let out = Session::new(&g)
        .run(&[], &[&loss, &labels, &weights])
        .unwrap();
    let labels = out[1].to_f64_vec();
    let weights = out[2].to_f64_vec();
    let want_labels = [0.497_487, 0.899_092, 1.0, 1.0];
    let want_weights = [1.99, 9.91, 0.01, 0.01];
    for i in 0..4 {
        assert!((labels[i] - want_labels[i]).abs() < 1e-5, "{labels:?}");
        assert!((weights[i] - want_weights[i]).abs() < 1e-5, "{weights:?}");
    }
    // Σ weight·BCE per critic: 1.548608 + 3.597647 + 2 × 0.012040; two critics, / 2B, × 0.5.
    let per_critic = 1.548_608 + 3.597_647 + 2.0 * 0.012_040;
    let want = 0.5 * 2.0 * per_critic / 4.0;
    let got = out[0].to_f64_vec()[0];
    assert!((got - want).abs() < 1e-5, "loss {got}, want {want}");
    // The host helpers agree with the same numbers.
    let (_, y, w) = label_and_weight(0.9, 0.99);
    assert!((weighted_bce(y, w, 0.8) - 3.597_647).abs() < 1e-6);
}

#[test]
fn tanh_normal_log_prob_matches_host() {
    let g = Graph::new();
    let u = [[0.5f32, -1.2], [2.0, 0.0]];
    let mean = [[0.0f32, -1.0], [1.5, 0.3]];
    let std = [[1.0f32, 0.2], [0.7, 1e-3 + 0.5]];
    let t = |v: [[f32; 2]; 2]| g.constant(arr2(&v)).unwrap();
    let lp = tanh_normal_log_prob(&t(u), &t(mean), &t(std)).unwrap();
    let got = Session::new(&g).run(&[], &[&lp]).unwrap()[0].to_f64_vec();
    for r in 0..2 {
        let f = |a: [f32; 2]| a.map(|x| x as f64);
        let want = tanh_normal_log_prob_host(&f(u[r]), &f(mean[r]), &f(std[r]));
        assert!(
            (got[r] - want).abs() < 1e-4,
            "row {r}: {} vs {want}",
            got[r]
        );
    }
    // One dimension by hand: N(0.5; 0, 1) and the tanh Jacobian at 0.5.
    let one = tanh_normal_log_prob_host(&[0.5], &[0.0], &[1.0]);
    assert!((one - (-1.043_939 + 0.240_229)).abs() < 1e-5, "{one}");
}

/// A short run: finite losses, actions in range, and a classifier that has learned to score
/// the success examples above the replay pairs.
#[test]
fn smoke_run_separates_success_examples() {
    let config = Config {
        hidden: 32,
        batch: 64,
        initial_random_steps: 500,
        ..Config::default()
    };
    let mut agent = Agent::new(config, 1, Backend::Compiled).unwrap();
    let mut stats = Vec::new();
    while agent.env_steps < 1500 {
        if let Some(s) = agent.iterate().unwrap() {
            stats.push(s);
        }
    }
    assert_eq!(agent.grad_steps, 1001);
    // 30 episodes of 50 steps, each closed by a boundary frame.
    assert_eq!(agent.replay.frames(), 1530);
    assert!(
        stats
            .iter()
            .all(|s| s.critic_loss.is_finite() && s.actor_loss.is_finite())
    );
    let tail = &stats[stats.len() - 100..];
    let mean = |f: fn(&flumen::models::rce::StepStats) -> f32| {
        tail.iter().map(f).sum::<f32>() / tail.len() as f32
    };
    let (succ, replay) = (mean(|s| s.success_score), mean(|s| s.replay_score));
    assert!(
        succ > replay + 0.05,
        "success examples scored {succ}, replay pairs {replay}"
    );
    let a = agent.act([0.0, 0.0], false).unwrap();
    assert!(a.iter().all(|x| (-1.0..=1.0).contains(x)));
    let eval = agent.evaluate(3, 0).unwrap();
    assert!((0.0..=1.0).contains(&eval.success) && eval.reached >= eval.success);
    assert!(eval.final_distance.is_finite());
}

/// The original's update order: the targets move toward the critics *after* this step's
/// critic update (`t₁ = (1 − τ)·t₀ + τ·c₁`, not `c₀`), and the targets start equal to the
/// critics. A large τ makes the two candidates differ far beyond the tolerance.
#[test]
fn targets_follow_the_updated_critics() {
    let config = Config {
        hidden: 8,
        batch: 16,
        tau: 0.5,
        initial_random_steps: 60,
        ..Config::default()
    };
    let tau = config.tau as f32;
    let mut agent = Agent::new(config, 5, Backend::Compiled).unwrap();
    let read = |agent: &mut Agent, vars: Vec<flumen::Tensor>| -> Vec<Vec<f32>> {
        let refs: Vec<&flumen::Tensor> = vars.iter().collect();
        let out = agent.sess.run(&[], &refs).unwrap();
        out.iter()
            .map(|v| v.as_f32().unwrap().iter().copied().collect())
            .collect()
    };
    let critic_vars = |a: &Agent| -> Vec<flumen::Tensor> {
        a.model.critics.iter().flat_map(|m| m.variables()).collect()
    };
    let target_vars = |a: &Agent| -> Vec<flumen::Tensor> {
        a.model.targets.iter().flat_map(|m| m.variables()).collect()
    };
    let (cv, tv) = (critic_vars(&agent), target_vars(&agent));
    let (c0, t0) = (read(&mut agent, cv.clone()), read(&mut agent, tv.clone()));
    assert_eq!(c0, t0, "targets start equal to the critics");
    while agent.env_steps < 59 {
        assert!(agent.iterate().unwrap().is_none());
    }
    let mut max_gap = 0.0f32;
    for _ in 0..3 {
        let t0 = read(&mut agent, tv.clone());
        let c_before = read(&mut agent, cv.clone());
        agent.train_step().unwrap();
        let (c1, t1) = (read(&mut agent, cv.clone()), read(&mut agent, tv.clone()));
        for k in 0..t0.len() {
            for i in 0..t0[k].len() {
                let want = (1.0 - tau) * t0[k][i] + tau * c1[k][i];
                assert!(
                    (t1[k][i] - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "variable {k}[{i}]: target {} but (1-τ)t₀ + τc₁ = {want}",
                    t1[k][i]
                );
                max_gap = max_gap.max(tau * (c1[k][i] - c_before[k][i]).abs());
            }
        }
    }
    // Updating toward the pre-step critics would miss by this much somewhere.
    assert!(max_gap > 1e-4, "the critics barely moved: {max_gap}");
}
