// One block of the feature matrix K-means clusters: its kept columns, centred and scaled, written
// beside the other blocks at column `offset`, row i taken from order[i] when an order is given:
// out[i, offset + c] = (src[order[i], columns[c]] - means[c]) * scale.

struct Params {
  n: u32,
  src_cols: u32,
  width: u32,     // columns of the whole output
  offset: u32,    // where this block's columns start
  kept: u32,
  ordered: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
@group(0) @binding(3) var<storage, read> columns: array<u32>;
@group(0) @binding(4) var<storage, read> means: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let idx = gid.x + gid.y * nwg.x * 256u;
  if (idx >= p.n * p.kept) { return; }
  let i = idx / p.kept;
  let c = idx % p.kept;
  let row = select(i, order[i], p.ordered == 1u);
  out[i * p.width + p.offset + c] = (src[row * p.src_cols + columns[c]] - means[c]) * p.scale;
}
