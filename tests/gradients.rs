//! Symbolic gradients against central finite differences (see `gradcheck` for the error
//! formula), plus the structural rules: path accumulation, stop_gradient, unconnected and
//! integer inputs, variables, non-scalar ys and errors.

mod gradcheck;

use flumen::op::{BinaryOp, UnaryOp};
use flumen::{DType, Graph, Session, Tensor, Value, s};
use flumen_frontend::{UnconnectedGradients, gradients, gradients_or_zeros, gradients_with};
use gradcheck::*;

fn consts_i64(g: &Graph, shape: &[usize], data: Vec<i64>) -> Tensor {
    g.constant(Value::from_vec(shape, data).unwrap()).unwrap()
}

#[test]
fn every_unary_op() {
    for (k, &u) in UnaryOp::ALL.iter().enumerate() {
        let range = match u {
            UnaryOp::Log
            | UnaryOp::Log1p
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal => (0.5, 2.0),
            // Bool only; covered by `integer_and_bool_tensors_get_no_gradient`.
            UnaryOp::LogicalNot => continue,
            // Zero by definition while the forward pass is the identity, so central
            // differences disagree; covered by `stop_gradient_cuts_the_path`.
            UnaryOp::StopGradient => continue,
            _ => (-2.0, 2.0),
        };
        let (grads, _) = check_gradient_in(|_, x| x[0].unary(u), &[&[2, 3]], k as u64, range);
        let zero = grads[0].iter().all(|&d| d == 0.0);
        let expect_zero = matches!(
            u,
            UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Ceil | UnaryOp::Round
        );
        assert_eq!(zero, expect_zero, "{}: gradient {:?}", u.name(), grads[0]);
    }
}

#[test]
fn every_arithmetic_binary_op_with_broadcasting() {
    let shapes: [(&[usize], &[usize]); 4] = [
        (&[3, 1], &[1, 4]),
        (&[2, 3], &[3]),
        (&[], &[2, 2]),
        (&[2, 1, 3], &[2, 3]),
    ];
    for (k, &b) in BinaryOp::ALL.iter().enumerate() {
        let range = match b {
            BinaryOp::Div | BinaryOp::Pow | BinaryOp::Mod => (0.5, 2.0),
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => (-2.0, 2.0),
            BinaryOp::Maximum | BinaryOp::Minimum => (-2.0, 2.0),
            // Comparisons and logical ops return bools: tested for "no gradient" below.
            _ => continue,
        };
        for (j, (sa, sb)) in shapes.iter().enumerate() {
            check_gradient_in(
                |_, x| x[0].binary(b, &x[1]),
                &[sa, sb],
                (10 * k + j) as u64,
                range,
            );
        }
    }
}

#[test]
fn pow_with_respect_to_both_arguments() {
    // Exponents of both signs, the exponent broadcast against the base.
    check_gradient_in(
        |_, x| x[0].pow(&(&x[1] - 1.5)?),
        &[&[3], &[2, 3]],
        7,
        (0.5, 2.5),
    );
    // A constant integer-valued exponent on negative bases: only d/da is used there.
    check_gradient(|g, x| x[0].pow(&g.scalar(3.0, DType::F64)?), &[&[4]], 8);
}

