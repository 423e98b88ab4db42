// One step of a leaky tanh reservoir for a chunk of samples, fused:
//   x' = (1 - leak) x + leak tanh(u_t W_in + bias + x W)
// with the readout written in the same pass (the state at listed steps, the running mean, the last
// state). The host records all T steps into one submission, swapping the two state buffers; the
// state never leaves the device. `dense` tiles x W through workgroup memory (64 samples x 64 units
// per workgroup, 4 x 4 per thread); `sparse` walks each unit's incoming weights (CSC).

struct Params {
  n: u32,            // samples in the chunk
  r: u32,            // units
  dim: u32,          // input values per step
  in_cols: u32,      // columns of an input row (dim, or steps x dim for a sequence)
  sequence: u32,
  washout: u32,
  mean_block: u32,   // readout block of the mean, or NONE
  width: u32,        // feature columns per sample (r x blocks)
  leak: f32,
  mean_scale: f32,
  w_in_at: u32,      // offsets into `weights`: W_in (dim x r), bias (r), W (r x r dense, or CSC values)
  bias_at: u32,
  w_at: u32,
  _pad: u32,
}

// Per step, selected with a dynamic offset: its index, and the readout blocks it fills.
struct Step {
  t: u32,
  blocks: u32,
  is_final: u32,
  _pad: u32,
  ids: array<vec4u, 2>,
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inputs: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// CSC of W: r + 1 column offsets, then the row of each value (sparse only).
@group(0) @binding(3) var<storage, read> csc: array<u32>;
@group(0) @binding(4) var<storage, read> x_prev: array<f32>;
@group(0) @binding(5) var<storage, read_write> x_next: array<f32>;
@group(0) @binding(6) var<storage, read_write> acc: array<f32>;
@group(0) @binding(7) var<storage, read_write> out: array<f32>;
@group(1) @binding(0) var<uniform> st: Step;

// u_t W_in + bias for sample s, unit j.
fn drive(s: u32, j: u32) -> f32 {
  var v = weights[p.bias_at + j];
  let at = s * p.in_cols + select(0u, st.t * p.dim, p.sequence != 0u);
  for (var i = 0u; i < p.dim; i++) { v += inputs[at + i] * weights[p.w_in_at + i * p.r + j]; }
  return v;
}

// The leaky update and the readout of sample s, unit j, given its recurrent input.
fn update(s: u32, j: u32, recurrent: f32) {
  let at = s * p.r + j;
  // tanh saturates to +-1 in float32 well before 15; clamping keeps exp() inside tanh finite.
  let pre = clamp(drive(s, j) + recurrent, -15.0, 15.0);
  let x = (1.0 - p.leak) * x_prev[at] + p.leak * tanh(pre);
  x_next[at] = x;
  if (p.mean_block != NONE && st.t >= p.washout) { acc[at] += x; }
  let row = s * p.width + j;
  for (var b = 0u; b < st.blocks; b++) { out[row + st.ids[b / 4u][b % 4u] * p.r] = x; }
  if (st.is_final != 0u && p.mean_block != NONE) { out[row + p.mean_block * p.r] = acc[at] * p.mean_scale; }
}

const TILE: u32 = 64u;
const KT: u32 = 16u;
var<workgroup> tile_x: array<f32, 1024>; // TILE samples x KT units
var<workgroup> tile_w: array<f32, 1024>; // KT units x TILE units

@compute @workgroup_size(16, 16)
fn dense(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_id) lid: vec3u,
         @builtin(local_invocation_index) li: u32) {
  let s0 = wg.y * TILE;
  let j0 = wg.x * TILE;
  var sum: array<f32, 16>;
  for (var k0 = 0u; k0 < p.r; k0 += KT) {
    for (var e = li; e < TILE * KT; e += 256u) {
      let s = s0 + e / KT;
      let kx = k0 + e % KT;
      var vx = 0.0;
      if (s < p.n && kx < p.r) { vx = x_prev[s * p.r + kx]; }
      tile_x[e] = vx;
      let kw = k0 + e / TILE;
      let j = j0 + e % TILE;
      var vw = 0.0;
      if (kw < p.r && j < p.r) { vw = weights[p.w_at + kw * p.r + j]; }
      tile_w[e] = vw;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      var wv: array<f32, 4>;
      for (var q = 0u; q < 4u; q++) { wv[q] = tile_w[kk * TILE + lid.x + 16u * q]; }
      for (var i = 0u; i < 4u; i++) {
        let xv = tile_x[(lid.y + 16u * i) * KT + kk];
        for (var q = 0u; q < 4u; q++) { sum[i * 4u + q] += xv * wv[q]; }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let s = s0 + lid.y + 16u * i;
    for (var q = 0u; q < 4u; q++) {
      let j = j0 + lid.x + 16u * q;
      if (s < p.n && j < p.r) { update(s, j, sum[i * 4u + q]); }
    }
  }
}

@compute @workgroup_size(64)
fn sparse(@builtin(global_invocation_id) gid: vec3u) {
  let j = gid.x;
  let s = gid.y + gid.z * 65535u;
  if (j >= p.r || s >= p.n) { return; }
  var sum = 0.0;
  for (var q = csc[j]; q < csc[j + 1u]; q++) {
    sum += x_prev[s * p.r + csc[p.r + 1u + q]] * weights[p.w_at + q];
  }
  update(s, j, sum);
}
