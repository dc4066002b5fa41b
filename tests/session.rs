//! Session semantics on both backends: variables persist across runs, a `variable` node
//! sees the value at the start of the run, `read_after` sees assigns, random ops draw new
//! numbers per run from their seed, and both backends agree.

use flumen::{Backend, DType, Graph, Session, Tensor, Value, s};
use ndarray::{arr0, arr1};

fn both(f: impl Fn(Backend)) {
    f(Backend::Compiled);
    f(Backend::Interpreter);
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_f32().unwrap().iter().copied().collect()
}

#[test]
fn assigns_persist_across_runs() {
    both(|backend| {
        let g = Graph::new();
        let v = g.variable("v", arr1(&[1.0f32, 2.0])).unwrap();
        let inc = v.assign_add(1.0).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        sess.run(&[], &[&inc]).unwrap();
        sess.run(&[], &[&inc]).unwrap();
        assert_eq!(
            f32s(&sess.run(&[], &[&v]).unwrap()[0]),
            vec![3.0, 4.0],
            "{backend:?}"
        );
        assert_eq!(f32s(&sess.variables()["v"]), vec![3.0, 4.0]);
    });
}

#[test]
fn variable_node_is_the_value_at_the_start_of_the_run() {
    both(|backend| {
        let g = Graph::new();
        let v = g.variable("v", arr0(1.0f32)).unwrap();
        let doubled = (&v * 2.0).unwrap();
        let set = v.assign(10.0).unwrap();
        let after = v.read_after(&[&set]).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        // `v` and `doubled` see 1.0 even though the assign runs in the same step.
        let out = sess.run(&[], &[&set, &v, &doubled, &after]).unwrap();
        let vals: Vec<f32> = out.iter().map(|x| f32s(x)[0]).collect();
        assert_eq!(vals, vec![10.0, 1.0, 2.0, 10.0], "{backend:?}");
        // The next run starts from the assigned value.
        assert_eq!(f32s(&sess.run(&[], &[&doubled]).unwrap()[0]), vec![20.0]);
    });
}

#[test]
fn slice_assign_and_group() {
    both(|backend| {
        let g = Graph::new();
        let b = g
            .variable("b", ndarray::Array1::from_iter(0..6i32))
            .unwrap();
        let a1 = b.slice_assign(s![1..3], 7).unwrap();
        let a2 = b.slice_assign(s![..;-2], -1).unwrap();
        let train = g.group("train", &[&a1, &a2]).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        assert!(
            sess.run(&[], &[&train]).unwrap()[0]
                .as_array::<bool>()
                .unwrap()
                .iter()
                .all(|&x| x)
        );
        let out = sess.run(&[], &[&b]).unwrap();
        // s![..;-2] walks 5, 3, 1.
        assert_eq!(
            out[0].as_i32().unwrap().iter().copied().collect::<Vec<_>>(),
            vec![0, -1, 7, -1, 4, -1],
            "{backend:?}"
        );
    });
}

#[test]
fn random_ops_advance_per_run_and_backends_agree() {
    let draws = |backend| {
        let g = Graph::new();
        let r = g
            .random_normal(&[5], 0.0, 1.0, DType::F32, Some(42))
            .unwrap();
        let u = g.random_int(&[4], 0, 10, DType::I64, Some(7)).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        let a = sess.run(&[], &[&r, &u]).unwrap();
        let b = sess.run(&[], &[&r, &u]).unwrap();
        (a, b)
    };
    let (c1, c2) = draws(Backend::Compiled);
    let (i1, i2) = draws(Backend::Interpreter);
    assert_ne!(
        f32s(&c1[0]),
        f32s(&c2[0]),
        "a random op draws new numbers on every run"
    );
    assert!(c1[0].bit_eq(&i1[0]) && c2[0].bit_eq(&i2[0]) && c1[1].bit_eq(&i1[1]));
}

#[test]
fn variable_initializers_run_once() {
    both(|backend| {
        let g = Graph::new();
        let init = g
            .random_uniform(&[3], 0.0, 1.0, DType::F64, Some(3))
            .unwrap();
        let w = g.variable("w", &init).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        let first = sess.run(&[], &[&w]).unwrap();
        let second = sess.run(&[], &[&w]).unwrap();
        assert!(first[0].bit_eq(&second[0]), "{backend:?}");
        assert!(first[0].to_f64_vec().iter().all(|x| (0.0..1.0).contains(x)));
    });
}

