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

def step_case(name, x, c, labels, mind, prev):
    """One fused Lloyd step from the labels `prev`: the sums and counts under the nearest centroids."""
    k, d = c.shape
    sums = np.zeros((k, d)); counts = np.zeros(k)
    np.add.at(sums, labels, x); np.add.at(counts, labels, 1)
    return {"kernel": "kmeansStep", "name": name, "params": {},
            "inputs": {"points": mat(x), "centroids": mat(c), "labels": prev.tolist()},
            "expected": {"sums": sums.ravel().tolist(), "counts": counts.tolist(),
                         "inertia": float(mind.sum()), "changed": int((prev != labels).sum())},
            "tolerance": TOL, "tolerance32": TOL32}

def cluster_sums_case(name, x, lab, k, start, end):
    """Per-cluster sums of Euclidean distances from the rows start..end (silhouette's kernel)."""
    full = np.sqrt(sqdist(x, x))
    expected = np.zeros((end - start, k))
    for j in range(k):
        expected[:, j] = full[start:end][:, lab == j].sum(1)
    return {"kernel": "clusterDistanceSums", "name": name,
            "params": {"k": k, "rowStart": start, "rowEnd": end},
            "inputs": {"points": mat(x), "labels": lab.tolist()},
            "expected": {"out": expected.ravel().tolist()}, "tolerance": TOL, "tolerance32": TOL32}

cases = []
# Each case states its tolerances, relative to max(1, |expected|): `tolerance` for float64
# backends (they agree to ~1e-12), `tolerance32` for backends that compute in float32 (WebGPU).
# Integer outputs (labels, counts, changes) are exact. A spiking case also states `minEqual`,
# the share of outputs that must match (spike counts may differ where float32 rounding differs,
# as with a fused multiply-add on the device); the input-spike case requires all of them.
TOL = 1e-9
TOL32 = 1e-4

for (m, k, n, bias) in [(1, 1, 1, False), (5, 3, 4, True), (17, 9, 6, True), (64, 33, 7, False)]:
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    inputs = {"a": mat(a), "b": mat(b)}
    out = a @ b
    if bias:
        c = rng.standard_normal(n)
        inputs["bias"] = c.tolist()
        out = out + c
    cases.append({"kernel": "matmul", "name": f"{m}x{k}@{k}x{n}{'+bias' if bias else ''}", "params": {},
                  "inputs": inputs, "expected": {"out": mat(out)}, "tolerance": TOL, "tolerance32": TOL32})

for (m, n, d) in [(1, 1, 1), (7, 5, 3), (33, 40, 16)]:
    a, b = rng.standard_normal((m, d)), rng.standard_normal((n, d))
    sq = sqdist(a, b)
    for squared in (True, False):
        cases.append({"kernel": "pairwiseDistances", "name": f"{m}x{n} d{d}{' squared' if squared else ''}",
                      "params": {"squared": squared}, "inputs": {"a": mat(a), "b": mat(b)},
                      "expected": {"out": mat(sq if squared else np.sqrt(sq))}, "tolerance": TOL, "tolerance32": TOL32})

for (n, d, k) in [(1, 1, 1), (50, 2, 3), (300, 8, 7), (257, 5, 16)]:
    x, c = rng.standard_normal((n, d)), rng.standard_normal((k, d))
    dist = sqdist(x, c)
    labels = dist.argmin(1)
    mind = dist.min(1)
    cases.append({"kernel": "kmeansAssign", "name": f"n{n} d{d} k{k}", "params": {},
                  "inputs": {"points": mat(x), "centroids": mat(c)},
                  "expected": {"labels": labels.tolist(), "distances": mind.tolist()}, "tolerance": TOL, "tolerance32": TOL32})
    # Reduce under random labels, some clusters left empty on purpose.
    kk = k + 2
    lab = rng.integers(0, k, n)
    sums = np.zeros((kk, d)); counts = np.zeros(kk)
    np.add.at(sums, lab, x); np.add.at(counts, lab, 1)
    cases.append({"kernel": "kmeansReduce", "name": f"n{n} d{d} k{kk}", "params": {"k": kk},
                  "inputs": {"points": mat(x), "labels": lab.tolist()},
                  "expected": {"sums": sums.ravel().tolist(), "counts": counts.tolist()}, "tolerance": TOL, "tolerance32": TOL32})
    # One fused Lloyd step from previous labels (some of which change).
    prev = np.where(rng.random(n) < 0.5, labels, rng.integers(0, k, n))
    cases.append(step_case(f"n{n} d{d} k{k}", x, c, labels, mind, prev))
    # Per-cluster sums of Euclidean distances over a row range.
    start, end = n // 3, n
    lab = rng.integers(0, k, n)
    cases.append(cluster_sums_case(f"n{n} d{d} k{k} rows {start}..{end}", x, lab, k, start, end))

