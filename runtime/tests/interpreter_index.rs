//! Interpreter tests for indexing ops: gather (axes, batch_dims, repeated and scalar
//! indices, range errors), scatter_add (segment sums, batch_dims, adjointness), top_k,
//! argsort and the slice assignment used by `assign_slice`.

mod interpreter_support;

use flumen_frontend::Value;
use flumen_frontend::op::{Op, SliceDim, SliceSpec};
use flumen_runtime::interpreter::assign_slice;
use interpreter_support::*;

fn gather(params: Value, indices: Value, axis: usize, batch_dims: usize) -> Result<Value, String> {
    try_eval(&Op::Gather { axis, batch_dims }, &[params, indices])
}

fn scatter_add(
    updates: Value,
    indices: Value,
    axis: usize,
    batch_dims: usize,
    dim: usize,
) -> Result<Value, String> {
    try_eval(
        &Op::ScatterAdd {
            axis,
            batch_dims,
            dim,
        },
        &[updates, indices],
    )
}

#[test]
fn gather_rows_with_repeated_indices() {
    let params = iota::<f32>(&[3, 2]);
    let got = gather(params.clone(), vec1(vec![2i32, 0, 2]), 0, 0).expect("in range");
    assert_value(&got, &[3, 2], vec![4.0f32, 5.0, 0.0, 1.0, 4.0, 5.0]);
    // A scalar index removes the axis.
    let got = gather(params.clone(), Value::scalar(1i64), 0, 0).expect("in range");
    assert_value(&got, &[2], vec![2.0f32, 3.0]);
    // No indices, no rows.
    let got = gather(params, arr::<i64>(&[0], vec![]), 0, 0).expect("nothing to check");
    assert_value(&got, &[0, 2], Vec::<f32>::new());
}

#[test]
fn gather_along_an_inner_axis_with_matrix_indices() {
    let params = iota::<i64>(&[2, 3]);
    let indices = arr(&[2, 2], vec![2i64, 0, 1, 1]);
    // out[r, a, b] = params[r, indices[a, b]]
    let got = gather(params, indices, 1, 0).expect("in range");
    assert_value(&got, &[2, 2, 2], vec![2i64, 0, 1, 1, 5, 3, 4, 4]);
}

#[test]
fn gather_with_batch_dims() {
    let params = arr(&[2, 3], vec![10u8, 11, 12, 20, 21, 22]);
    let indices = arr(&[2, 2], vec![2i32, 0, 1, 1]);
    // out[b, j] = params[b, indices[b, j]]
    let got = gather(params, indices, 1, 1).expect("in range");
    assert_value(&got, &[2, 2], vec![12u8, 10, 21, 21]);

    // params[b, m, n] = 6b + 3m + n; out[b, m, j] = params[b, m, indices[b, j]]
    let params = iota::<i32>(&[2, 2, 3]);
    let indices = arr(&[2, 1], vec![2i64, 0]);
    let got = gather(params, indices, 2, 1).expect("in range");
    assert_value(&got, &[2, 2, 1], vec![2i32, 5, 6, 9]);
}

#[test]
fn gather_index_out_of_range_is_an_error_naming_it() {
    let params = iota::<f64>(&[3, 2]);
    let err = gather(params.clone(), vec1(vec![0i32, 3]), 0, 0).unwrap_err();
    assert!(err.contains("index 3") && err.contains("0..3"), "{err}");
    let err = gather(params.clone(), vec1(vec![-1i64]), 0, 0).unwrap_err();
    assert!(err.contains("index -1") && err.contains("0..3"), "{err}");
    let err = gather(params, vec1(vec![i64::MAX]), 1, 0).unwrap_err();
    assert!(
        err.contains(&i64::MAX.to_string()) && err.contains("0..2"),
        "{err}"
    );
    // Even when the output is empty, the index is checked.
    let err = gather(arr::<f32>(&[2, 0], vec![]), vec1(vec![5i32]), 0, 0).unwrap_err();
    assert!(err.contains("index 5"), "{err}");
}

