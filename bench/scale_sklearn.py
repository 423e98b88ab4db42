#!/usr/bin/env python3
"""The scikit-learn pipeline a user would write for the scale bench (bench/scale.ts): load the NPY
file, StandardScaler, KMeans(n_init='auto'), labels written one per line. Prints one JSON object:
the labels' adjusted Rand index against the true clusters (an int32 NPY) and the seconds of each
step. Run it as the bench does, for a fair reference:
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/scale_sklearn.py X.npy Y.npy --k 8
"""
import argparse, json, time
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("truth")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels-out")
    a = p.parse_args()
    t0 = time.perf_counter()
    x = np.load(a.data)
    t1 = time.perf_counter()
    x = StandardScaler().fit_transform(x)
    t2 = time.perf_counter()
    labels = KMeans(n_clusters=a.k, n_init="auto", random_state=a.seed).fit_predict(x)
    t3 = time.perf_counter()
    if a.labels_out:
        np.savetxt(a.labels_out, labels, fmt="%d", header="label", comments="")
    t4 = time.perf_counter()
    ari = adjusted_rand_score(np.load(a.truth), labels)
    print(json.dumps({"ari": ari, "seconds": {"load": t1 - t0, "scale": t2 - t1, "kmeans": t3 - t2, "write": t4 - t3}}))


if __name__ == "__main__":
    main()
