//! A run must not copy the graph: `Graph::def()` clones every constant and variable
//! initial value, and `Session::run` once called it per run on the interpreter and GPU
//! paths (the 8192² GPU GEMM benchmark spent 375 ms per run copying its two 256 MiB
//! initial values). A counting allocator bounds the bytes a steady-state run allocates on
//! a graph that holds a 16 MiB initial value the fetch does not need.

use flumen::{Backend, DType, Graph, Session, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BIG: usize = 4 << 20; // f32 elements: 16 MiB

fn bytes_per_run(backend: Backend) -> usize {
    let g = Graph::new();
    let _big = g
        .variable("big", Value::from_vec(&[BIG], vec![0.5f32; BIG]).unwrap())
        .unwrap();
    let x = g.placeholder("x", DType::F32, &[4]).unwrap();
    let y = (&x * &x).unwrap();
    let mut sess = Session::with_backend(&g, backend);
    let feed = || Value::from_vec(&[4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    sess.run(&[(&x, feed())], &[&y]).unwrap();
    let runs = 5;
    let before = BYTES.load(Ordering::Relaxed);
    for _ in 0..runs {
        let out = sess.run(&[(&x, feed())], &[&y]).unwrap();
        assert_eq!(
            out[0].as_f32().unwrap().as_slice().unwrap(),
            [1.0, 4.0, 9.0, 16.0]
        );
    }
    (BYTES.load(Ordering::Relaxed) - before) / runs
}

#[test]
fn a_run_does_not_copy_the_graph() {
    for backend in [Backend::Interpreter, Backend::Compiled] {
        let per_run = bytes_per_run(backend);
        assert!(
            per_run < 1 << 20,
            "{backend:?}: a run allocated {per_run} bytes; the graph's 16 MiB initial value \
             must not be copied"
        );
    }
}