#[test]
fn maximum_and_minimum_route_to_the_selected_operand() {
    let g = Graph::new();
    let a = g.constant(f64s(&[4], vec![1.0, 5.0, 2.0, 3.0])).unwrap();
    let b = g.constant(f64s(&[4], vec![4.0, 0.0, 2.0, 3.0])).unwrap();
    let mx = a.maximum(&b).unwrap().sum_all().unwrap();
    let mn = a.minimum(&b).unwrap().sum_all().unwrap();
    let dmax = gradients(&[&mx], &[&a, &b], None).unwrap();
    let dmin = gradients(&[&mn], &[&a, &b], None).unwrap();
    let got = eval(
        &g,
        &[
            dmax[0].as_ref().unwrap(),
            dmax[1].as_ref().unwrap(),
            dmin[0].as_ref().unwrap(),
            dmin[1].as_ref().unwrap(),
        ],
    );
    // Ties (elements 2 and 3) go to the first operand, like the forward op's choice.
    assert_eq!(got[0], [0.0, 1.0, 1.0, 1.0]);
    assert_eq!(got[1], [1.0, 0.0, 0.0, 0.0]);
    assert_eq!(got[2], [1.0, 0.0, 1.0, 1.0]);
    assert_eq!(got[3], [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn select_flows_to_the_values_only() {
    let check = |cond_shape: &[usize], cond: Vec<bool>, sa: &[usize], sb: &[usize]| {
        let cond_shape = cond_shape.to_vec();
        check_gradient(
            move |g, x| {
                let c = g.constant(Value::from_vec(&cond_shape, cond.clone())?)?;
                c.select(&x[0], &x[1])
            },
            &[sa, sb],
            3,
        )
    };
    let (grads, _) = check(
        &[2, 3],
        vec![true, false, true, false, false, true],
        &[2, 3],
        &[2, 3],
    );
    assert_eq!(grads[0].iter().filter(|&&d| d == 0.0).count(), 3);
    check(&[3], vec![true, false, true], &[2, 1], &[]);
    check(&[2, 1], vec![false, true], &[3], &[2, 3]);
}

#[test]
fn casts_between_floats_pass_the_gradient() {
    let g = Graph::new();
    let x = g.constant(f64s(&[2], vec![1.5, -2.0])).unwrap();
    let y = x.cast(DType::F32).unwrap().cast(DType::F64).unwrap();
    let y = y.mul(3.0).unwrap().sum_all().unwrap();
    let d = gradients(&[&y], &[&x], None).unwrap();
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [3.0, 3.0]);
}

#[test]
fn reductions_over_several_axes() {
    let shape: &[usize] = &[2, 3, 4];
    for keepdims in [false, true] {
        for axes in [vec![0, 2], vec![1], vec![0, 1, 2], vec![-1, 0]] {
            check_gradient(|_, x| x[0].sum(&axes, keepdims), &[shape], 1);
            check_gradient(|_, x| x[0].mean(&axes, keepdims), &[shape], 2);
            check_gradient(|_, x| x[0].max(&axes, keepdims), &[shape], 3);
            check_gradient(|_, x| x[0].min(&axes, keepdims), &[shape], 4);
            check_gradient_in(|_, x| x[0].prod(&axes, keepdims), &[shape], 5, (0.5, 1.5));
        }
    }
    check_gradient(|_, x| x[0].sum_all(), &[shape], 6);
    check_gradient(|_, x| x[0].mean_all(), &[shape], 7);
}

#[test]
fn max_ties_split_the_gradient_evenly() {
    let g = Graph::new();
    let x = g
        .constant(f64s(&[2, 4], vec![1.0, 3.0, 3.0, 2.0, 5.0, 5.0, 5.0, 0.0]))
        .unwrap();
    let m = x.max(&[1], false).unwrap();
    let d = gradients(&[&m], &[&x], None).unwrap();
    let got = eval(&g, &[d[0].as_ref().unwrap()]);
    let third = 1.0 / 3.0;
    assert_close(
        &got[0],
        &[0.0, 0.5, 0.5, 0.0, third, third, third, 0.0],
        1e-15,
    );
    // Central differences agree at ties: a copy makes an exact tie that moves together.
    check_gradient(
        |_, x| Tensor::concat(&[&x[0], &x[0]], 0)?.max(&[0], false),
        &[&[3, 2]],
        8,
    );
    check_gradient(
        |_, x| Tensor::concat(&[&x[0], &x[0]], 1)?.min(&[1], true),
        &[&[3, 2]],
        9,
    );
}

#[test]
fn product_gradient_is_exact_with_zeros() {
    let g = Graph::new();
    let x = g
        .constant(f64s(&[2, 3], vec![2.0, 0.0, 3.0, 0.0, 0.0, 4.0]))
        .unwrap();
    let p = x.prod(&[1], false).unwrap();
    let d = gradients(&[&p], &[&x], None).unwrap();
    let got = eval(&g, &[d[0].as_ref().unwrap()]);
    assert_eq!(got[0], [0.0, 6.0, 0.0, 0.0, 0.0, 0.0]);
    check_gradient(|_, x| x[0].prod(&[0, 1], false), &[&[2, 3]], 10);
}

#[test]
fn cumsum_in_every_direction() {
    for exclusive in [false, true] {
        for reverse in [false, true] {
            check_gradient(|_, x| x[0].cumsum(1, exclusive, reverse), &[&[2, 4]], 11);
            check_gradient(|_, x| x[0].cumsum(0, exclusive, reverse), &[&[3, 2]], 12);
        }
    }
}

#[test]
fn matmul_with_transposes_and_batch_broadcasting() {
    type Case = (&'static [usize], &'static [usize], bool, bool);
    let cases: [Case; 8] = [
        (&[3, 4], &[4, 5], false, false),
        (&[4, 3], &[4, 5], true, false),
        (&[3, 4], &[5, 4], false, true),
        (&[4, 3], &[5, 4], true, true),
        (&[2, 3, 4], &[4, 5], false, false),
        (&[4, 5], &[2, 5, 3], false, false),
        (&[1, 3, 4], &[2, 5, 4], false, true),
        (&[2, 1, 4, 3], &[3, 4, 2], true, false),
    ];
    for (k, (sa, sb, ta, tb)) in cases.into_iter().enumerate() {
        check_gradient(|_, x| x[0].matmul_t(&x[1], ta, tb), &[sa, sb], k as u64);
    }
}

#[test]
fn reshape_transpose_and_broadcast_to() {
    check_gradient(|_, x| x[0].reshape(&[3, -1]), &[&[2, 3, 2]], 1);
    check_gradient(|_, x| x[0].transpose(&[2, 0, 1]), &[&[2, 3, 4]], 2);
    check_gradient(|_, x| x[0].broadcast_to(&[2, 3, 4]), &[&[3, 1]], 3);
    check_gradient(|_, x| x[0].broadcast_to(&[2, 3]), &[&[]], 4);
}

#[test]
fn slices_with_steps_indices_and_negative_steps() {
    let shape: &[usize] = &[4, 5];
    check_gradient(|_, x| x[0].slice(s![1..3, 2..]), &[shape], 1);
    check_gradient(|_, x| x[0].slice(s![.., 0..5;2]), &[shape], 2);
    check_gradient(|_, x| x[0].slice(s![..;-1, 1..4;-2]), &[shape], 3);
    check_gradient(|_, x| x[0].slice(s![2, ..;3]), &[shape], 4);
    check_gradient(|_, x| x[0].slice(s![1..1, ..]), &[shape], 5);
    check_gradient(|_, x| x[0].slice(s![-3.., 4]), &[shape], 6);
}

#[test]
fn concat_pad_tile_and_roll() {
    check_gradient(
        |_, x| Tensor::concat(&[&x[0], &x[1], &x[0]], 1),
        &[&[2, 2], &[2, 3]],
        1,
    );
    check_gradient(|_, x| x[0].pad(&[(1, 2), (0, 1)], 0.5), &[&[2, 3]], 2);
    check_gradient(|_, x| x[0].tile(&[2, 1, 3]), &[&[2, 3, 1]], 3);
    check_gradient(|_, x| x[0].roll(2, 1), &[&[2, 5]], 4);
    check_gradient(|_, x| x[0].roll(-3, 0), &[&[4, 2]], 5);
    check_gradient(|_, x| Tensor::stack(&[&x[0], &x[1]], 0), &[&[3], &[3]], 6);
}

#[test]
fn gather_with_repeated_indices_axes_and_batch_dims() {
    // Repeated indices accumulate.
    let (grads, _) = check_gradient(
        |g, x| x[0].gather(&consts_i64(g, &[4], vec![2, 0, 2, 2]), 0, 0),
        &[&[3, 2]],
        1,
    );
    assert_eq!(grads[0][2], 0.0, "row 1 is never gathered");
    check_gradient(
        |g, x| x[0].gather(&consts_i64(g, &[2, 2], vec![1, 1, 0, 2]), 1, 0),
        &[&[2, 3, 2]],
        2,
    );
    check_gradient(
        |g, x| x[0].gather(&consts_i64(g, &[2, 3], vec![0, 0, 3, 2, 1, 2]), 1, 1),
        &[&[2, 4]],
        3,
    );
    check_gradient(
        |g, x| x[0].take_along_last_axis(&consts_i64(g, &[2, 3, 1], vec![0, 1, 1, 2, 0, 0])),
        &[&[2, 3, 3]],
        4,
    );
}

#[test]
fn scatter_add_gathers_back() {
    check_gradient(
        |g, x| x[0].scatter_add(&consts_i64(g, &[4], vec![1, 1, 0, 3]), 0, 0, 5),
        &[&[4, 2]],
        1,
    );
    check_gradient(
        |g, x| x[0].unsorted_segment_sum(&consts_i64(g, &[3], vec![2, 0, 2]), 3),
        &[&[3]],
        2,
    );
}

#[test]
fn gradients_accumulate_over_paths() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[3]).unwrap();
    let y = ((&x * &x).unwrap() + &x).unwrap();
    let d = gradients(&[&y], &[&x], None).unwrap();
    let d = d[0].as_ref().unwrap();
    let got = Session::new(&g)
        .run(&[(&x, f64s(&[3], vec![1.0, -2.0, 0.5]))], &[d])
        .unwrap();
    assert_eq!(got[0].to_f64_vec(), [3.0, -3.0, 2.0]);
    // The backward nodes live under `gradients/`.
    let names: Vec<String> = g.def().nodes().iter().map(|n| n.name.clone()).collect();
    assert!(d.name().starts_with("gradients/"), "{}", d.name());
    assert!(names.iter().any(|n| n.starts_with("gradients/")));
    check_gradient(|_, x| (&x[0] * &x[0])? + &x[0], &[&[3]], 1);
}

