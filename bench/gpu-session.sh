#!/usr/bin/env bash
# The GPU proof in one command, for a lent GPU machine (no Node.js, no network, at most 600 s a
# command): every measurement of docs/benchmarks.md's GPU section, each step under its own time
# limit so that a slow one cannot take the others' time, its output in a file of its own.
#
# Prepared here first (docs/benchmarks.md, "How it was run"):
#   ../shared/gpu/pack.sh bench/gpu.ts
#   cp ../shared/reference/reference_torch.py .gpu-pack/ && cp -r ../shared/data/ts .gpu-pack/ts
#   mkdir -p .gl && (cd .gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
#   node dist/bench/hybrid-labels.js --n 1000000 --backend wasm --out .gpu-data/hybrid-1000000.i32
#   bash bench/gpu-session.sh --check     # the same steps at small sizes, on SwiftShader, here
# There, carrying .gpu-pack, .gl and .gpu-data:
#   bash bench/gpu-session.sh             # writes into $OUT (else gpu-out/)
#
# Files: nvidia-smi.txt, <step>.jsonl (the bench's JSON lines), <step>.err, and steps.jsonl (each
# step's exit status and seconds; 124 is a step cut off by its limit, its lines so far kept). The
# check takes about 6 minutes on SwiftShader; its agreement step is cut off after a few sets.
set -u
check=0
[ "${1:-}" = --check ] && check=1
out=${OUT:-gpu-out}
mkdir -p "$out"

if [ "$check" = 1 ]; then
  export VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
  n=200 silhouette_n=2000 hybrid_n=400 scale_n=1000 reps=1 torch=() reference=()
else
  # The NVIDIA Vulkan driver needs the GL vendor-neutral dispatch libraries these machines lack.
  if [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  export VK_ICD_FILENAMES=${VK_ICD_FILENAMES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
  n=1000000 silhouette_n=100000 hybrid_n=1000000 scale_n=10000000 reps=3
  torch=(--torch .gpu-pack/reference_torch.py)
  reference=()
  [ -f .gpu-data/hybrid-1000000.i32 ] && reference=(--hybrid-reference .gpu-data/hybrid-1000000.i32)
fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$out/nvidia-smi.txt"

# step NAME LIMIT_SECONDS ARGS...: one run of the bundle under `timeout`.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  timeout "$limit" bash .gpu-pack/run.sh "$@" > "$out/$name.jsonl" 2> "$out/$name.err"
  rc=$?
  echo "{\"step\":\"$name\",\"rc\":$rc,\"seconds\":$(($(date +%s) - start))}" | tee -a "$out/steps.jsonl"
}

# 570 s in all, within one command's 600.
step kernels 170 ${torch[@]+"${torch[@]}"} --n "$n" --reps "$reps" --workloads esn,esn-sparse,lif,kmeans
if [ "$check" = 1 ]; then
  step silhouette 40 --silhouette-n "$silhouette_n" --reps 1 --workloads silhouette
else
  step silhouette 40 --torch-silhouette bench/silhouette_torch.py --silhouette-n "$silhouette_n" --reps 1 \
    --workloads silhouette
fi
step hybrid 80 --workloads '' --hybrid-n "$hybrid_n" ${reference[@]+"${reference[@]}"}
step scale 190 --workloads '' --scale-n "$scale_n"
step agreement 90 --workloads '' --agreement .gpu-pack/ts
