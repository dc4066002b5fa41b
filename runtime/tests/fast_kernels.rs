//! The block-copy kernels (gather, scatter_add, concat, roll, pad, tile, slice,
//! assign_slice) and the partial-selection top_k checked against plain element-by-element
//! reference implementations written here, on random shapes, axes, batch_dims, shifts,
//! paddings and strides; plus the exact error text for bad indices and the tie/NaN order
//! of top_k.

mod interpreter_support;

use flumen_frontend::op::{Op, SliceDim, SliceSpec};
use flumen_frontend::{Scalar, Value};
use flumen_runtime::interpreter::assign_slice;
use interpreter_support::*;

// Test-specific draws on the shared generator (`interpreter_support::Rng`).
impl Rng {
    /// f32 data with many repeats (ties) and no rounding issues.
    fn data(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| (self.range(0, 64) as f32 - 32.0) * 0.375)
            .collect()
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major multi-index of flat position `i` in `shape`.
fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for a in (0..shape.len()).rev() {
        index[a] = i % shape[a];
        i /= shape[a];
    }
    index
}

/// Flat row-major position of `index` in `shape`.
fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}

fn gather_ref(
    p: &[f32],
    ps: &[usize],
    idx: &[i64],
    is: &[usize],
    axis: usize,
    bd: usize,
) -> (Vec<usize>, Vec<f32>) {
    let shape = [&ps[..axis], &is[bd..], &ps[axis + 1..]].concat();
    let ir = is.len() - bd;
    let data = (0..numel(&shape))
        .map(|o| {
            let g = unravel(o, &shape);
            let at = [&g[..bd], &g[axis..axis + ir]].concat();
            let pos = idx[ravel(&at, is)] as usize;
            let src = [&g[..axis], &[pos], &g[axis + ir..]].concat();
            p[ravel(&src, ps)]
        })
        .collect();
    (shape, data)
}

/// A random gather case: params shape, indices shape, axis, batch_dims, indices in range.
fn gather_case(rng: &mut Rng) -> (Vec<usize>, Vec<usize>, usize, usize, Vec<i64>) {
    let rank = rng.range(1, 5);
    let mut ps = rng.shape(rank, 4);
    let axis = rng.range(0, rank);
    ps[axis] = ps[axis].max(1);
    let bd = rng.range(0, axis + 1);
    let extra = rng.range(0, 3);
    let is = [&ps[..bd], &rng.shape(extra, 3)[..]].concat();
    let idx = (0..numel(&is))
        .map(|_| rng.range(0, ps[axis]) as i64)
        .collect();
    (ps, is, axis, bd, idx)
}

#[test]
fn gather_matches_the_reference() {
    let mut rng = Rng(0x1234_5678);
    for _ in 0..400 {
        let (ps, is, axis, bd, idx) = gather_case(&mut rng);
        let p = rng.data(numel(&ps));
        let (shape, want) = gather_ref(&p, &ps, &idx, &is, axis, bd);
        let op = Op::Gather {
            axis,
            batch_dims: bd,
        };
        let got = eval(&op, &[arr(&ps, p.clone()), arr(&is, idx.clone())]);
        assert_value(&got, &shape, want.clone());
        // i32 indices and an integer dtype give the same elements.
        let idx32: Vec<i32> = idx.iter().map(|&i| i as i32).collect();
        let pi: Vec<i64> = p.iter().map(|&x| (x * 8.0) as i64).collect();
        let got = eval(&op, &[arr(&ps, pi), arr(&is, idx32)]);
        let want_i: Vec<i64> = want.iter().map(|&x| (x * 8.0) as i64).collect();
        assert_value(&got, &shape, want_i);
    }
}

#[test]
fn scatter_add_matches_the_reference() {
    let mut rng = Rng(0xfeed_beef);
    for _ in 0..400 {
        let (ps, is, axis, bd, idx) = gather_case(&mut rng);
        let ir = is.len() - bd;
        let us = [&ps[..axis], &is[bd..], &ps[axis + 1..]].concat();
        let u = rng.data(numel(&us));
        // Reference: sum in f64 in row-major order of the updates, round once.
        let mut sums = vec![0.0f64; numel(&ps)];
        for (o, &x) in u.iter().enumerate() {
            let g = unravel(o, &us);
            let at = [&g[..bd], &g[axis..axis + ir]].concat();
            let pos = idx[ravel(&at, &is)] as usize;
            let dst = [&g[..axis], &[pos], &g[axis + ir..]].concat();
            sums[ravel(&dst, &ps)] += f64::from(x);
        }
        let want: Vec<f32> = sums.iter().map(|&s| s as f32).collect();
        let op = Op::ScatterAdd {
            axis,
            batch_dims: bd,
            dim: ps[axis],
        };
        let got = eval(&op, &[arr(&us, u), arr(&is, idx)]);
        assert_value(&got, &ps, want);
    }
}