#[test]
fn feeds_and_fetch_order() {
    both(|backend| {
        let g = Graph::new();
        let x = g.placeholder("x", DType::F64, &[2, 2]).unwrap();
        let y = g.placeholder("y", DType::F64, &[2]).unwrap();
        let z = (&x + &y).unwrap();
        let t: Tensor = z.sum(&[1], false).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        let xv = Value::from(ndarray::arr2(&[[1.0, 2.0], [3.0, 4.0]]));
        let yv = Value::from(arr1(&[10.0, 20.0]));
        let out = sess
            .run(&[(&y, yv.clone()), (&x, xv.clone())], &[&t, &z])
            .unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![33.0, 37.0]);
        assert_eq!(out[1].to_f64_vec(), vec![11.0, 22.0, 13.0, 24.0]);
        // Cached executable, new values.
        let out = sess
            .run(&[(&y, Value::from(arr1(&[0.0, 0.0]))), (&x, xv)], &[&t, &z])
            .unwrap();
        assert_eq!(out[0].to_f64_vec(), vec![3.0, 7.0]);
    });
}

#[test]
fn compiled_session_reports_its_compilation() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[4, 8]).unwrap();
    let y = (&x * 2.0).unwrap().exp().unwrap().sum(&[1], false).unwrap();
    let mut sess = Session::new(&g);
    let report = sess
        .compile_report(&[&x], &[&y])
        .unwrap()
        .expect("compiled backend");
    // mul and exp fuse into the reduction: one kernel.
    assert_eq!(report.kernels, 1, "{report:?}");
    assert!(report.interpreted.is_empty());
}

#[test]
fn bias_and_relu_run_as_the_matmul_epilogue() {
    let g = Graph::new();
    let x = g.placeholder("x", DType::F32, &[64, 32]).unwrap();
    let w = g
        .variable(
            "w",
            ndarray::Array2::<f32>::from_shape_fn((32, 16), |(i, j)| {
                ((i * 7 + j) % 5) as f32 - 2.0
            }),
        )
        .unwrap();
    let b = g
        .variable(
            "b",
            ndarray::Array1::<f32>::from_shape_fn(16, |j| j as f32 - 8.0),
        )
        .unwrap();
    let h = (x.matmul(&w).unwrap() + &b).unwrap().relu().unwrap();
    let xv = Value::from(ndarray::Array2::<f32>::from_shape_fn((64, 32), |(i, j)| {
        ((i + 3 * j) % 7) as f32 * 0.25 - 0.5
    }));
    let mut compiled = Session::new(&g);
    let report = compiled.compile_report(&[&x], &[&h]).unwrap().unwrap();
    assert_eq!(report.epilogues, 1, "{report:?}");
    let got = compiled.run(&[(&x, xv.clone())], &[&h]).unwrap();
    let want = Session::with_backend(&g, Backend::Interpreter)
        .run(&[(&x, xv)], &[&h])
        .unwrap();
    // Small integers times quarters: both backends are exact here.
    assert!(got[0].bit_eq(&want[0]));
}

#[test]
fn in_place_updates_keep_run_start_semantics() {
    both(|backend| {
        let g = Graph::new();
        let v = g.variable("v", arr1(&[1.0f32, 2.0, 3.0])).unwrap();
        let w = g.variable("w", arr1(&[10.0f32, 20.0, 30.0])).unwrap();
        // The new value of v is computed element for element from v (in place), is read
        // again after the assign, and the old v is read after the assign too.
        let v_new = (&v * 2.0).unwrap();
        let set_v = v.assign(&v_new).unwrap();
        let uses_new = (&v_new + 1.0).unwrap();
        let uses_old = (&v * 3.0).unwrap();
        // w's update reads v's old value; w is assigned after v.
        let set_w = w.assign((&w + &v).unwrap()).unwrap();
        let mut sess = Session::with_backend(&g, backend);
        let out = sess
            .run(&[], &[&set_v, &uses_new, &uses_old, &set_w])
            .unwrap();
        assert_eq!(f32s(&out[0]), vec![2.0, 4.0, 6.0], "{backend:?}");
        assert_eq!(f32s(&out[1]), vec![3.0, 5.0, 7.0], "{backend:?}");
        assert_eq!(f32s(&out[2]), vec![3.0, 6.0, 9.0], "{backend:?}");
        assert_eq!(f32s(&out[3]), vec![11.0, 22.0, 33.0], "{backend:?}");
        assert_eq!(f32s(&sess.variables()["v"]), vec![2.0, 4.0, 6.0]);
        assert_eq!(f32s(&sess.variables()["w"]), vec![11.0, 22.0, 33.0]);
    });
}
