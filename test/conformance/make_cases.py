#!/usr/bin/env python3
"""Makes the kernel conformance cases with NumPy, in float64, so that the expected values never
come from the JS backend that the other backends are checked against.

    /usr/bin/python3 test/conformance/make_cases.py    # writes test/conformance/cases.json

Each case: {kernel, name, params, inputs, expected, tolerance}. Matrices are {rows, cols, data}.
"""
import json, os
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261127)

def mat(a):
    a = np.asarray(a, dtype=np.float64)
    return {"rows": a.shape[0], "cols": a.shape[1], "data": a.ravel().tolist()}

def sqdist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

cases = []
# Relative tolerances: float64 backends agree to ~1e-12; float32 device backends get looser ones
# from the suite itself (it multiplies by the backend's precision).
TOL = 1e-9

for (m, k, n, bias) in [(1, 1, 1, False), (5, 3, 4, True), (17, 9, 6, True), (64, 33, 7, False)]:
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    inputs = {"a": mat(a), "b": mat(b)}
    out = a @ b
    if bias:
        c = rng.standard_normal(n)
        inputs["bias"] = c.tolist()
        out = out + c
    cases.append({"kernel": "matmul", "name": f"{m}x{k}@{k}x{n}{'+bias' if bias else ''}", "params": {},
                  "inputs": inputs, "expected": {"out": mat(out)}, "tolerance": TOL})

for (m, n, d) in [(1, 1, 1), (7, 5, 3), (33, 40, 16)]:
    a, b = rng.standard_normal((m, d)), rng.standard_normal((n, d))
    sq = sqdist(a, b)
    for squared in (True, False):
        cases.append({"kernel": "pairwiseDistances", "name": f"{m}x{n} d{d}{' squared' if squared else ''}",
                      "params": {"squared": squared}, "inputs": {"a": mat(a), "b": mat(b)},
                      "expected": {"out": mat(sq if squared else np.sqrt(sq))}, "tolerance": TOL})

for (n, d, k) in [(1, 1, 1), (50, 2, 3), (300, 8, 7), (257, 5, 16)]:
    x, c = rng.standard_normal((n, d)), rng.standard_normal((k, d))
    dist = sqdist(x, c)
    labels = dist.argmin(1)
    mind = dist.min(1)
    cases.append({"kernel": "kmeansAssign", "name": f"n{n} d{d} k{k}", "params": {},
                  "inputs": {"points": mat(x), "centroids": mat(c)},
                  "expected": {"labels": labels.tolist(), "distances": mind.tolist()}, "tolerance": TOL})
    # Reduce under random labels, some clusters left empty on purpose.
    kk = k + 2
    lab = rng.integers(0, k, n)
    sums = np.zeros((kk, d)); counts = np.zeros(kk)
    np.add.at(sums, lab, x); np.add.at(counts, lab, 1)
    cases.append({"kernel": "kmeansReduce", "name": f"n{n} d{d} k{kk}", "params": {"k": kk},
                  "inputs": {"points": mat(x), "labels": lab.tolist()},
                  "expected": {"sums": sums.ravel().tolist(), "counts": counts.tolist()}, "tolerance": TOL})
    # One fused Lloyd step from previous labels (some of which change).
    prev = np.where(rng.random(n) < 0.5, labels, rng.integers(0, k, n))
    sums = np.zeros((k, d)); counts = np.zeros(k)
    np.add.at(sums, labels, x); np.add.at(counts, labels, 1)
    cases.append({"kernel": "kmeansStep", "name": f"n{n} d{d} k{k}", "params": {},
                  "inputs": {"points": mat(x), "centroids": mat(c), "labels": prev.tolist()},
                  "expected": {"labels": labels.tolist(), "sums": sums.ravel().tolist(), "counts": counts.tolist(),
                               "inertia": float(mind.sum()), "changed": int((prev != labels).sum())},
                  "tolerance": TOL})
    # Per-cluster sums of Euclidean distances over a row range (silhouette's kernel).
    start, end = n // 3, n
    full = np.sqrt(sqdist(x, x))
    lab = rng.integers(0, k, n)
    expected = np.zeros((end - start, k))
    for j in range(k):
        expected[:, j] = full[start:end][:, lab == j].sum(1)
    cases.append({"kernel": "clusterDistanceSums", "name": f"n{n} d{d} k{k} rows {start}..{end}",
                  "params": {"k": k, "rowStart": start, "rowEnd": end},
                  "inputs": {"points": mat(x), "labels": lab.tolist()},
                  "expected": {"out": expected.ravel().tolist()}, "tolerance": TOL})

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump({"generator": "test/conformance/make_cases.py", "numpy": np.__version__, "cases": cases}, f)
    f.write("\n")
print(f"{len(cases)} cases")