#[test]
fn stop_gradient_cuts_the_path() {
    let g = Graph::new();
    let x = g.constant(f64s(&[2], vec![2.0, 3.0])).unwrap();
    let stopped = x.stop_gradient().unwrap();
    let y = (&x * &stopped).unwrap().sum_all().unwrap();
    let d = gradients(&[&y], &[&x], None).unwrap();
    // Only the direct path counts: d/dx (x · c) = c = x.
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [2.0, 3.0]);
    let z = stopped.sum_all().unwrap();
    assert!(gradients(&[&z], &[&x], None).unwrap()[0].is_none());
    let zeros = gradients_or_zeros(&[&z], &[&x], None).unwrap();
    assert_eq!(eval(&g, &[&zeros[0]])[0], [0.0, 0.0]);
}

#[test]
fn unconnected_xs_get_none_or_zeros() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2]).unwrap();
    let unrelated = g.placeholder("u", DType::F64, &[3, 1]).unwrap();
    let y = x.square().unwrap().sum_all().unwrap();
    let d = gradients(&[&y], &[&x, &unrelated], None).unwrap();
    assert!(d[0].is_some() && d[1].is_none());
    let d = gradients_with(&[&y], &[&unrelated], None, UnconnectedGradients::Zero).unwrap();
    let zero = d[0].as_ref().unwrap();
    assert_eq!((zero.shape(), zero.dtype()), (&[3, 1][..], DType::F64));
    assert_eq!(eval(&g, &[zero])[0], [0.0; 3]);
    // An x that only feeds y's ancestors, not y, is unconnected too.
    let upstream = g.placeholder("w", DType::F64, &[2]).unwrap();
    let _other = (&upstream + &x).unwrap();
    assert!(gradients(&[&y], &[&upstream], None).unwrap()[0].is_none());
}

