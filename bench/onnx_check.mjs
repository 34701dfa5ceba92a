// onnx_check.mjs: runs an exported ONNX model in ONNX Runtime (CPU provider) and compares its
// logits with echoview's for the same input (<= 1e-4 relative to the largest logit).
//   node bench/onnx_check.mjs MODEL.onnx INPUT.f32 ECHOVIEW_LOGITS.f32 N C H W [TEMPERATURE]
// TEMPERATURE (default 1): the model's calibration temperature; echoview's logits are divided
// by it, the ONNX "logits" output is not, so ONNX logits / TEMPERATURE are compared. A model
// exported with --softmax has a second output "probabilities": it must be softmax of echoview's
// (divided) logits within 1e-5.
// INPUT.f32 / LOGITS.f32: raw little-endian float32 (NCHW input, N x classes logits).
// Needs onnxruntime-node (cd bench && npm install --ignore-scripts onnxruntime-node).
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, inputPath, logitsPath, n, c, h, w, temperature] = process.argv.slice(2);
if (!w) {
  console.error('usage: node bench/onnx_check.mjs MODEL.onnx INPUT.f32 LOGITS.f32 N C H W');
  process.exit(2);
}
const toFloats = (buf) => new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const input = toFloats(readFileSync(inputPath));
const want = toFloats(readFileSync(logitsPath));
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
const dims = [n, c, h, w].map(Number);
const out = await session.run({ input: new ort.Tensor('float32', input, dims) });
const t = Number(temperature || 1);
const got = Float32Array.from(out.logits.data, (v) => v / t);
let diff = 0, scale = 0;
for (let i = 0; i < want.length; i++) {
  diff = Math.max(diff, Math.abs(got[i] - want[i]));
  scale = Math.max(scale, Math.abs(want[i]));
}
const rel = scale > 0 ? diff / scale : diff;
let ok = got.length === want.length && rel <= 1e-4;
const result = { model, logits: got.length, rel_error: rel };
if (out.probabilities) {
  const k = want.length / dims[0], p = out.probabilities.data;
  let perr = 0;
  for (let r = 0; r < dims[0]; r++) {
    const row = Array.from(want.slice(r * k, (r + 1) * k));
    const top = Math.max(...row), e = row.map((v) => Math.exp(v - top));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let j = 0; j < k; j++) perr = Math.max(perr, Math.abs(p[r * k + j] - e[j] / sum));
  }
  result.probabilities_error = perr;
  ok = ok && p.length === want.length && perr <= 1e-5;
}
result.ok = ok;
console.log(JSON.stringify(result));
process.exit(ok ? 0 : 1);