#[test]
fn bad_indices_keep_their_error_text() {
    let params = arr(&[2, 3], vec![0.0f32; 6]);
    let op = Op::Gather {
        axis: 1,
        batch_dims: 0,
    };
    // The first bad index in row-major order is named, even if a later one is worse.
    let err = try_eval(&op, &[params.clone(), vec1(vec![1i64, -1, 7])]).unwrap_err();
    assert_eq!(
        err,
        "index -1 is out of range for axis 1 of length 3 (valid indices: 0..3)"
    );
    let err = try_eval(&op, &[params, vec1(vec![0i32, 3])]).unwrap_err();
    assert_eq!(
        err,
        "index 3 is out of range for axis 1 of length 3 (valid indices: 0..3)"
    );
    let scatter = Op::ScatterAdd {
        axis: 0,
        batch_dims: 0,
        dim: 4,
    };
    let err = try_eval(
        &scatter,
        &[arr(&[2], vec![1.0f32, 2.0]), vec1(vec![4i64, 0])],
    )
    .unwrap_err();
    assert_eq!(
        err,
        "index 4 is out of range for axis 0 of length 4 (valid indices: 0..4)"
    );
}

#[test]
fn concat_roll_pad_tile_match_the_reference() {
    let mut rng = Rng(0xabcd_ef01);
    for _ in 0..300 {
        let rank = rng.range(1, 5);
        let base = rng.shape(rank, 4);
        let axis = rng.range(0, rank);
        let x = rng.data(numel(&base));

        // concat of 1..4 inputs that differ only along `axis`.
        let parts: Vec<(Vec<usize>, Vec<f32>)> = (0..rng.range(1, 4))
            .map(|_| {
                let mut s = base.clone();
                s[axis] = rng.range(0, 4);
                let d = rng.data(numel(&s));
                (s, d)
            })
            .collect();
        let mut cs = base.clone();
        cs[axis] = parts.iter().map(|(s, _)| s[axis]).sum();
        let want: Vec<f32> = (0..numel(&cs))
            .map(|o| {
                let mut g = unravel(o, &cs);
                let mut part = 0;
                while g[axis] >= parts[part].0[axis] {
                    g[axis] -= parts[part].0[axis];
                    part += 1;
                }
                parts[part].1[ravel(&g, &parts[part].0)]
            })
            .collect();
        let inputs: Vec<Value> = parts.iter().map(|(s, d)| arr(s, d.clone())).collect();
        assert_value(&eval(&Op::Concat { axis }, &inputs), &cs, want);

        // roll by any shift.
        let shift = rng.range(0, 21) as i64 - 10;
        let n = base[axis] as i64;
        let want: Vec<f32> = (0..numel(&base))
            .map(|o| {
                let mut g = unravel(o, &base);
                g[axis] = (g[axis] as i64 - shift).rem_euclid(n) as usize;
                x[ravel(&g, &base)]
            })
            .collect();
        let got = eval(&Op::Roll { shift, axis }, &[arr(&base, x.clone())]);
        assert_value(&got, &base, want);

        // pad with a fill value.
        let paddings: Vec<(usize, usize)> = (0..rank)
            .map(|_| (rng.range(0, 3), rng.range(0, 3)))
            .collect();
        let ps: Vec<usize> = base
            .iter()
            .zip(&paddings)
            .map(|(&d, &(b, a))| b + d + a)
            .collect();
        let want: Vec<f32> = (0..numel(&ps))
            .map(|o| {
                let g = unravel(o, &ps);
                let inside = g
                    .iter()
                    .zip(&paddings)
                    .zip(&base)
                    .all(|((&i, &(b, _)), &d)| i >= b && i < b + d);
                if inside {
                    let src: Vec<usize> = g.iter().zip(&paddings).map(|(&i, p)| i - p.0).collect();
                    x[ravel(&src, &base)]
                } else {
                    -1.5
                }
            })
            .collect();
        let op = Op::Pad {
            paddings,
            value: Scalar::Float(-1.5),
        };
        assert_value(&eval(&op, &[arr(&base, x.clone())]), &ps, want);

        // tile by random multiples.
        let reps: Vec<usize> = (0..rank).map(|_| rng.range(1, 4)).collect();
        let ts: Vec<usize> = base.iter().zip(&reps).map(|(d, r)| d * r).collect();
        let want: Vec<f32> = (0..numel(&ts))
            .map(|o| {
                let g: Vec<usize> = unravel(o, &ts)
                    .iter()
                    .zip(&base)
                    .map(|(i, d)| i % d)
                    .collect();
                x[ravel(&g, &base)]
            })
            .collect();
        assert_value(&eval(&Op::Tile(reps), &[arr(&base, x.clone())]), &ts, want);
    }
}

