// K-means: the fused assignment (distance + argmin) and a Lloyd step that also reduces, so the
// host reads back only the per-cluster sums, counts, the objective and the number of changes.

struct Params {
  n: u32,
  d: u32,
  k: u32,
  groups: u32,   // workgroups of the step; each reduces blocks g, g + groups, ...
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> centroids: array<f32>;
@group(0) @binding(3) var<storage, read_write> labels: array<i32>;
@group(0) @binding(4) var<storage, read_write> distances: array<f32>;
// Per workgroup: k x d sums, then the objective (f32); k counts, then the changes (u32).
@group(0) @binding(5) var<storage, read_write> partial_f: array<f32>;
@group(0) @binding(6) var<storage, read_write> partial_u: array<u32>;

const WG: u32 = 256u;
const MAX_K: u32 = 1024u;

// Nearest centroid of point i (ties to the lowest index) and the squared distance to it.
fn nearest(i: u32) -> vec2f {
  var best = 0u;
  var best_dist = 3.4028234e38;
  for (var c = 0u; c < p.k; c++) {
    var s = 0.0;
    for (var t = 0u; t < p.d; t++) {
      let diff = points[i * p.d + t] - centroids[c * p.d + t];
      s += diff * diff;
    }
    if (s < best_dist) {
      best_dist = s;
      best = c;
    }
  }
  return vec2f(bitcast<f32>(best), best_dist);
}

@compute @workgroup_size(256)
fn assign(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let r = nearest(i);
  labels[i] = i32(bitcast<u32>(r.x));
  distances[i] = r.y;
}

var<workgroup> count: array<atomic<u32>, MAX_K>;
var<workgroup> offset: array<u32, MAX_K>;
var<workgroup> order: array<u32, WG>;
var<workgroup> scratch_f: array<f32, WG>;
var<workgroup> scratch_u: array<u32, WG>;

// Adds the points of one block of WG points into this workgroup's per-cluster sums and counts
// (`label` of this thread's point, `valid` if it exists). The block's points are first ordered by
// cluster (a counting sort in workgroup memory), so the thread owning sum (c, t) walks only
// cluster c's points: n x d additions in all, not n x k x d.
fn reduce_block(g: u32, block: u32, li: u32, label: u32, valid: bool) {
  let kd = p.k * p.d;
  for (var c = li; c < p.k; c += WG) { atomicStore(&count[c], 0u); }
  workgroupBarrier();
  var pos = 0u;
  if (valid) { pos = atomicAdd(&count[label], 1u); }
  workgroupBarrier();
  if (li == 0u) {
    var run = 0u;
    for (var c = 0u; c < p.k; c++) {
      offset[c] = run;
      run += atomicLoad(&count[c]);
    }
  }
  workgroupBarrier();
  if (valid) { order[offset[label] + pos] = li; }
  workgroupBarrier();
  for (var s = li; s < kd; s += WG) {
    let c = s / p.d;
    let t = s % p.d;
    let first = offset[c];
    let last = first + atomicLoad(&count[c]);
    var sum = 0.0;
    for (var q = first; q < last; q++) { sum += points[(block * WG + order[q]) * p.d + t]; }
    partial_f[g * (kd + 1u) + s] += sum;
  }
  for (var c = li; c < p.k; c += WG) { partial_u[g * (p.k + 1u) + c] += atomicLoad(&count[c]); }
  workgroupBarrier();
}

fn clear_partials(g: u32, li: u32) {
  let kd = p.k * p.d;
  for (var s = li; s <= kd; s += WG) { partial_f[g * (kd + 1u) + s] = 0.0; }
  for (var c = li; c <= p.k; c += WG) { partial_u[g * (p.k + 1u) + c] = 0u; }
}

// Per-cluster sums and counts of the points under the labels given (mini-batch K-means).
@compute @workgroup_size(256)
fn reduce(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let g = wg.x;
  clear_partials(g, li);
  let blocks = (p.n + WG - 1u) / WG;
  for (var block = g; block < blocks; block += p.groups) {
    let i = block * WG + li;
    var label = 0u;
    if (i < p.n) { label = u32(labels[i]); }
    reduce_block(g, block, li, label, i < p.n);
  }
}

// One Lloyd pass over the points of this workgroup's blocks: assigns each point, counts the
// labels that changed, and reduces each block into per-cluster sums.
@compute @workgroup_size(256)
fn step(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let g = wg.x;
  let kd = p.k * p.d;
  let stride_f = kd + 1u;
  let stride_u = p.k + 1u;
  clear_partials(g, li);
  var objective = 0.0;
  var changed = 0u;
  let blocks = (p.n + WG - 1u) / WG;
  for (var block = g; block < blocks; block += p.groups) {
    let i = block * WG + li;
    var label = 0u;
    if (i < p.n) {
      let r = nearest(i);
      label = bitcast<u32>(r.x);
      if (labels[i] != i32(label)) { changed += 1u; }
      labels[i] = i32(label);
      objective += r.y;
    }
    reduce_block(g, block, li, label, i < p.n);
  }
  // The workgroup's objective and changes, by tree reduction.
  scratch_f[li] = objective;
  scratch_u[li] = changed;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (li < half) {
      scratch_f[li] += scratch_f[li + half];
      scratch_u[li] += scratch_u[li + half];
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    partial_f[g * stride_f + kd] = scratch_f[0];
    partial_u[g * stride_u + p.k] = scratch_u[0];
  }
}

// Sums the workgroups' partials: thread s adds entry s of every workgroup (compensated for the
// floats) into k x d + 1 floats of result_f and k + 1 integers of result_u, which the host
// clears once per Lloyd pass, so chunks of points add up.
@group(0) @binding(7) var<storage, read_write> result_f: array<f32>;
@group(0) @binding(8) var<storage, read_write> result_u: array<u32>;

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3u) {
  let s = gid.x;
  let stride_f = p.k * p.d + 1u;
  let stride_u = p.k + 1u;
  if (s < stride_f) {
    var sum = 0.0;
    var comp = 0.0;
    for (var g = 0u; g < p.groups; g++) {
      let y = partial_f[g * stride_f + s] - comp;
      let next = sum + y;
      comp = (next - sum) - y;
      sum = next;
    }
    result_f[s] += sum;
  }
  if (s < stride_u) {
    var total = 0u;
    for (var g = 0u; g < p.groups; g++) { total += partial_u[g * stride_u + s]; }
    result_u[s] += total;
  }
}
