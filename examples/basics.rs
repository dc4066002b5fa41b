//! The TensorFlow basics tutorial's toy graphs (MODELS.md §1a) as Flumen graphs:
//! scalar arithmetic, a vector variable, element and slice assignment, and a slice read.
//! Writes the graph as `basics.dot`.
//!
//! Run: `cargo run --release --example basics`

use flumen::{DType, Graph, Result, Session, Tensor, Value, s};
use ndarray::arr0;

/// Format a value's elements like `[3, 6, 9]` (scalars without brackets).
fn show(v: &Value) -> String {
    let items: Vec<String> = match v {
        Value::F32(a) => a.iter().map(|x| x.to_string()).collect(),
        Value::I32(a) => a.iter().map(|x| x.to_string()).collect(),
        other => other.to_f64_vec().iter().map(|x| x.to_string()).collect(),
    };
    if v.shape().is_empty() {
        items.join("")
    } else {
        format!("[{}]", items.join(", "))
    }
}

/// `a = (b + c) * (c + 2)` with scalar variables b = 2, c = 1 and a constant 2.
fn scalar_graph() -> Result<f32> {
    let g = Graph::new();
    let constant = g.constant_named("const", arr0(2.0f32))?;
    let b = g.variable("b", arr0(2.0f32))?;
    let c = g.variable("c", arr0(1.0f32))?;
    let d = (&b + &c)?.named("d")?;
    let e = (&c + &constant)?.named("e")?;
    let a = (&d * &e)?.named("a")?;
    let out = Session::new(&g).run(&[], &[&a])?;
    Ok(out[0].as_f32()?.iter().copied().next().unwrap_or(f32::NAN))
}

fn main() -> Result<()> {
    println!("a = {}", scalar_graph()?);

    // The vector version: b is an int32 variable holding arange(10).
    let g = Graph::new();
    let b = g.variable("b", ndarray::Array1::from_iter(0..10i32))?;
    let c = g.variable("c", arr0(1.0f32))?;
    let d = (b.cast(DType::F32)? + &c)?.named("d")?;
    let e = (&c + 2.0)?.named("e")?;
    let a: Tensor = (&d * &e)?.named("a")?;
    let mut sess = Session::new(&g);
    println!("a = {}", show(&sess.run(&[], &[&a])?[0]));

    // b[1].assign(10): an element assignment persists in the session's variable state.
    let assign_one = b.slice_assign(s![1], 10)?;
    sess.run(&[], &[&assign_one])?;
    println!(
        "after b[1].assign(10): a = {}",
        show(&sess.run(&[], &[&a])?[0])
    );

    // b[6:9].assign([10, 10, 10])
    let tens = g.constant(ndarray::arr1(&[10i32, 10, 10]))?;
    let assign_range = b.slice_assign(s![6..9], &tens)?;
    sess.run(&[], &[&assign_range])?;
    let out = sess.run(&[], &[&a, &b])?;
    println!(
        "after b[6:9].assign([10, 10, 10]): a = {}, b = {}",
        show(&out[0]),
        show(&out[1])
    );

    // f = b[2:5]
    let f = b.slice(s![2..5])?.named("f")?;
    println!("f = b[2:5] = {}", show(&sess.run(&[], &[&f])?[0]));

    g.def().save_dot("basics.dot")?;
    println!("wrote basics.dot");
    Ok(())
}