# Assignment across more than one group of sixteen centroids (the WASM kernel's unit) plus a rest,
# with a centroid repeated in a later group: ties go to the lowest index. Its own generator keeps
# the stream of every other case as it was.
extra = np.random.default_rng(37)
x, c = extra.standard_normal((130, 33)), extra.standard_normal((37, 33))
c[20] = c[3]; c[35] = c[3]
dist = sqdist(x, c)
cases.append({"kernel": "kmeansAssign", "name": "n130 d33 k37 repeated centroids", "params": {},
              "inputs": {"points": mat(x), "centroids": mat(c)},
              "expected": {"labels": dist.argmin(1).tolist(), "distances": dist.min(1).tolist()},
              "tolerance": TOL, "tolerance32": TOL32})

# A Lloyd step and the silhouette's sums over more centroids, points and dimensions than a GPU
# kernel stages in workgroup memory at once (32 x 32), in several blocks of 256 points; their own
# generator, as above.
extra = np.random.default_rng(41)
n, d, k = 600, 40, 70
x, c = extra.standard_normal((n, d)), extra.standard_normal((k, d))
dist = sqdist(x, c)
labels, mind = dist.argmin(1), dist.min(1)
prev = np.where(extra.random(n) < 0.5, labels, extra.integers(0, k, n))
cases.append(step_case(f"n{n} d{d} k{k} tiled", x, c, labels, mind, prev))
n, k = 400, 3
x = extra.standard_normal((n, d))
lab = extra.integers(0, k, n)
cases.append(cluster_sums_case(f"n{n} d{d} k{k} rows 0..{n} tiled", x, lab, k, 0, n))

# ---- Dynamics kernels: the math of ../shared/reference/reference.py, generalized, in float64. ----

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85

def philox(c, k):
    """Philox4x32-10 (Random123); checked against its known-answer vectors in test/core/philox.test.ts."""
    c, k = list(c), list(k)
    for _ in range(10):
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & 0xFFFFFFFF, p1 & 0xFFFFFFFF,
             ((p0 >> 32) ^ c[3] ^ k[1]) & 0xFFFFFFFF, p0 & 0xFFFFFFFF]
        k = [(k[0] + W0) & 0xFFFFFFFF, (k[1] + W1) & 0xFFFFFFFF]
    return c

def csr(w):
    rows, cols = np.nonzero(w)
    ptr = np.zeros(w.shape[0] + 1, dtype=int)
    np.add.at(ptr, rows + 1, 1)
    return {"rowPtr": np.cumsum(ptr).tolist(), "colIdx": cols.tolist(), "values": w[rows, cols].tolist()}

def recurrent_json(w, sparse):
    return {"kind": "csr", "size": w.shape[0], **csr(w)} if sparse else {"kind": "dense", "matrix": mat(w)}

def reservoir_ref(u, dim, steps, seq, w_in, bias, w, leak, times, last, mean, washout):
    n, r = u.shape[0], w_in.shape[1]
    x, acc, kept = np.zeros((n, r)), np.zeros((n, r)), {}
    drive = u @ w_in + bias if not seq else None
    for t in range(steps):
        d = u[:, t * dim:(t + 1) * dim] @ w_in + bias if seq else drive
        x = (1 - leak) * x + leak * np.tanh(d + x @ w)
        if t >= washout:
            acc += x
        kept[t] = x.copy()
    blocks = [kept[t] for t in times] + ([x] if last else []) + ([acc / (steps - washout)] if mean else [])
    return np.hstack(blocks)

