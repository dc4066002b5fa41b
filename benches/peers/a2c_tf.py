"""TensorFlow 2 eager peer of examples/a2c_cartpole.rs: the A2C tutorial's agent
(a2c_tf2_cartpole.py) on CartPole-v0, measured in environment steps per second.

Same workload as Flumen's `flumen::models::a2c`:
- CartPole-v0 in Python/NumPy with gym's equations (explicit Euler, force 10, tau 0.02,
  12 degrees / 2.4 m, 200-step limit), resets uniform in [-0.05, 0.05);
- the network: Dense(64, relu, he_normal) x 2, value head Dense(1) and policy head Dense(2)
  (glorot_uniform kernels), zero biases (a keras.Model);
- acting: one eager forward pass per step on the state [1, 4] and tf.random.categorical on
  the logits (the tutorial's `action_value`);
- one update per 64 steps: discounted returns bootstrapped from V(s_T) (gamma 0.95, stored
  reward 0 on the step that ends an episode), advantages, and the loss
  0.5 * mean (DR - V)^2 + sum_t A_t * CE(a_t) - 0.05 * mean_t H_t (probabilities clipped to
  [1e-7, 1 - 1e-7]) differentiated with tf.GradientTape and applied by keras Adam (lr 1e-3,
  epsilon 1e-7), all eager.

`--function` wraps the forward pass and the update in tf.function (graph mode), the faster
TF2 style, for comparison. Output: progress lines, then one `PEER_JSON {...}` line with
env_steps_per_s (measured after --warmup steps, so tracing and first calls are excluded).

Run: /tmp/peers/bin/python benches/peers/a2c_tf.py [--steps 6400] [--warmup 640]
     [--threads 2] [--seed 0] [--function]
"""

import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import peer_common as pc  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--steps", type=int, default=6400, help="timed env steps (whole batches)")
p.add_argument("--warmup", type=int, default=640, help="untimed env steps first")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--function", action="store_true", help="tf.function instead of eager")
args = p.parse_args()
pc.pin_threads(args.threads)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

tf.get_logger().setLevel("ERROR")
tf.config.threading.set_intra_op_parallelism_threads(args.threads)
tf.config.threading.set_inter_op_parallelism_threads(args.threads)
tf.random.set_seed(args.seed)

GAMMA, BATCH = 0.95, 64
CRITIC_W, ACTOR_W, ENTROPY_W = 0.5, 1.0, 0.05


class CartPole:
    """gym's CartPole-v0 (cartpole.py + TimeLimit(200))."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masscart + masspole
    polemass_length = masspole * length
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.state = None
        self.steps = 0

    def reset(self):
        self.state = self.rng.uniform(-0.05, 0.05, size=(4,))
        self.steps = 0
        return self.state

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.array((x, x_dot, theta, theta_dot))
        self.steps += 1
        done = bool(x < -self.x_threshold or x > self.x_threshold
                    or theta < -self.theta_threshold or theta > self.theta_threshold)
        done = done or self.steps >= 200
        return self.state, 1.0, done


class Model(keras.Model):
    def __init__(self, num_actions):
        super().__init__()
        self.dense1 = keras.layers.Dense(64, activation="relu",
                                         kernel_initializer=keras.initializers.he_normal())
        self.dense2 = keras.layers.Dense(64, activation="relu",
                                         kernel_initializer=keras.initializers.he_normal())
        self.value = keras.layers.Dense(1)
        self.policy_logits = keras.layers.Dense(num_actions)

    def call(self, inputs):
        x = self.dense2(self.dense1(inputs))
        return self.value(x), self.policy_logits(x)


model = Model(2)
model(np.zeros((1, 4), np.float32))
optimizer = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)


def act(state):
    value, logits = model(state)
    action = tf.random.categorical(logits, 1)
    return action, value


def loss_fn(states, actions, returns, advantages):
    values, logits = model(states)
    critic = CRITIC_W * tf.reduce_mean(tf.square(returns - values[:, 0]))
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=actions, logits=logits)
    actor = ACTOR_W * tf.reduce_sum(advantages * ce)
    probs = tf.nn.softmax(logits)
    entropy = -tf.reduce_sum(probs * tf.math.log(tf.clip_by_value(probs, 1e-7, 1 - 1e-7)), -1)
    return critic + actor - ENTROPY_W * tf.reduce_mean(entropy)


def update(states, actions, returns, advantages):
    with tf.GradientTape() as tape:
        loss = loss_fn(states, actions, returns, advantages)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss


if args.function:
    act = tf.function(act)
    update = tf.function(update)


def discounted_rewards_advantages(rewards, dones, values, next_value):
    dr = np.array(rewards + [next_value])
    for t in reversed(range(len(rewards))):
        dr[t] = rewards[t] + GAMMA * dr[t + 1] * (1 - dones[t])
    dr = dr[:-1]
    return dr, dr - np.array(values)


env = CartPole(args.seed)
state = env.reset()
episode_return, returns_done = 0.0, []
steps_done = 0
timed_from = None
total = args.warmup + args.steps
while steps_done < total:
    if timed_from is None and steps_done >= args.warmup:
        timed_from = (time.perf_counter(), steps_done)
    states, actions, rewards, dones, values = [], [], [], [], []
    for _ in range(BATCH):
        action, value = act(state.reshape(1, -1).astype(np.float32))
        a = int(action.numpy()[0, 0])
        new_state, reward, done = env.step(a)
        states.append(state)
        actions.append(a)
        values.append(float(value.numpy()[0, 0]))
        dones.append(done)
        episode_return += reward
        steps_done += 1
        if done:
            rewards.append(0.0)
            returns_done.append(episode_return)
            episode_return = 0.0
            state = env.reset()
        else:
            rewards.append(reward)
            state = new_state
    _, next_value = act(state.reshape(1, -1).astype(np.float32))
    dr, adv = discounted_rewards_advantages(rewards, dones, values,
                                            float(next_value.numpy()[0, 0]))
    update(np.array(states, np.float32), np.array(actions, np.int32),
           dr.astype(np.float32), adv.astype(np.float32))
    if steps_done % 1280 == 0:
        recent = returns_done[-100:]
        print(f"env step {steps_done}: {len(returns_done)} episodes, "
              f"last-100 mean {np.mean(recent) if recent else float('nan'):.1f}", flush=True)

start, first_step = timed_from
elapsed = time.perf_counter() - start
timed = steps_done - first_step
rate = timed / elapsed
style = "tf.function" if args.function else "eager"
print(f"TF2 {style}: {timed} env steps in {elapsed:.2f} s = {rate:.0f} env steps/s")
print("PEER_JSON " + json.dumps({
    "peer": f"tensorflow-{style}", "workload": "a2c_cartpole", "env_steps": timed,
    "seconds": elapsed, "env_steps_per_s": rate, "threads": args.threads,
    "tf_version": tf.__version__}))