/// A random valid slice of `shape` (any step sign, possibly empty).
fn random_spec(rng: &mut Rng, shape: &[usize]) -> SliceSpec {
    SliceSpec {
        dims: shape
            .iter()
            .map(|&d| {
                if d == 0 {
                    return SliceDim {
                        start: 0,
                        step: 1,
                        len: 0,
                    };
                }
                let start = rng.range(0, d);
                let step = [1i64, 1, 2, 3, -1, -2][rng.range(0, 6)];
                let room = if step > 0 {
                    (d - 1 - start) / step as usize
                } else {
                    start / (-step) as usize
                };
                SliceDim {
                    start,
                    step,
                    len: rng.range(0, room + 2),
                }
            })
            .collect(),
    }
}

#[test]
fn slice_and_assign_slice_match_the_reference() {
    let mut rng = Rng(0x0bad_cafe);
    for _ in 0..400 {
        let rank = rng.range(0, 5);
        let shape = rng.shape(rank, 5);
        let x = rng.data(numel(&shape));
        let spec = random_spec(&mut rng, &shape);
        let os = spec.out_shape();
        let source = |o: usize| -> usize {
            let g = unravel(o, &os);
            let src: Vec<usize> = g
                .iter()
                .zip(&spec.dims)
                .map(|(&j, d)| (d.start as i64 + j as i64 * d.step) as usize)
                .collect();
            ravel(&src, &shape)
        };
        let want: Vec<f32> = (0..numel(&os)).map(|o| x[source(o)]).collect();
        let got = eval(&Op::Slice(spec.clone()), &[arr(&shape, x.clone())]);
        assert_value(&got, &os, want);

        let value = rng.data(numel(&os));
        let mut want = x.clone();
        for (o, &v) in value.iter().enumerate() {
            want[source(o)] = v;
        }
        let got = assign_slice(&arr(&shape, x), &spec, &arr(&os, value)).expect("valid slice");
        assert_value(&got, &shape, want);
    }
}

/// Reference top_k: a full stable sort, largest first, NaN above everything.
fn top_k_ref(row: &[f64], k: usize) -> Vec<i64> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&i, &j| {
        let key = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        let (a, b) = (row[i], row[j]);
        match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Less,
            (false, true) => std::cmp::Ordering::Greater,
            _ => key(b).partial_cmp(&key(a)).expect("numbers"),
        }
    });
    order.into_iter().take(k).map(|i| i as i64).collect()
}

#[test]
fn top_k_keeps_the_tie_and_nan_order() {
    // NaN first (in index order), then descending; equal values (0.0 and −0.0 too) in
    // index order.
    let x = vec1(vec![1.0f32, f32::NAN, 2.0, -0.0, 2.0, f32::NAN, 0.0, 1.0]);
    let got = eval(&Op::TopK { k: 6 }, &[x]);
    assert_value(&got, &[6], vec![1i64, 5, 2, 4, 0, 7]);
    let x = vec1(vec![3i32, 3, 3, 1, 3]);
    assert_value(&eval(&Op::TopK { k: 2 }, &[x]), &[2], vec![0i64, 1]);

    let mut rng = Rng(0x5eed_1234);
    for _ in 0..200 {
        let rows = rng.range(0, 4);
        let n = rng.range(0, 40);
        let k = rng.range(0, n + 1);
        let mut data: Vec<f32> = rng.data(rows * n).iter().map(|v| v.round()).collect();
        for v in data.iter_mut() {
            if rng.range(0, 10) == 0 {
                *v = f32::NAN;
            }
        }
        let want: Vec<i64> = data
            .chunks(n.max(1))
            .flat_map(|r| top_k_ref(&r.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), k))
            .collect();
        let got = eval(&Op::TopK { k }, &[arr(&[rows, n], data)]);
        assert_value(&got, &[rows, k], want);
    }
    // A long row and a small k: the partial selection path.
    let n = 100_000;
    let data: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32).collect();
    let want = top_k_ref(&data.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(), 5);
    let got = eval(&Op::TopK { k: 5 }, &[arr(&[n], data)]);
    assert_value(&got, &[5], want);
}
