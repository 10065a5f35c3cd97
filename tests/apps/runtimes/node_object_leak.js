// LEAKING (issue 17). A Node app whose leak lives in V8's own heap (plain JS
// objects, no Buffers: node_leak.js keeps Buffers, whose bytes are outside the
// heap): from LEAK_START_S every request's record (an object with an array of
// 128 small integers, 1.2 KiB of heap) is kept in a Map never cleared,
// RATE MiB/min of records. Besides: small requests (~200 KiB/s of short-lived
// objects) and a batch of 10 MiB of objects held 30 s every minute, so V8's
// heap grows and shrinks around the leak. Prints process.memoryUsage()'s
// heapUsed and rss once a minute to stderr: the leak as the heap counts it.
// Run: node node_object_leak.js [MIB_PER_MIN] [LEAK_START_S]
const rate = Number(process.argv[2] || 1);
const startS = Number(process.argv[3] || 600);
// Bytes of heap per record with its key and Map entry: 1219, measured on Node
// 20.20 (--expose-gc, heapUsed after gc() over 20,000 records).
const RECORD = 1219;
const t0 = Date.now();
const kept = new Map();
let bytes = 0;
let batch = null;
const record = (i) => ({ id: i, at: Date.now(), hits: Array.from({ length: 128 }, (_, k) => (k + i) % 1000) });
setInterval(() => {
  batch = [];
  for (let i = 0; i < (10 << 20) / RECORD; i++) batch.push(record(i));
  setTimeout(() => { batch = null; }, 30000);
}, 60000);
let sink = 0;
let n = 0;
setInterval(() => {
  const s = (Date.now() - t0) / 1000;
  const reqs = [];
  for (let i = 0; i < 200; i++) reqs.push({ id: i, body: 'r'.repeat(100) + i });
  sink += reqs.length + (batch ? 1 : 0);
  if (s >= startS) {
    const owed = ((s - startS) / 60) * rate * 1048576;
    while (bytes + RECORD <= owed) {
      kept.set('req-' + n, record(n));
      n++;
      bytes += RECORD;
    }
  }
}, 100);
setInterval(() => {
  const m = process.memoryUsage();
  const mib = (b) => (b / 1048576).toFixed(1);
  process.stderr.write(`${Math.round((Date.now() - t0) / 1000)} s: heapUsed ${mib(m.heapUsed)} MiB, rss ${mib(m.rss)} MiB, kept ${kept.size}\n`);
}, 60000);
