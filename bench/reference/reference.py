#!/usr/bin/env python3
"""neurocluster's benchmark workloads written in NumPy and scikit-learn: what `neurocluster bench
<workload> --compare` runs beside the engine, with the same shape, to report a ratio.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/reference/reference.py esn --n 50000

Prints one JSON line: the workload, its shape, the best wall time of --reps runs (seconds) and
GFLOP/s by the same operation count the engine reports. Everything is float32, as on the engine.

Workloads (the engine's are in src/bench/workloads.ts; test/bench/reference.test.ts checks that
both compute the same thing, through --check):
  esn         leaky tanh reservoir, x <- (1 - a) x + a tanh(u W_in + x W), driven by a static
              input held for T steps; W normal, a fraction --connectivity of it kept (SciPy CSR
              when sparse), scaled to spectral radius 0.9; W_in uniform in [-1, 1]. Features: the
              last state, N x R.
  esn-seq     the same reservoir driven by a sequence u_1..u_T (N x T x d).
  lif         leaky integrate-and-fire layer over T steps: input spikes Bernoulli(sigmoid(u)),
              v <- v - v/20 + s W_in, a spike where v >= 1, then v <- 0; features: spike counts.
  kmeans      Lloyd K-means (scikit-learn, algorithm="lloyd"), random init, one init, exactly
              --iters iterations (tol = 0), on make_blobs data.
  silhouette  scikit-learn's silhouette_score of N standard-normal points under k random labels.

--check prints, instead of a time, the workload's inputs and result at the given (small) shape as
JSON, so that a test can run the engine's kernel on the same inputs and compare.
"""
import argparse
import json
import time

import numpy as np

SPECTRAL_RADIUS = 0.9
LIF_DECAY = 1.0 / 20.0
LIF_THRESHOLD = 1.0


def timed(work, reps):
    """The best of `reps` wall times of work(), and its last result."""
    best, result = float("inf"), None
    for _ in range(reps):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def reservoir_weights(rng, d, r, connectivity):
    """W_in (d x r) uniform in [-1, 1]; W (r x r) normal with a share `connectivity` kept, at
    spectral radius 0.9. Returns W dense (for --check) and as the run uses it (CSR when sparse)."""
    w_in = rng.uniform(-1.0, 1.0, size=(d, r)).astype(np.float32)
    w = rng.standard_normal((r, r))
    if connectivity < 1.0:
        w = w * (rng.random((r, r)) < connectivity)
    radius = np.max(np.abs(np.linalg.eigvals(w)))
    w = (w * (SPECTRAL_RADIUS / radius)).astype(np.float32)
    if connectivity < 1.0:
        import scipy.sparse

        return w_in, w, scipy.sparse.csr_matrix(w)
    return w_in, w, w


def esn_run(u, w_in, w, steps, leak, sequence):
    n, r = u.shape[0], w_in.shape[1]
    x = np.zeros((n, r), dtype=np.float32)
    held = None if sequence else u @ w_in
    keep = np.float32(1.0 - leak)
    a = np.float32(leak)
    for t in range(steps):
        drive = u[:, t, :] @ w_in if sequence else held
        x = keep * x + a * np.tanh(drive + x @ w)
    return x


def lif_run(probability, w_in, steps, rng):
    n, r = probability.shape[0], w_in.shape[1]
    v = np.zeros((n, r), dtype=np.float32)
    counts = np.zeros((n, r), dtype=np.float32)
    decay = np.float32(LIF_DECAY)
    for _ in range(steps):
        spikes = (rng.random(probability.shape, dtype=np.float32) < probability).astype(np.float32)
        v = v - decay * v + spikes @ w_in
        fired = v >= LIF_THRESHOLD
        counts += fired
        v[fired] = 0.0
    return counts


def listed(a):
    a = np.asarray(a)
    return a.astype(np.float64).ravel().tolist()


