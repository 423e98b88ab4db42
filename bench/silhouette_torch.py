#!/usr/bin/env python3
"""Exact silhouette in PyTorch, the reference of the GPU bench's `silhouette` workload (which
../shared/reference/reference_torch.py does not have): N standard-normal points in d dimensions
under k random labels, float32 with TF32 off. Rows go in blocks: the block's distances to every
point (torch.cdist), then each cluster's sum of them by one matrix product with the one-hot labels.
Prints one JSON object: the best wall time over --reps runs after one warm-up, synchronised.
  python3 bench/silhouette_torch.py --n 1000000 --d 16 --k 16
"""
import argparse, json, time
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--block", type=int, default=4096)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator(device="cpu").manual_seed(a.seed)
    x = torch.randn(a.n, a.d, generator=g, dtype=torch.float32).to(dev)
    labels = torch.randint(0, a.k, (a.n,), generator=g).to(dev)
    onehot = torch.nn.functional.one_hot(labels, a.k).to(torch.float32)
    counts = onehot.sum(0)

    def run():
        total = torch.zeros((), dtype=torch.float64, device=dev)
        for s in range(0, a.n, a.block):
            rows, own = x[s : s + a.block], labels[s : s + a.block]
            sums = torch.cdist(rows, x) @ onehot  # block x k
            mine = sums.gather(1, own[:, None])[:, 0]
            size = counts[own]
            inner = mine / (size - 1).clamp(min=1)
            other = (sums / counts).scatter(1, own[:, None], float("inf")).min(1).values
            score = (other - inner) / torch.maximum(inner, other)
            total += torch.where(size > 1, score, torch.zeros_like(score)).sum(dtype=torch.float64)
        return total / a.n

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    run(); sync()
    best = float("inf")
    for _ in range(a.reps):
        t0 = time.perf_counter(); value = run(); sync()
        best = min(best, time.perf_counter() - t0)
    flops = 3.0 * a.n * a.n * a.d + 2.0 * a.n * a.n * a.k
    print(json.dumps({"workload": "silhouette", "impl": f"torch-{dev.type}", "n": a.n, "d": a.d, "k": a.k,
                      "seconds": best, "gflops": flops / best / 1e9, "silhouette": float(value),
                      "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"}))


if __name__ == "__main__":
    main()
