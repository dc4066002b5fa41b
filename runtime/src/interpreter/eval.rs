//! Evaluation of one op on concrete values.

use super::EvalContext;
use flumen_frontend::op::{Op, TensorType};
use flumen_frontend::Value;

/// Evaluate a pure op on its inputs. `out` is the node's declared output type (already
/// checked by the op's shape rule). Errors are messages; the executor adds the op and node.
pub fn eval_op(op: &Op, inputs: &[&Value], out: &TensorType, ctx: EvalContext) -> Result<Value, String> {
    let _ = (op, inputs, out, ctx);
    Err(format!("{} is not implemented in the interpreter yet", op.name()))
}
