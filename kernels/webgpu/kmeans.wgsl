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
// Centroids are staged in workgroup memory, TC centroids x TD dimensions at a time, laid out
// dimension-major so that one vec4 load gives four centroids' values of one dimension.
const TC: u32 = 32u;
const TD: u32 = 32u;
var<workgroup> tile_c: array<vec4f, TC * TD / 4u>;

// Nearest centroid of point `row` (ties to the lowest index) and the squared distance to it.
// Every thread of the workgroup calls it (it stages the centroids with barriers): a thread past
// the points passes any valid row and ignores the answer. Each distance adds its squared
// differences in dimension order, as the loop over one centroid at a time did, so the labels and
// distances are those of that loop; what changed is where the centroids are read from: workgroup
// memory, once per workgroup, instead of global memory by every thread.
fn nearest(row: u32, li: u32) -> vec2f {
  var best = 0u;
  var best_dist = 3.4028234e38;
  for (var c0 = 0u; c0 < p.k; c0 += TC) {
    // Zeroed explicitly on every pass: a bare declaration inside the loop kept the last pass's sums
    // on SwiftShader.
    var acc = array<vec4f, TC / 4u>();
    for (var t0 = 0u; t0 < p.d; t0 += TD) {
      workgroupBarrier();
      // A thread writes whole vectors: four centroids' values of one dimension.
      for (var v = li; v < TC * TD / 4u; v += WG) {
        let t = t0 + v / (TC / 4u);
        let c = c0 + (v % (TC / 4u)) * 4u;
        var q = vec4f(0.0);
        for (var r = 0u; r < 4u; r++) {
          if (c + r < p.k && t < p.d) { q[r] = centroids[(c + r) * p.d + t]; }
        }
        tile_c[v] = q;
      }
      workgroupBarrier();
      let dims = min(TD, p.d - t0);
      for (var t = 0u; t < dims; t++) {
        let x = vec4f(points[row * p.d + t0 + t]);
        for (var j = 0u; j < TC / 4u; j++) {
          let diff = x - tile_c[t * (TC / 4u) + j];
          acc[j] += diff * diff;
        }
      }
    }
    for (var j = 0u; j < TC; j++) {
      let s = acc[j / 4u][j % 4u];
      if (c0 + j < p.k && s < best_dist) {
        best_dist = s;
        best = c0 + j;
      }
    }
  }
  return vec2f(bitcast<f32>(best), best_dist);
}

@compute @workgroup_size(256)
fn assign(
  @builtin(global_invocation_id) gid: vec3u,
  @builtin(num_workgroups) nwg: vec3u,
  @builtin(local_invocation_index) li: u32,
) {
  let i = gid.x + gid.y * nwg.x * WG;
  let r = nearest(min(i, p.n - 1u), li);
  if (i < p.n) {
    labels[i] = i32(bitcast<u32>(r.x));
    distances[i] = r.y;
  }
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
    let r = nearest(min(i, p.n - 1u), li);
    if (i < p.n) {
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