#[test]
fn scatter_add_is_an_unsorted_segment_sum() {
    let updates = vec1(vec![1.0f32, 2.0, 3.0, 4.0, 5.0]);
    let segments = vec1(vec![0i32, 2, 0, 1, 2]);
    let got = scatter_add(updates.clone(), segments.clone(), 0, 0, 3).expect("in range");
    assert_value(&got, &[3], vec![4.0f32, 4.0, 7.0]);
    let got = scatter_add(updates, segments, 0, 0, 4).expect("in range");
    assert_value(&got, &[4], vec![4.0f32, 4.0, 7.0, 0.0]);
    // Whole rows.
    let rows = arr(&[3, 2], vec![1i64, 2, 3, 4, 5, 6]);
    let got = scatter_add(rows, vec1(vec![1i64, 1, 0]), 0, 0, 2).expect("in range");
    assert_value(&got, &[2, 2], vec![5i64, 6, 4, 6]);
    // Integer sums wrap.
    let got = scatter_add(vec1(vec![200u8, 100]), vec1(vec![0i32, 0]), 0, 0, 1).expect("in range");
    assert_value(&got, &[1], vec![44u8]);
    // Nothing to scatter.
    let got =
        scatter_add(arr::<f64>(&[0], vec![]), arr::<i32>(&[0], vec![]), 0, 0, 2).expect("empty");
    assert_value(&got, &[2], vec![0.0f64, 0.0]);
}

#[test]
fn scatter_add_with_batch_dims() {
    let updates = arr(&[2, 2], vec![1i32, 2, 3, 4]);
    let indices = arr(&[2, 2], vec![0i32, 0, 1, 0]);
    // out[b, indices[b, j]] += updates[b, j]
    let got = scatter_add(updates, indices, 1, 1, 2).expect("in range");
    assert_value(&got, &[2, 2], vec![3i32, 0, 4, 3]);
}

#[test]
fn scatter_add_index_out_of_range_is_an_error() {
    let err = scatter_add(vec1(vec![1.0f32]), vec1(vec![3i64]), 0, 0, 3).unwrap_err();
    assert!(err.contains("index 3") && err.contains("0..3"), "{err}");
}

#[test]
fn scatter_add_is_the_adjoint_of_gather() {
    // <gather(p, i), u> == <p, scatter_add(u, i)>
    let params = arr(
        &[2, 3, 2],
        (0..12).map(|x| (x * x % 7) as f64 - 3.0).collect(),
    );
    let indices = arr(&[2, 4], vec![2i32, 0, 2, 1, 1, 1, 0, 2]);
    // Gather's output (axis 1, batch_dims 1) has shape [2, 4, 2].
    let updates = arr(&[2, 4, 2], (0..16).map(|x| (x % 5) as f64 - 1.5).collect());
    let gathered = gather(params.clone(), indices.clone(), 1, 1).expect("in range");
    let scattered = scatter_add(updates.clone(), indices, 1, 1, 3).expect("in range");
    let dot = |a: &Value, b: &Value| {
        a.to_f64_vec()
            .iter()
            .zip(b.to_f64_vec())
            .map(|(x, y)| x * y)
            .sum::<f64>()
    };
    assert_eq!(scattered.shape(), params.shape());
    assert_eq!(dot(&gathered, &updates), dot(&params, &scattered));
}

fn top_k(x: Value, k: usize) -> Value {
    eval(&Op::TopK { k }, &[x])
}

#[test]
fn top_k_orders_largest_first_and_breaks_ties_toward_lower_indices() {
    let x = vec1(vec![3.0f32, 1.0, 3.0, 2.0]);
    assert_value(&top_k(x.clone(), 2), &[2], vec![0i64, 2]);
    assert_value(&top_k(x.clone(), 4), &[4], vec![0i64, 2, 3, 1]);
    assert_value(&top_k(x, 0), &[0], Vec::<i64>::new());
    let x = arr(&[2, 3], vec![1i32, 5, 3, 9, 9, 0]);
    assert_value(&top_k(x, 1), &[2, 1], vec![1i64, 0]);
}

