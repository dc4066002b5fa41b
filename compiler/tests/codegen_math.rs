//! Accuracy of the f32 math routines over dense sweeps: every op is compiled as a vectorised
//! elementwise kernel and compared with the reference (`UnaryOp::eval_float` in f64, rounded
//! to f32 once). Prints the worst error of each op (run with `--nocapture`) and checks the
//! bounds documented in `flumen_compiler::codegen::math`.

mod codegen_util;

use codegen_util::*;
use flumen_frontend::op::UnaryOp;
use flumen_frontend::{DType, Value};

/// Inputs: a sweep over all f32 bit patterns (both signs), a dense sweep of [−30, 30], and
/// a dense sweep of [−1, 1].
fn inputs() -> Vec<f32> {
    let mut v = Vec::new();
    let step = 997u32;
    let mut b = 0u32;
    while b < 0x7f80_0000 {
        v.push(f32::from_bits(b));
        v.push(-f32::from_bits(b));
        b += step * 8;
    }
    let n = 200_000;
    for i in 0..n {
        v.push(-30.0 + 60.0 * i as f32 / n as f32);
        v.push(-1.0 + 2.0 * i as f32 / n as f32);
    }
    v.extend(edge_f32());
    v
}

#[test]
fn f32_transcendental_error_bounds() {
    use UnaryOp::*;
    let xs = inputs();
    let n = xs.len();
    let mut jit = flumen_compiler::codegen::JitKernels::new().unwrap();
    println!("{} inputs", n);
    for op in [
        Exp, Log, Log1p, Tanh, Sigmoid, Softplus, Sin, Cos, Erf, Gelu, Rsqrt, Sqrt,
    ] {
        let mut pb = PB::new();
        let l = pb.load(0, DType::F32);
        let y = pb.un(op, l);
        let k = kernel(
            op.name(),
            &[n],
            &[],
            vec![
                acc(0, DType::F32, 0, &[1], &[]),
                acc(1, DType::F32, 0, &[1], &[]),
            ],
            vec![pb.store(false, vec![(1, y)])],
        );
        let f = jit.compile_one(&k).unwrap();
        let mut bufs = vec![
            Value::from_vec(&[n], xs.clone()).unwrap(),
            Value::zeros(DType::F32, &[n]),
        ];
        run(f, &k, &mut bufs, 0, n);
        let got = bufs[1].as_f32().unwrap().as_slice().unwrap().to_vec();
        let mut worst = (0.0f64, 0.0f32);
        let mut inexact = 0usize;
        for (i, &x) in xs.iter().enumerate() {
            let want = op.eval_float(x as f64) as f32;
            let g = got[i];
            if g.is_nan() && want.is_nan() {
                continue;
            }
            let t = codegen_ops_tol(op, x as f64);
            let u = ulp32(want as f64);
            let excess = ((g as f64 - want as f64).abs() - t.abs).max(0.0);
            let ulps = if excess == 0.0 {
                0.0
            } else if u == 0.0 {
                f64::INFINITY
            } else {
                excess / u
            };
            if g.to_bits() != want.to_bits() {
                inexact += 1;
                if ulps > worst.0 {
                    worst = (ulps, x);
                }
            }
            assert!(
                g != 0.0 || want != 0.0 || g.is_sign_negative() == want.is_sign_negative(),
                "{}({x:e}) = {g:e}, want {want:e}",
                op.name()
            );
            assert!(
                ulps <= t.ulps,
                "{}({x:e}) = {g:e}, want {want:e}: {ulps} ulp beyond the absolute term, bound {}",
                op.name(),
                t.ulps
            );
        }
        println!(
            "{:>8}: {:.3}% not correctly rounded, worst {:.0} ulp at x = {:e}",
            op.name(),
            100.0 * inexact as f64 / n as f64,
            worst.0,
            worst.1
        );
    }
}

/// Same bounds as `codegen_ops.rs`.
fn codegen_ops_tol(op: UnaryOp, x: f64) -> Tol {
    use UnaryOp::*;
    match op {
        Exp | Log => Tol {
            ulps: 2.0,
            abs: 0.0,
        },
        Softplus => Tol {
            ulps: 4.0,
            abs: 0.0,
        },
        Log1p | Tanh | Sigmoid => Tol {
            ulps: 3.0,
            abs: 0.0,
        },
        Sin | Cos => Tol {
            ulps: 2.0,
            abs: x.abs() * 2f64.powi(-46),
        },
        Erf => Tol {
            ulps: 2.0,
            abs: 0.0,
        },
        Gelu => Tol {
            ulps: 8.0,
            abs: x.abs() * 2f64.powi(-52),
        },
        _ => EXACT,
    }
}
