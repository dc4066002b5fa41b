//! Adam with Keras' (TF2's) defaults and update.

use super::Optimizer;
use crate::Tensor;
use crate::dtype::DType;
use crate::error::Result;
use crate::value::Value;
use std::collections::HashMap;

/// Adam, computed exactly as Keras 2 / TF2 (`ResourceApplyAdam`): at step `t` (1 for the
/// first step), with gradient `g`,
///
/// ```text
/// α_t = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
/// m  ← m + (g − m)·(1 − β₁)        (= β₁·m + (1 − β₁)·g)
/// v  ← v + (g² − v)·(1 − β₂)       (= β₂·v + (1 − β₂)·g²)
/// θ  ← θ − α_t·m / (√v + ε)
/// ```
///
/// Note that ε is added to `√v` *after* the bias correction was folded into `α_t` (so it
/// acts like `ε·√(1 − β₂ᵗ)` in the textbook form). Slots: `<scope>/<variable>/m` and
/// `<scope>/<variable>/v` (zeros) and the step counter `<scope>/t` (an i64 scalar counting
/// completed steps), all non-trainable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// The learning rate (Keras: 1e-3).
    pub lr: f64,
    /// Decay of the first moment (Keras: 0.9).
    pub beta1: f64,
    /// Decay of the second moment (Keras: 0.999).
    pub beta2: f64,
    /// Added to `√v` (Keras: 1e-7).
    pub epsilon: f64,
}

impl Default for Adam {
    fn default() -> Adam {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-7,
        }
    }
}

impl Adam {
    /// Adam with learning rate `lr` and Keras' other defaults.
    pub fn new(lr: f64) -> Adam {
        Adam {
            lr,
            ..Adam::default()
        }
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        "Adam"
    }

    fn update_ops(&self, grads_and_vars: &[(Tensor, Tensor)]) -> Result<Vec<Tensor>> {
        let Some((_, first)) = grads_and_vars.first() else {
            return Ok(Vec::new());
        };
        let g = first.graph();
        let t = g.variable_with("t", Value::scalar(0i64), false)?;
        let t_next = (&t + 1i64)?;
        let mut updates = vec![t.assign(&t_next)?];
        // α_t per dtype of the variables.
        let mut alphas: HashMap<DType, Tensor> = HashMap::new();
        for (grad, var) in grads_and_vars {
            let dtype = var.dtype();
            let alpha = match alphas.get(&dtype) {
                Some(a) => a.clone(),
                None => {
                    let step = t_next.cast(dtype)?;
                    let decayed = |beta: f64| g.scalar(beta, dtype)?.pow(&step);
                    let a = ((1.0f64 - &decayed(self.beta2)?)?.sqrt()?.mul(self.lr)?
                        / (1.0f64 - &decayed(self.beta1)?)?)?;
                    alphas.insert(dtype, a.clone());
                    a
                }
            };
            // Slots start at zero: a broadcast scalar, so saved graphs stay small.
            let slot = |s: &str| {
                let zeros = g.scalar(0i64, dtype)?.broadcast_to(var.shape())?;
                g.variable_with(&format!("{}/{s}", var.name()), &zeros, false)
            };
            let (m, v) = (slot("m")?, slot("v")?);
            let m_next = (&m + &((grad - &m)? * (1.0 - self.beta1))?)?;
            let v_next = (&v + &((grad.square()? - &v)? * (1.0 - self.beta2))?)?;
            let step = ((&m_next * &alpha)? / &(v_next.sqrt()? + self.epsilon)?)?;
            updates.push(m.assign(&m_next)?);
            updates.push(v.assign(&v_next)?);
            updates.push(var.assign((var - &step)?)?);
        }
        Ok(updates)
    }
}
