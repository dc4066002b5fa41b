//! Power iteration clustering on the sparklyr post's two circles (MODELS.md §8): 80 points on
//! the unit circle and 80 on the circle of radius 4, Gaussian similarities, `k = 2`,
//! 10 iterations from the degree vector. Prints the degrees, the final values of `v`, the
//! first and last assignments (as the post shows them) and whether the circles are separated,
//! and draws the points coloured by cluster to `out/pic_circles.png`.
//!
//! ```sh
//! cargo run --release --example pic_circles -- [--out DIR]
//! ```

use flumen::models::pic::{Init, PicConfig, power_iteration_clustering, two_circles};
use std::process::ExitCode;

fn run(out_dir: &str) -> flumen::Result<bool> {
    let (points, edges) = two_circles(80);
    let config = PicConfig {
        k: 2,
        max_iter: 10,
        init: Init::Degree,
        ..PicConfig::default()
    };
    let r = power_iteration_clustering(points.len(), &edges, &config)?;
    println!(
        "degrees: inner {:.6}, outer {:.6}",
        r.degrees[0], r.degrees[80]
    );
    println!(
        "after {} iterations: v inner {:.6e}, outer {:.6e}",
        r.iterations, r.v[0], r.v[80]
    );
    for &(id, c) in r.assignments.iter().take(5).chain(&r.assignments[156..]) {
        println!("id {id:>3} → cluster {c}");
    }
    let labels: Vec<usize> = r.assignments.iter().map(|&(_, c)| c).collect();
    let separated = labels[..80].iter().all(|&c| c == labels[0])
        && labels[80..].iter().all(|&c| c == labels[80])
        && labels[0] != labels[80];
    println!("circles separated exactly: {separated}");
    std::fs::create_dir_all(out_dir).map_err(|e| flumen::GraphError::Io {
        path: out_dir.to_string(),
        msg: e.to_string(),
    })?;
    let path = format!("{out_dir}/pic_circles.png");
    flumen::plot::scatter(
        &path,
        "power iteration clustering (k = 2)",
        &points,
        &labels,
    )?;
    println!("wrote {path}");
    Ok(separated)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out_dir = match args.as_slice() {
        [] => "out".to_string(),
        [flag, dir] if flag == "--out" => dir.clone(),
        _ => {
            eprintln!("usage: pic_circles [--out DIR]");
            return ExitCode::from(2);
        }
    };
    match run(&out_dir) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: the circles were not separated");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
