// NOT leaking (issue 17). A Node app with a bounded sawtooth: every 2 minutes a
// batch of 30-60 MiB (half JS arrays on the V8 heap, half Buffers outside it,
// all written so the pages are touched) is held for ~60 s and released.
// Between batches, small requests churn (~200 KiB/s of short-lived objects).
// Run: node node_sawtooth.js [PERIOD_S]
const period = Number(process.argv[2] || 120) * 1000;
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);

let batch = null;
function startBatch() {
  const mib = 30 + Math.floor(rand() * 31);
  const half = Math.floor(mib / 2);
  const arrays = [];
  for (let i = 0; i < half; i++) arrays.push(new Array(131072).fill(i + 0.5)); // 1 MiB of doubles
  const bufs = [];
  for (let i = 0; i < mib - half; i++) bufs.push(Buffer.alloc(1 << 20, i + 1));
  batch = { arrays, bufs };
  setTimeout(() => { batch = null; }, period / 2);
}
startBatch();
setInterval(startBatch, period);

let sink = 0;
setInterval(() => {
  const reqs = [];
  for (let i = 0; i < 200; i++) reqs.push({ id: i, body: 'r'.repeat(100) + i, at: Date.now() });
  sink += reqs.length + (batch ? 1 : 0);
}, 100);
