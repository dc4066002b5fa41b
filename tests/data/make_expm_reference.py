"""Generate tests/data/expm_reference.txt: 200 random matrices and scipy.linalg.expm of each.

MODELS.md §3: n in {2..16}, entries N(0, sigma^2/n), sigma in {0.1, 1, 5, 20}; 50 matrices per
sigma, n cycling through 2..16. Values are written with repr() (shortest round-trip), so the
Rust test reads exactly the matrices scipy saw.

Run once (needs numpy and scipy; the output is committed):
    /tmp/peers/bin/python tests/data/make_expm_reference.py
"""

import os

import numpy as np
import scipy
import scipy.linalg

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expm_reference.txt")


def main():
    rng = np.random.default_rng(20261127)
    lines = [
        f"# expm reference: numpy {np.__version__}, scipy {scipy.__version__}, seed 20261127",
        "# per case: 'case <k> n <n> sigma <s>', then n rows of A, then n rows of expm(A)",
    ]
    k = 0
    for sigma in (0.1, 1.0, 5.0, 20.0):
        for j in range(50):
            n = 2 + (j % 15)
            a = rng.normal(0.0, sigma / np.sqrt(n), size=(n, n))
            e = scipy.linalg.expm(a)
            lines.append(f"case {k} n {n} sigma {sigma!r}")
            for m in (a, e):
                for row in m:
                    lines.append(" ".join(repr(float(v)) for v in row))
            k += 1
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {k} cases to {OUT}")


if __name__ == "__main__":
    main()
