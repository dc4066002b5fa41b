"""Regenerates mnist_5k_permutation.txt: the fixed split of mnist_5k.csv.gz used by Flumen and by
the peer benchmarks (first 4000 indices = train, last 1000 = test)."""
import numpy as np

perm = np.random.default_rng(0).permutation(5000)
with open("mnist_5k_permutation.txt", "w") as f:
    f.write(" ".join(map(str, perm)) + "\n")