for i, (n, dim, r, steps, seq, sparse, leak, times, last, mean, washout) in enumerate([
        (3, 2, 5, 4, False, False, 0.3, [], True, False, 0),
        (4, 3, 8, 6, False, True, 0.5, [], True, True, 2),
        (5, 2, 6, 7, True, False, 0.2, [0, 3, 6], True, True, 1),
        (6, 1, 10, 9, True, True, 1.0, [4], False, True, 0)]):
    u = rng.standard_normal((n, dim * (steps if seq else 1)))
    w_in = rng.uniform(-1, 1, (dim, r))
    bias = rng.uniform(-0.2, 0.2, r)
    w = rng.standard_normal((r, r))
    if sparse:
        w *= rng.random((r, r)) < 0.3
    w *= 0.9 / np.max(np.abs(np.linalg.eigvals(w)))
    out = reservoir_ref(u, dim, steps, seq, w_in, bias, w, leak, times, last, mean, washout)
    cases.append({"kernel": "reservoirRun", "name": f"#{i} n{n} d{dim} R{r} T{steps}{' seq' if seq else ''}{' sparse' if sparse else ''}",
                  "params": {"inputDim": dim, "steps": steps, "sequence": seq, "leak": leak,
                             "readout": {"times": times, "last": last, "mean": mean, "washout": washout}},
                  "inputs": {"inputs": mat(u), "inputWeights": mat(w_in), "bias": bias.tolist(),
                             "recurrent": recurrent_json(w, sparse)},
                  "expected": {"out": mat(out)}, "tolerance": TOL, "tolerance32": TOL32})

