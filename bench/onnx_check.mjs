// onnx_check.mjs: runs an exported ONNX model in ONNX Runtime (CPU provider) and compares its
// logits with echoview's for the same input (<= 1e-4 relative to the largest logit).
//   node bench/onnx_check.mjs MODEL.onnx INPUT.f32 ECHOVIEW_LOGITS.f32 N C H W
// INPUT.f32 / LOGITS.f32: raw little-endian float32 (NCHW input, N x classes logits).
// Needs onnxruntime-node (cd bench && npm install --ignore-scripts onnxruntime-node).
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, inputPath, logitsPath, n, c, h, w] = process.argv.slice(2);
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
const got = out.logits.data;
let diff = 0, scale = 0;
for (let i = 0; i < want.length; i++) {
  diff = Math.max(diff, Math.abs(got[i] - want[i]));
  scale = Math.max(scale, Math.abs(want[i]));
}
const rel = scale > 0 ? diff / scale : diff;
const ok = got.length === want.length && rel <= 1e-4;
console.log(JSON.stringify({ model, logits: got.length, rel_error: rel, ok }));
process.exit(ok ? 0 : 1);
