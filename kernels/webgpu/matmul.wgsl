// C (m x n) = A (m x k) B (k x n) + bias (n), all row-major f32.
// A 64 x 64 tile of C per workgroup of 16 x 16 threads, each thread a 4 x 4 block (rows ty + 16 i,
// columns tx + 16 j), with 64 x 16 slices of A and 16 x 64 slices of B staged in workgroup memory.

struct Params {
  m: u32,
  n: u32,
  k: u32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const KT: u32 = 16u;
var<workgroup> tile_a: array<f32, 1024>; // TILE x KT
var<workgroup> tile_b: array<f32, 1024>; // KT x TILE

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wg.y * TILE;
  let col0 = wg.x * TILE;
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < p.k; k0 += KT) {
    for (var e = li; e < TILE * KT; e += 256u) {
      let r = row0 + e / KT;
      let kk = k0 + e % KT;
      var va = 0.0;
      if (r < p.m && kk < p.k) { va = a[r * p.k + kk]; }
      tile_a[e] = va;
      let kb = k0 + e / TILE;
      let cb = col0 + e % TILE;
      var vb = 0.0;
      if (kb < p.k && cb < p.n) { vb = b[kb * p.n + cb]; }
      tile_b[e] = vb;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      var bv: array<f32, 4>;
      for (var j = 0u; j < 4u; j++) { bv[j] = tile_b[kk * TILE + lid.x + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        let av = tile_a[(lid.y + 16u * i) * KT + kk];
        for (var j = 0u; j < 4u; j++) { acc[i * 4u + j] += av * bv[j]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y + 16u * i;
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + lid.x + 16u * j;
      if (r < p.m && col < p.n) {
        var v = acc[i * 4u + j];
        if (p.has_bias != 0u) { v += bias[col]; }
        c[r * p.n + col] = v;
      }
    }
  }
}
