// Distance kernels: blocked pairwise distances, and per-cluster sums of distances (silhouette).

struct Params {
  m: u32,         // rows of a (pairwise) or rows of the range (cluster sums)
  n: u32,         // rows of b (pairwise) or all points (cluster sums)
  d: u32,
  flag: u32,      // pairwise: 1 = squared; cluster sums: first row of the range
  k: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> index: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const T: u32 = 16u;
var<workgroup> tile_a: array<f32, 256>; // T rows of a x T dims
var<workgroup> tile_b: array<f32, 256>; // T rows of b x T dims

// out[i][j] = |a_i - b_j| (squared when p.flag is 1); a 16 x 16 block per workgroup, dims in tiles.
@compute @workgroup_size(16, 16)
fn pairwise(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = wg.y * T + lid.y;
  let j = wg.x * T + lid.x;
  var s = 0.0;
  for (var t0 = 0u; t0 < p.d; t0 += T) {
    let ra = wg.y * T + lid.y;
    let rb = wg.x * T + lid.y;
    let t = t0 + lid.x;
    var va = 0.0;
    if (ra < p.m && t < p.d) { va = a[ra * p.d + t]; }
    var vb = 0.0;
    if (rb < p.n && t < p.d) { vb = b[rb * p.d + t]; }
    tile_a[lid.y * T + lid.x] = va;
    tile_b[lid.y * T + lid.x] = vb;
    workgroupBarrier();
    let dims = min(T, p.d - t0);
    for (var q = 0u; q < dims; q++) {
      let diff = tile_a[lid.y * T + q] - tile_b[lid.x * T + q];
      s += diff * diff;
    }
    workgroupBarrier();
  }
  if (i < p.m && j < p.n) {
    if (p.flag == 1u) { out[i * p.n + j] = s; } else { out[i * p.n + j] = sqrt(s); }
  }
}

// For row p.flag + i of the points (a), the sum of distances to the points of cluster c:
// out[i * k + c]. `index` holds k + 1 offsets, then the point indices sorted by cluster, so a
// thread walks only its cluster's points and all threads of a workgroup read the same point.
// Compensated (Kahan) summation keeps float32 sums of many distances close to exact.
@compute @workgroup_size(64)
fn cluster_sums(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = wg.x * 64u + lid.x;
  let c = wg.y;
  let row = min(p.flag + i, p.n - 1u);
  let start = index[c];
  let end = index[c + 1u];
  var sum = 0.0;
  var comp = 0.0;
  for (var q = start; q < end; q++) {
    let j = index[p.k + 1u + q];
    var s = 0.0;
    for (var t = 0u; t < p.d; t++) {
      let diff = a[row * p.d + t] - a[j * p.d + t];
      s += diff * diff;
    }
    let y = sqrt(s) - comp;
    let next = sum + y;
    comp = (next - sum) - y;
    sum = next;
  }
  if (i < p.m) { out[i * p.k + c] = sum; }
}
