// A layer of leaky integrate-and-fire neurons (or a recurrent liquid) over all T steps of a
// sample in one dispatch: one workgroup per sample, each thread owning up to NPT neurons whose
// state stays in registers. The input spikes (Bernoulli draws from Philox4x32-10, the same 32-bit
// arithmetic as the JS reference) or currents of a run of steps go to workgroup memory, drawn by
// all the workgroup's threads at once, then every neuron integrates through the run. A layer
// without recurrence needs no other neuron's spikes, so its run is as many steps as fit (all 50
// of a 4-dimensional input): two barriers a run instead of two a step. A recurrent liquid runs
// one step at a time, its step's spikes kept as a bit set for the next step's recurrent input.
//
// Float32 throughout, each operation in the order of the JS reference, which rounds every one
// of them to float32: current = bias + sum_i d_i W_in[i] (i ascending) + sum_i s_i W[i] (i
// ascending), then v = (v - decay v) + current.

struct Params {
  n: u32,
  r: u32,
  dim: u32,
  in_cols: u32,
  sequence: u32,
  rate: u32,            // 1: Bernoulli spikes with the inputs as probabilities; 0: currents
  recurrent: u32,       // 0: none, 1: dense W (r x r), 2: CSC
  steps: u32,
  windows: u32,
  readout: u32,         // 0 counts, 1 rates, 2 first-spike, 3 trace
  refractory: u32,
  key0: u32,
  key1: u32,
  decay: f32,
  threshold: f32,
  reset: f32,
  trace_decay: f32,
  w_in_at: u32,
  bias_at: u32,
  w_at: u32,
  scale: f32,           // multiplies every readout value (rates to Hz, latencies to ms)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inputs: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
// CSC of W (r + 1 column offsets, then the row of each value), when p.recurrent is 2.
@group(0) @binding(3) var<storage, read> csc: array<u32>;
@group(0) @binding(4) var<storage, read> keys: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;
const NPT: u32 = 16u;            // neurons per thread: r <= 4096
const MAX_DIM: u32 = 2048u;     // inputs staged at once: one step of MAX_DIM, or a run of steps
const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;

// High and low words of the 64-bit product a b, from 16-bit halves.
fn mulhilo(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu;
  let a1 = a >> 16u;
  let b0 = b & 0xffffu;
  let b1 = b >> 16u;
  let p01 = a0 * b1;
  let p10 = a1 * b0;
  let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2u(a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}

fn philox(counter: vec4u, key: vec2u) -> vec4u {
  var x = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    let r0 = mulhilo(M0, x.x);
    let r1 = mulhilo(M1, x.z);
    x = vec4u(r1.x ^ x.y ^ k.x, r1.y, r0.x ^ x.w ^ k.y, r0.y);
    k = k + vec2u(W0, W1);
  }
  return x;
}

var<workgroup> staged: array<f32, MAX_DIM>;                 // a run of steps' inputs, step-major
var<workgroup> spikes: array<array<atomic<u32>, 128>, 2>; // this step's and the last step's bits

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let s = wg.x + wg.y * nwg.x;
  if (s >= p.n) { return; }
  var v: array<f32, NPT>;
  var refr: array<u32, NPT>;
  var trace: array<f32, NPT>;
  var value: array<f32, NPT>;   // the readout of the current window
  var seen: array<bool, NPT>;
  for (var q = 0u; q < NPT; q++) {
    v[q] = p.reset;
    refr[q] = 0u;
    trace[q] = 0.0;
  }
  let words = (p.r + 31u) / 32u;
  for (var w = li; w < words; w += WG) { atomicStore(&spikes[0][w], 0u); }
  let key = vec2u(p.key0, p.key1);
  let width = p.r * p.windows;
  let run = select(1u, max(1u, MAX_DIM / p.dim), p.recurrent == 0u);
  let blocks = (p.dim + 3u) / 4u;   // Philox calls a step: four draws each
  var last = 0u;
  for (var t0 = 0u; t0 < p.steps; t0 += run) {
    let t1 = min(p.steps, t0 + run);
    if (p.rate != 0u) {
      for (var e = li; e < (t1 - t0) * blocks; e += WG) {
        let t = t0 + e / blocks;
        let b = e % blocks;
        let at = s * p.in_cols + select(0u, t * p.dim, p.sequence != 0u);
        let draws = philox(vec4u(keys[s], t, b, 0u), key);
        for (var q = 0u; q < 4u && b * 4u + q < p.dim; q++) {
          let prob = clamp(inputs[at + b * 4u + q], 0.0, 1.0);
          let threshold = u32(floor(prob * 16777216.0));
          staged[(t - t0) * p.dim + b * 4u + q] = select(0.0, 1.0, (draws[q] >> 8u) < threshold);
        }
      }
    } else {
      for (var e = li; e < (t1 - t0) * p.dim; e += WG) {
        let t = t0 + e / p.dim;
        let at = s * p.in_cols + select(0u, t * p.dim, p.sequence != 0u);
        staged[e] = inputs[at + e % p.dim];
      }
    }
    // With recurrence the run is one step: `now` holds its spikes, `last` the step before's.
    let now = 1u - last;
    if (p.recurrent != 0u) {
      for (var w = li; w < words; w += WG) { atomicStore(&spikes[now][w], 0u); }
    }
    workgroupBarrier();
    for (var q = 0u; q < NPT; q++) {
      let j = li + q * WG;
      if (j >= p.r) { break; }
      for (var t = t0; t < t1; t++) {
        let window = (t * p.windows) / p.steps;
        let start = (window * p.steps + p.windows - 1u) / p.windows;
        let end = ((window + 1u) * p.steps + p.windows - 1u) / p.windows;
        let input = (t - t0) * p.dim;
        var current = weights[p.bias_at + j];
        for (var i = 0u; i < p.dim; i++) {
          let d = staged[input + i];
          if (d != 0.0) { current = current + d * weights[p.w_in_at + i * p.r + j]; }
        }
        if (p.recurrent == 1u) {
          for (var i = 0u; i < p.r; i++) {
            if ((atomicLoad(&spikes[last][i / 32u]) & (1u << (i % 32u))) != 0u) {
              current = current + weights[p.w_at + i * p.r + j];
            }
          }
        } else if (p.recurrent == 2u) {
          for (var e = csc[j]; e < csc[j + 1u]; e++) {
            let i = csc[p.r + 1u + e];
            if ((atomicLoad(&spikes[last][i / 32u]) & (1u << (i % 32u))) != 0u) {
              current = current + weights[p.w_at + e];
            }
          }
        }
        var spike = 0.0;
        if (refr[q] > 0u) {
          refr[q] -= 1u;
          v[q] = p.reset;
        } else {
          v[q] = v[q] - p.decay * v[q];
          v[q] = v[q] + current;
          if (v[q] >= p.threshold) {
            spike = 1.0;
            v[q] = p.reset;
            refr[q] = p.refractory;
            if (p.recurrent != 0u) { atomicOr(&spikes[now][j / 32u], 1u << (j % 32u)); }
          }
        }
        trace[q] = trace[q] * p.trace_decay + spike;
        if (t == start) {
          seen[q] = false;
          value[q] = select(0.0, f32(end - start), p.readout == 2u);
        }
        if (p.readout <= 1u) {
          value[q] += spike;
        } else if (p.readout == 2u && spike != 0.0 && !seen[q]) {
          seen[q] = true;
          value[q] = f32(t - start);
        }
        if (t + 1u == end) {
          var result = value[q];
          if (p.readout == 1u) { result = result / f32(end - start); }
          if (p.readout == 3u) { result = trace[q]; }
          out[s * width + window * p.r + j] = result * p.scale;
        }
      }
    }
    last = now;
    workgroupBarrier();
  }
}
