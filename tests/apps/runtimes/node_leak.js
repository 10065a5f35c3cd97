// LEAKING (issue 17). A Node app serving small requests (~200 KiB/s of
// short-lived objects, and a 10 MiB batch held 30 s every minute) that from
// LEAK_START_S keeps every request's 16 KiB context in a module-level array
// never cleared: RATE MiB/min really retained (Buffers filled with a byte, plus
// a small JS object each).
// Run: node node_leak.js [MIB_PER_MIN] [LEAK_START_S]
const rate = Number(process.argv[2] || 1);
const startS = Number(process.argv[3] || 600);
const t0 = Date.now();
const contexts = [];
let kept = 0;
let batch = null;
setInterval(() => {
  batch = [];
  for (let i = 0; i < 10; i++) batch.push(Buffer.alloc(1 << 20, 9));
  setTimeout(() => { batch = null; }, 30000);
}, 60000);
let sink = 0;
setInterval(() => {
  const s = (Date.now() - t0) / 1000;
  const reqs = [];
  for (let i = 0; i < 200; i++) reqs.push({ id: i, body: 'r'.repeat(100) + i });
  sink += reqs.length + (batch ? 1 : 0);
  if (s >= startS) {
    const owed = ((s - startS) / 60) * rate * 1048576;
    while (kept + 16384 <= owed) {
      contexts.push({ at: s, user: 'u' + contexts.length, buf: Buffer.alloc(16384, 7) });
      kept += 16384;
    }
  }
}, 100);
