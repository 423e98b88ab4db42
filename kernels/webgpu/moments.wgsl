// Column means and population variances of an n x d matrix, in two passes (sums, then sums of
// squared deviations from the means, which keeps float32 variances accurate). Each workgroup sums
// 64 columns over one segment of rows, four lanes a column; the finish adds the segments up in
// order with a compensated sum. Rows are taken in `order` when one is given, and every sum has a
// fixed shape, so the moments are bit for bit the same whatever order the rows are stored in.

struct Params {
  n: u32,
  d: u32,
  segment: u32,   // rows a workgroup sums
  segments: u32,
  ordered: u32,   // 1: the q-th row is order[q]
  pass_: u32,     // 0: sums of x (means); 1: sums of (x - mean)^2 (variances)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> m: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
// segments x d partial sums.
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
// d means, then d variances.
@group(0) @binding(4) var<storage, read_write> moments: array<f32>;

const LANES: u32 = 4u;
var<workgroup> lanes: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn sums(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let col = wg.x * 64u + lid.x;
  let start = wg.y * p.segment;
  let end = min(p.n, start + p.segment);
  var s = 0.0;
  if (col < p.d) {
    let mean = select(0.0, moments[col], p.pass_ == 1u);
    for (var q = start + lid.y; q < end; q += LANES) {
      let row = select(q, order[q], p.ordered == 1u);
      let x = m[row * p.d + col];
      if (p.pass_ == 0u) {
        s += x;
      } else {
        let dv = x - mean;
        s += dv * dv;
      }
    }
  }
  lanes[lid.y * 64u + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && col < p.d) {
    partial[wg.y * p.d + col] = ((lanes[lid.x] + lanes[64u + lid.x]) + lanes[128u + lid.x]) + lanes[192u + lid.x];
  }
}

@compute @workgroup_size(64)
fn finish(@builtin(global_invocation_id) gid: vec3u) {
  let col = gid.x;
  if (col >= p.d) { return; }
  var s = 0.0;
  var c = 0.0;
  for (var g = 0u; g < p.segments; g++) {
    let y = partial[g * p.d + col] - c;
    let t = s + y;
    c = (t - s) - y;
    s = t;
  }
  moments[p.pass_ * p.d + col] = s / f32(p.n);
}
