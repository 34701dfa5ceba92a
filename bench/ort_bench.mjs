// ort_bench.mjs: times an ONNX model in ONNX Runtime's CPU provider, batch 1, and prints JSON
// like `echoview bench` (latency_ms mean/p50/p99/min, peak RSS of this process).
//   node bench/ort_bench.mjs MODEL.onnx THREADS ITERATIONS C H W
import * as ort from 'onnxruntime-node';
import { resourceUsage } from 'node:process';

const [model, threads, iters, c, h, w] = process.argv.slice(2);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads),
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const dims = [1, Number(c), Number(h), Number(w)];
const data = new Float32Array(dims.reduce((a, b) => a * b));
for (let i = 0; i < data.length; i++) data[i] = Math.random();
const feeds = { input: new ort.Tensor('float32', data, dims) };
const t0 = performance.now();
while (performance.now() - t0 < 300) await session.run(feeds);
const times = [];
for (let i = 0; i < Number(iters); i++) {
  const a = performance.now();
  await session.run(feeds);
  times.push(performance.now() - a);
}
times.sort((a, b) => a - b);
const mean = times.reduce((a, b) => a + b, 0) / times.length;
const pick = (q) => times[Math.round((times.length - 1) * q)];
console.log(JSON.stringify({
  model, backend: 'onnxruntime-cpu', version: ort.env.versions?.common ?? '', threads: Number(threads),
  latency_ms: { mean, p50: pick(0.5), p99: pick(0.99), min: times[0] },
  peak_rss_kb: resourceUsage().maxRSS,
}));