def spiking_ref(u, keys, seed, dim, steps, seq, encoding, w_in, bias, w_rec, decay, threshold, reset, refr,
                trace_decay, readout, windows):
    """The spiking run in float32, one rounded operation at a time in the kernels' order:
    current = bias + sum_i d_i W_in[i] (i ascending, zero inputs skipped) + sum_i s_i W[i]
    (i ascending), then v = (v - decay v) + current. NumPy float32 array arithmetic rounds each
    elementwise operation, with no fused multiply-add."""
    f = np.float32
    n, r = u.shape[0], w_in.shape[1]
    u32, w_in, bias = u.astype(f), w_in.astype(f), bias.astype(f)
    w_rec = None if w_rec is None else w_rec.astype(f)
    decay, threshold, reset, trace_decay = f(decay), f(threshold), f(reset), f(trace_decay)
    k = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    out = np.zeros((n, r * windows))
    for s_ in range(n):
        v, rc = np.full(r, reset, dtype=f), np.zeros(r, dtype=int)
        tr, spk = np.zeros(r, dtype=f), np.zeros(r, dtype=f)
        first_seen = np.zeros(r, dtype=bool)
        for t in range(steps):
            win = (t * windows) // steps
            start = -((-win * steps) // windows)
            end = -((-(win + 1) * steps) // windows)
            if t == start:
                first_seen[:] = False
            row = u32[s_, t * dim:(t + 1) * dim] if seq else u32[s_, :dim]
            if encoding == "rate":
                thr = np.floor(np.clip(row.astype(np.float64), 0, 1) * 16777216)
                draws = []
                for b in range(0, dim, 4):
                    draws += philox([keys[s_], t, b >> 2, 0], k)
                d = np.array([1.0 if (draws[i] >> 8) < thr[i] else 0.0 for i in range(dim)], dtype=f)
            else:
                d = row
            cur = bias.copy()
            for i in range(dim):
                if d[i] != 0:
                    cur = cur + d[i] * w_in[i]
            if w_rec is not None:
                for i in range(r):
                    if spk[i] != 0:
                        cur = cur + w_rec[i]
            new = np.zeros(r, dtype=f)
            for j in range(r):
                if rc[j] > 0:
                    rc[j] -= 1
                    v[j] = reset
                else:
                    v[j] = v[j] - decay * v[j]
                    v[j] = v[j] + cur[j]
                    if v[j] >= threshold:
                        new[j] = 1
                        v[j] = reset
                        rc[j] = refr
            spk = new
            tr = tr * trace_decay + spk
            assert tr.dtype == f and v.dtype == f and cur.dtype == f
            base = win * r
            if readout in ("counts", "rates"):
                out[s_, base:base + r] += spk
                if readout == "rates" and end == t + 1:
                    out[s_, base:base + r] /= end - start
            elif readout == "first-spike":
                if t == start:
                    out[s_, base:base + r] = end - start
                for j in range(r):
                    if spk[j] and not first_seen[j]:
                        first_seen[j] = True
                        out[s_, base + j] = t - start
            if readout == "trace" and end == t + 1:
                out[s_, base:base + r] = tr
    return out

def spiking_case(gen, name, n, dim, r, steps, seq, encoding, recurrent, refr, readout, windows, sparse=False,
                 w_in_divisor=1.0):
    """A layer's run on random inputs and weights drawn from `gen` (a recurrent one, dense or CSR)."""
    width = dim * (steps if seq else 1)
    # Rate probabilities are float32 values, as every backend sees them.
    u = (gen.random((n, width)) * 0.6).astype(np.float32).astype(np.float64) if encoding == "rate" \
        else gen.standard_normal((n, width)) * 0.4
    keys = gen.integers(0, 2**32, n).tolist()
    seed = int(gen.integers(0, 2**40))
    w_in = gen.standard_normal((dim, r)) * 0.8 / w_in_divisor
    bias = gen.uniform(0, 0.05, r)
    w_rec = gen.standard_normal((r, r)) * 0.3 * (gen.random((r, r)) < 0.5) if recurrent else None
    decay, threshold, reset, trace_decay = 0.05, 1.0, 0.0, float(np.exp(-1 / 5))
    out = spiking_ref(u, keys, seed, dim, steps, seq, encoding, w_in, bias, w_rec, decay, threshold, reset, refr,
                      trace_decay, readout, windows)
    inputs = {"inputs": mat(u), "inputWeights": mat(w_in), "bias": bias.tolist(), "sampleKeys": keys}
    if recurrent:
        inputs["recurrent"] = recurrent_json(w_rec, sparse=sparse)
    return {"kernel": "spikingRun", "name": name,
            "params": {"inputDim": dim, "steps": steps, "sequence": seq, "encoding": encoding, "seed": seed,
                       "decay": decay, "threshold": threshold, "reset": reset, "refractorySteps": refr,
                       "traceDecay": trace_decay, "readout": readout, "windows": windows},
            "inputs": inputs, "expected": {"out": mat(out)}, "tolerance": TOL, "tolerance32": 1e-5,
            "minEqual": 0.999}

for i, (n, dim, r, steps, seq, encoding, recurrent, refr, readout, windows) in enumerate([
        (4, 3, 5, 30, False, "rate", False, 0, "counts", 1),
        (3, 5, 6, 25, False, "rate", True, 2, "counts", 3),
        (3, 2, 4, 12, True, "current", False, 1, "first-spike", 2),
        (4, 4, 7, 20, False, "current", True, 0, "trace", 4),
        (2, 6, 5, 16, True, "rate", True, 3, "first-spike", 1),
        (3, 3, 6, 21, True, "current", False, 1, "rates", 4)]):
    name = f"#{i} {encoding} {readout} x{windows}{' recurrent' if recurrent else ''}{' seq' if seq else ''}"
    cases.append(spiking_case(rng, name, n, dim, r, steps, seq, encoding, recurrent, refr, readout, windows,
                              sparse=(i % 2 == 1)))

# The input spikes themselves, exactly: identity input weights, no decay, a threshold of 0.5 and
# reset to 0 make each neuron fire exactly when its input spikes, and one window per step reads
# out the whole raster (Philox stream and Bernoulli thresholds, bit for bit).
n, dim, steps = 5, 9, 12
u = (rng.random((n, dim))).astype(np.float32).astype(np.float64)
keys = rng.integers(0, 2**32, n).tolist()
seed = int(rng.integers(0, 2**40))
out = spiking_ref(u, keys, seed, dim, steps, False, "rate", np.eye(dim), np.zeros(dim), None, 0.0, 0.5, 0.0, 0,
                  1.0, "counts", steps)
cases.append({"kernel": "spikingRun", "name": "input spikes, exact",
              "params": {"inputDim": dim, "steps": steps, "sequence": False, "encoding": "rate", "seed": seed,
                         "decay": 0.0, "threshold": 0.5, "reset": 0.0, "refractorySteps": 0,
                         "traceDecay": 1.0, "readout": "counts", "windows": steps},
              "inputs": {"inputs": mat(u), "inputWeights": mat(np.eye(dim)), "bias": [0.0] * dim, "sampleKeys": keys},
              "expected": {"out": mat(out)}, "tolerance": 0, "tolerance32": 0, "minEqual": 1})

# The encoder kernels asked to keep their output on the device (a device backend then hands it
# over as a DeviceMatrix, read back here): the same runs, the same answers.
for c in [c for c in cases if c["kernel"] == "reservoirRun"][2:4] + [c for c in cases if c["kernel"] == "spikingRun"][:3]:
    cases.append({**c, "name": c["name"] + " kept", "params": {**c["params"], "keep": True}})

# A spiking readout multiplied by its unit (rates in Hz): the same run, every value times 1000.
rates = next(c for c in cases if c["kernel"] == "spikingRun" and c["params"]["readout"] == "rates")
scaled = np.asarray(rates["expected"]["out"]["data"]) * 1000.0
cases.append({**rates, "name": rates["name"] + " in Hz", "params": {**rates["params"], "scale": 1000.0},
              "expected": {"out": {**rates["expected"]["out"], "data": scaled.tolist()}}})

# Layers without recurrence whose inputs over all steps are more than a GPU kernel stages at
# once (2,048 values): their steps run in several runs, windows across the runs' edges; their own
# generator, so every case above keeps its stream.
extra = np.random.default_rng(43)
for (n, dim, r, steps, seq, encoding, refr, readout, windows) in [
        (3, 100, 6, 30, False, "rate", 1, "counts", 3),
        (2, 90, 5, 40, True, "current", 1, "first-spike", 3),
        (2, 70, 4, 64, True, "rate", 0, "trace", 4)]:
    name = f"{encoding} {readout} x{windows}{' seq' if seq else ''} d{dim} T{steps} in runs"
    cases.append(spiking_case(extra, name, n, dim, r, steps, seq, encoding, False, refr, readout, windows,
                              w_in_divisor=np.sqrt(dim / 4)))

# Column moments (population variance), over all rows or the rows in a given order; a constant
# column has variance 0, and a column far from 0 checks the centred second pass.
for (n, d, ordered) in [(1, 1, False), (7, 3, True), (300, 5, False), (1500, 70, True)]:
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d) + rng.uniform(-5, 5, d)
    x[:, 0] = 2.5
    if d > 1:
        x[:, 1] += 40
    inputs = {"m": mat(x)}
    if ordered:
        inputs["order"] = rng.permutation(n).tolist()
    cases.append({"kernel": "columnMoments", "name": f"n{n} d{d}{' ordered' if ordered else ''}", "params": {},
                  "inputs": inputs, "expected": {"means": x.mean(0).tolist(), "variances": x.var(0).tolist()},
                  "tolerance": TOL, "tolerance32": TOL32})

# The assembled feature matrix: each block's kept columns, centred and scaled, side by side, rows
# in the given order.
for (n, widths, ordered) in [(1, [1], False), (9, [4, 3], True), (260, [6, 1, 5], True), (70, [5, 8], False)]:
    blocks, params, out = [], [], []
    order = rng.permutation(n) if ordered else np.arange(n)
    for w in widths:
        x = rng.standard_normal((n, w)) * 2 + 1
        keep = sorted(rng.choice(w, size=max(1, w - 1), replace=False).tolist())
        means = rng.standard_normal(len(keep)).tolist()
        scale = float(rng.uniform(0.1, 3))
        blocks.append(x)
        params.append({"keep": keep, "means": means, "scale": scale})
        out.append((x[order][:, keep] - np.asarray(means)) * scale)
    inputs = {f"block{b}": mat(x) for b, x in enumerate(blocks)}
    if ordered:
        inputs["order"] = order.tolist()
    cases.append({"kernel": "assembleBlocks", "name": f"n{n} blocks {'+'.join(map(str, widths))}{' ordered' if ordered else ''}",
                  "params": {"blocks": params}, "inputs": inputs, "expected": {"out": mat(np.hstack(out))},
                  "tolerance": TOL, "tolerance32": TOL32})

with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump({"generator": "test/conformance/make_cases.py", "numpy": np.__version__, "cases": cases}, f)
    f.write("\n")
print(f"{len(cases)} cases")