#[test]
fn top_k_counts_nan_as_the_largest() {
    let x = vec1(vec![1.0f64, f64::NAN, 5.0, f64::NAN]);
    assert_value(&top_k(x, 3), &[3], vec![1i64, 3, 2]);
}

fn argsort(x: Value, axis: usize, descending: bool) -> Value {
    eval(&Op::ArgSort { axis, descending }, &[x])
}

#[test]
fn argsort_is_stable_in_both_directions() {
    let x = vec1(vec![3i64, 1, 3, 2, 1]);
    assert_value(&argsort(x.clone(), 0, false), &[5], vec![1i64, 4, 3, 0, 2]);
    assert_value(&argsort(x, 0, true), &[5], vec![0i64, 2, 3, 1, 4]);
    // −0.0 and 0.0 are equal, so they keep index order.
    let z = vec1(vec![0.0f32, -0.0, -1.0]);
    assert_value(&argsort(z.clone(), 0, false), &[3], vec![2i64, 0, 1]);
    assert_value(&argsort(z, 0, true), &[3], vec![0i64, 1, 2]);
}

#[test]
fn argsort_puts_nan_last_ascending_and_first_descending() {
    let x = vec1(vec![2.0f64, f64::NAN, 1.0, f64::NAN]);
    assert_value(&argsort(x.clone(), 0, false), &[4], vec![2i64, 0, 1, 3]);
    assert_value(&argsort(x, 0, true), &[4], vec![1i64, 3, 0, 2]);
}

#[test]
fn argsort_along_the_first_axis() {
    let x = arr(&[3, 2], vec![3u8, 1, 1, 1, 2, 0]);
    assert_value(&argsort(x, 0, false), &[3, 2], vec![1i64, 2, 2, 0, 0, 1]);
    assert_value(
        &argsort(arr::<f32>(&[0, 4], vec![]), 1, true),
        &[0, 4],
        Vec::<i64>::new(),
    );
}

fn spec(dims: &[(usize, i64, usize)]) -> SliceSpec {
    SliceSpec {
        dims: dims
            .iter()
            .map(|&(start, step, len)| SliceDim { start, step, len })
            .collect(),
    }
}

#[test]
fn assign_slice_writes_the_selected_elements() {
    let var = iota::<f32>(&[5]);
    let got = assign_slice(&var, &spec(&[(3, -2, 2)]), &vec1(vec![10.0f32, 20.0])).expect("fits");
    assert_value(&got, &[5], vec![0.0f32, 20.0, 2.0, 10.0, 4.0]);

    let var = Value::zeros(flumen_frontend::DType::I32, &[3, 3]);
    let value = arr(&[2, 2], vec![1i32, 2, 3, 4]);
    let got = assign_slice(&var, &spec(&[(0, 2, 2), (2, -1, 2)]), &value).expect("fits");
    assert_value(&got, &[3, 3], vec![0i32, 2, 1, 0, 0, 0, 0, 4, 3]);
}

#[test]
fn assign_slice_rejects_mismatched_values() {
    let var = iota::<f32>(&[4]);
    let err = assign_slice(&var, &spec(&[(0, 1, 2)]), &vec1(vec![1.0f32])).unwrap_err();
    assert!(err.contains("shape"), "{err}");
    let err = assign_slice(&var, &spec(&[(0, 1, 2)]), &vec1(vec![1i32, 2])).unwrap_err();
    assert!(err.contains("i32") && err.contains("f32"), "{err}");
    let err = assign_slice(&var, &spec(&[(3, 1, 2)]), &vec1(vec![1.0f32, 2.0])).unwrap_err();
    assert!(err.contains("outside"), "{err}");
}
