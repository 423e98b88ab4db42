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
// out[i * k + c]. `index` holds k + 1 offsets, then the point indices sorted by cluster. The
// cluster's points are staged in workgroup memory, TJ points x TS dimensions at a time (laid out
// dimension-major, so one vec4 load gives four points' values of one dimension), and each thread
// reads them from there against its own row: every squared difference is added in dimension order
// and every distance in the cluster's order, as the loop over one point at a time did, so the sums
// are that loop's. Compensated (Kahan) summation keeps float32 sums of many distances close to exact.
const TJ: u32 = 32u;
const TS: u32 = 32u;
var<workgroup> tile_p: array<vec4f, TJ * TS / 4u>;

@compute @workgroup_size(64)
fn cluster_sums(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let i = wg.x * 64u + li;
  let c = wg.y;
  let row = min(p.flag + i, p.n - 1u);
  let start = index[c];
  let end = index[c + 1u];
  var sum = 0.0;
  var comp = 0.0;
  for (var q0 = start; q0 < end; q0 += TJ) {
    // Zeroed explicitly on every pass (see nearest in kmeans.wgsl).
    var acc = array<vec4f, TJ / 4u>();
    for (var t0 = 0u; t0 < p.d; t0 += TS) {
      workgroupBarrier();
      for (var v = li; v < TJ * TS / 4u; v += 64u) {
        let t = t0 + v / (TJ / 4u);
        let q = q0 + (v % (TJ / 4u)) * 4u;
        var values = vec4f(0.0);
        for (var r = 0u; r < 4u; r++) {
          if (q + r < end && t < p.d) { values[r] = a[index[p.k + 1u + q + r] * p.d + t]; }
        }
        tile_p[v] = values;
      }
      workgroupBarrier();
      let dims = min(TS, p.d - t0);
      for (var t = 0u; t < dims; t++) {
        let x = vec4f(a[row * p.d + t0 + t]);
        for (var j = 0u; j < TJ / 4u; j++) {
          let diff = x - tile_p[t * (TJ / 4u) + j];
          acc[j] += diff * diff;
        }
      }
    }
    for (var j = 0u; j < TJ; j++) {
      if (q0 + j < end) {
        let y = sqrt(acc[j / 4u][j % 4u]) - comp;
        let next = sum + y;
        comp = (next - sum) - y;
        sum = next;
      }
    }
  }
  if (i < p.m) { out[i * p.k + c] = sum; }
}
