//! Linear ODEs `x' = Ax` solved with the matrix exponential, `x(t) = e^{tA} x₀` (3Blue1Brown's
//! DE6, MODELS.md §3), as one Flumen graph: the times `t` are a placeholder `[T]`, `tA` a
//! broadcast product `[T, 2, 2]`, `expm` is batched over the times and a matmul applies each
//! `e^{tA}` to `x₀`. Each trajectory is compared with classical RK4 (dt = 1e-4) and the
//! largest relative error printed; the phase portrait is written to `out/linear_ode.png`.
//!
//! Systems: Romeo and Juliet (`x' = −y`, `y' = x`: the rotation generator, a circle), the
//! video's `[[0.5, −3], [1, −0.5]]` (an ellipse) and `[[3, 1], [4, 1]]` (a saddle).
//!
//! ```sh
//! cargo run --release --example linear_ode -- [--out DIR]
//! ```

use flumen::plot::{Series, line_chart};
use flumen::{DType, Graph, Session, Value};
use std::process::ExitCode;

/// One system: its name, matrix, start point and time span.
struct System {
    name: &'static str,
    a: [[f64; 2]; 2],
    x0: [f64; 2],
    t_end: f64,
}

/// `x(t)` at `steps + 1` equally spaced times in `[0, t_end]`, from the graph.
fn exact(sys: &System, steps: usize) -> flumen::Result<Vec<[f64; 2]>> {
    let g = Graph::new();
    let t = g.placeholder("t", DType::F64, &[steps + 1])?;
    let a = g.constant(Value::from_vec(&[1, 2, 2], sys.a.concat())?)?;
    let x0 = g.constant(Value::from_vec(&[2, 1], sys.x0.to_vec())?)?;
    let ta = (&t.reshape(&[-1, 1, 1])? * &a)?; // [T, 2, 2]
    let x = ta.expm()?.matmul(&x0)?; // [T, 2, 1]
    let times: Vec<f64> = (0..=steps)
        .map(|k| sys.t_end * k as f64 / steps as f64)
        .collect();
    let mut sess = Session::new(&g);
    let out = sess.run(&[(&t, Value::from_vec(&[steps + 1], times)?)], &[&x])?;
    Ok(out[0]
        .to_f64_vec()
        .chunks(2)
        .map(|p| [p[0], p[1]])
        .collect())
}

/// Classical RK4 with a step of about `dt` (each sampling interval split evenly), sampled at
/// the same times as [`exact`].
fn rk4(sys: &System, steps: usize, dt: f64) -> Vec<[f64; 2]> {
    let f = |x: [f64; 2]| {
        [
            sys.a[0][0] * x[0] + sys.a[0][1] * x[1],
            sys.a[1][0] * x[0] + sys.a[1][1] * x[1],
        ]
    };
    let add = |x: [f64; 2], k: [f64; 2], h: f64| [x[0] + h * k[0], x[1] + h * k[1]];
    let interval = sys.t_end / steps as f64;
    let per_sample = ((interval / dt).round() as usize).max(1);
    let dt = interval / per_sample as f64;
    let mut x = sys.x0;
    let mut out = vec![x];
    for _ in 0..steps {
        for _ in 0..per_sample {
            let k1 = f(x);
            let k2 = f(add(x, k1, dt / 2.0));
            let k3 = f(add(x, k2, dt / 2.0));
            let k4 = f(add(x, k3, dt));
            x = [
                x[0] + dt / 6.0 * (k1[0] + 2.0 * k2[0] + 2.0 * k3[0] + k4[0]),
                x[1] + dt / 6.0 * (k1[1] + 2.0 * k2[1] + 2.0 * k3[1] + k4[1]),
            ];
        }
        out.push(x);
    }
    out
}

fn run(out_dir: &str) -> flumen::Result<bool> {
    let systems = [
        System {
            name: "Romeo & Juliet [[0,-1],[1,0]]",
            a: [[0.0, -1.0], [1.0, 0.0]],
            x0: [1.0, 0.0],
            t_end: 2.0 * std::f64::consts::PI,
        },
        System {
            name: "[[0.5,-3],[1,-0.5]]",
            a: [[0.5, -3.0], [1.0, -0.5]],
            x0: [0.5, 0.5],
            t_end: 4.0,
        },
        System {
            name: "[[3,1],[4,1]]",
            a: [[3.0, 1.0], [4.0, 1.0]],
            x0: [0.2, -0.35],
            t_end: 1.0,
        },
    ];
    let steps = 200;
    let mut curves = Vec::new();
    let mut ok = true;
    for sys in &systems {
        let e = exact(sys, steps)?;
        let r = rk4(sys, steps, 1e-4);
        let norm = |p: [f64; 2]| p[0].hypot(p[1]);
        let worst = e
            .iter()
            .zip(&r)
            .map(|(a, b)| norm([a[0] - b[0], a[1] - b[1]]) / norm(*a).max(1e-300))
            .fold(0.0, f64::max);
        let last = e[steps];
        println!(
            "{:<30} x({:.3}) = ({:+.10}, {:+.10})   max relative error vs RK4 (dt = 1e-4): {worst:.2e}",
            sys.name, sys.t_end, last[0], last[1]
        );
        ok &= worst <= 1e-8;
        curves.push(e.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
    }
    let series: Vec<Series> = systems
        .iter()
        .zip(&curves)
        .map(|(s, c)| Series {
            label: s.name,
            points: c,
        })
        .collect();
    std::fs::create_dir_all(out_dir).map_err(|e| flumen::GraphError::Io {
        path: out_dir.to_string(),
        msg: e.to_string(),
    })?;
    let path = format!("{out_dir}/linear_ode.png");
    line_chart(&path, "x' = Ax solved as e^{tA} x0", "x", "y", &series)?;
    println!("wrote {path}");
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out_dir = match args.as_slice() {
        [] => "out".to_string(),
        [flag, dir] if flag == "--out" => dir.clone(),
        _ => {
            eprintln!("usage: linear_ode [--out DIR]");
            return ExitCode::from(2);
        }
    };
    match run(&out_dir) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: a trajectory differs from RK4 by more than 1e-8");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