#[test]
fn integer_and_bool_tensors_get_no_gradient() {
    let g = Graph::new();
    let x = g.constant(f64s(&[3], vec![0.5, 1.5, -2.5])).unwrap();
    let as_int = x.cast(DType::I64).unwrap();
    let back = as_int.cast(DType::F64).unwrap();
    let mask = x.greater(0.0).unwrap();
    let y = ((&back * &x).unwrap() + mask.cast(DType::F64).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let d = gradients(&[&y], &[&x, &as_int, &mask], None).unwrap();
    // Only the direct factor: d/dx (back · x) with `back` constant = back.
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [0.0, 1.0, -2.0]);
    assert!(d[1].is_none() && d[2].is_none());
    let z = gradients_or_zeros(&[&y], &[&as_int], None).unwrap();
    assert_eq!(z[0].dtype(), DType::I64);
    let not = mask
        .logical_not()
        .unwrap()
        .cast(DType::F64)
        .unwrap()
        .sum_all()
        .unwrap();
    assert!(gradients(&[&not], &[&x], None).unwrap()[0].is_none());
}

#[test]
fn variables_are_leaves_and_reads_pass_through() {
    let g = Graph::new();
    let init = g.constant(f64s(&[2], vec![1.0, 2.0])).unwrap();
    let w = g.variable("w", &init).unwrap();
    let r = w.read_after(&[]).unwrap();
    let y = (w.mul(3.0).unwrap() + r.square().unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    let d = gradients(&[&y], &[&w, &init], None).unwrap();
    let mut sess = Session::new(&g);
    let got = sess.run(&[], &[d[0].as_ref().unwrap()]).unwrap();
    assert_eq!(got[0].to_f64_vec(), [5.0, 7.0]);
    assert!(d[1].is_none(), "the initializer is not differentiated");
    // An assign has no gradient.
    let a = w.assign(w.mul(2.0).unwrap()).unwrap().sum_all().unwrap();
    assert!(gradients(&[&a], &[&w], None).unwrap()[0].is_none());
}

#[test]
fn non_scalar_and_multiple_ys_with_grad_ys() {
    let g = Graph::new();
    let x = g.constant(f64s(&[2], vec![1.0, 2.0])).unwrap();
    let y1 = (&x * &x).unwrap();
    let y2 = x.mul(10.0).unwrap().sum_all().unwrap();
    // Default grad_ys are ones: d/dx Σ(x²) + 10 Σ x = 2x + 10.
    let d = gradients(&[&y1, &y2], &[&x], None).unwrap();
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [12.0, 14.0]);
    let gy1 = g.constant(f64s(&[2], vec![1.0, -1.0])).unwrap();
    let gy2 = g.constant(Value::scalar(0.5f64)).unwrap();
    let d = gradients(&[&y1, &y2], &[&x], Some(&[&gy1, &gy2])).unwrap();
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [7.0, 1.0]);
    // A y that is also an x gets its grad_y.
    let d = gradients(&[&y1], &[&y1, &x], Some(&[&gy1])).unwrap();
    assert_eq!(eval(&g, &[d[0].as_ref().unwrap()])[0], [1.0, -1.0]);
}