def workload(args):
    """(shape, flops, work, check): the timed work and the --check document of one workload."""
    rng = np.random.default_rng(args.seed)
    shape = {"n": args.n, "d": args.d}
    if args.workload in ("esn", "esn-seq"):
        sequence = args.workload == "esn-seq"
        w_in, w_dense, w = reservoir_weights(rng, args.d, args.r, args.connectivity)
        u_shape = (args.n, args.t, args.d) if sequence else (args.n, args.d)
        u = rng.standard_normal(u_shape).astype(np.float32)
        nnz = int(np.count_nonzero(w_dense))
        shape.update(r=args.r, t=args.t, leak=args.leak, connectivity=args.connectivity)

        def work():
            return esn_run(u, w_in, w, args.t, args.leak, sequence)

        def check(out):
            return {"inputs": listed(u), "inputWeights": listed(w_in), "recurrent": listed(w_dense),
                    "nnz": nnz, "out": listed(out)}

        return shape, 2.0 * args.n * args.t * (nnz + args.d * args.r), work, check
    if args.workload == "lif":
        w_in = (0.5 * rng.standard_normal((args.d, args.r))).astype(np.float32)
        u = rng.standard_normal((args.n, args.d)).astype(np.float32)
        if args.check:
            # Probabilities of exactly 0 and 1: the spike trains are then the same whatever the
            # generator, so the engine's counts must equal these exactly.
            u = np.where(u >= 0, np.float32(40.0), np.float32(-40.0))
        probability = (1.0 / (1.0 + np.exp(-u.astype(np.float64)))).astype(np.float32)
        shape.update(r=args.r, t=args.t)

        def work():
            return lif_run(probability, w_in, args.t, np.random.default_rng(args.seed + 1))

        def check(out):
            return {"probabilities": listed(probability), "inputWeights": listed(w_in), "out": listed(out)}

        return shape, 2.0 * args.n * args.t * args.d * args.r, work, check
    if args.workload == "kmeans":
        from sklearn.cluster import KMeans
        from sklearn.datasets import make_blobs

        x, _ = make_blobs(n_samples=args.n, n_features=args.d, centers=args.k, random_state=args.seed)
        x = x.astype(np.float32)
        start = x[rng.choice(args.n, size=args.k, replace=False)]
        shape.update(k=args.k, iters=args.iters)

        def work():
            # --check starts from named centres so that the engine can start from the same ones.
            init = start if args.check else "random"
            return KMeans(args.k, init=init, n_init=1, max_iter=args.iters, tol=0.0, algorithm="lloyd",
                          random_state=args.seed).fit(x)

        def check(model):
            return {"points": listed(x), "start": listed(start), "centers": listed(model.cluster_centers_),
                    "iterations": int(model.n_iter_), "inertia": float(model.inertia_)}

        return shape, 3.0 * args.n * args.k * args.d * args.iters, work, check
    from sklearn.metrics import silhouette_score

    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    labels = rng.integers(0, args.k, size=args.n)
    shape.update(k=args.k)

    def work():
        return silhouette_score(x, labels)

    def check(score):
        return {"points": listed(x), "labels": labels.tolist(), "score": float(score)}

    return shape, 3.0 * args.n * args.n * args.d, work, check


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workload", choices=["esn", "esn-seq", "lif", "kmeans", "silhouette"])
    p.add_argument("--n", type=int, default=50_000, help="rows")
    p.add_argument("--d", type=int, default=4, help="features")
    p.add_argument("--r", type=int, default=256, help="reservoir or layer size")
    p.add_argument("--t", type=int, default=50, help="time steps")
    p.add_argument("--k", type=int, default=16, help="clusters")
    p.add_argument("--iters", type=int, default=20, help="K-means iterations")
    p.add_argument("--leak", type=float, default=0.3, help="leak rate of the reservoir")
    p.add_argument("--connectivity", type=float, default=1.0, help="share of non-zero recurrent weights")
    p.add_argument("--reps", type=int, default=3, help="repetitions; the best is reported")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", action="store_true", help="print inputs and result, not a time")
    args = p.parse_args()
    shape, flops, work, check = workload(args)
    if args.check:
        print(json.dumps({"workload": args.workload, **shape, **check(work())}))
        return
    seconds, _ = timed(work, args.reps)
    print(json.dumps({"workload": args.workload, "impl": "numpy/sklearn", **shape,
                      "seconds": round(seconds, 6), "gflops": round(flops / seconds / 1e9, 3)}))


if __name__ == "__main__":
    main()