#[test]
fn second_order_gradients() {
    let g = Graph::new();
    let x = g.constant(f64s(&[3], vec![1.0, -2.0, 0.5])).unwrap();
    let y = x.square().unwrap().mul(&x).unwrap().sum_all().unwrap();
    let dx = gradients(&[&y], &[&x], None).unwrap().remove(0).unwrap();
    let ddx = gradients(&[&dx], &[&x], None).unwrap().remove(0).unwrap();
    assert_eq!(eval(&g, &[&ddx])[0], [6.0, -12.0, 3.0]);
    assert!(ddx.name().starts_with("gradients/"), "{}", ddx.name());
}

#[test]
fn errors_name_the_problem() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F64, &[2]).unwrap();
    let i = g.placeholder("i", DType::I64, &[2]).unwrap();
    let err = gradients(&[&i], &[&x], None).unwrap_err().to_string();
    assert!(
        err.contains("gradients") && err.contains("`i`") && err.contains("i64"),
        "{err}"
    );
    let y = x.square().unwrap();
    let bad = g.constant(f64s(&[3], vec![1.0; 3])).unwrap();
    let err = gradients(&[&y], &[&x], Some(&[&bad]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("f64[3]") && err.contains("f64[2]"), "{err}");
    let other = Graph::new();
    let z = other.placeholder("z", DType::F64, &[2]).unwrap();
    let err = gradients(&[&y], &[&z], None).unwrap_err().to_string();
    assert!(err.contains("another graph"), "{err}");
}
