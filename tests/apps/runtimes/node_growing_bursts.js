// NOT leaking (issue 17). A Node service whose batch every PERIOD_S seconds
// (default 180) grows with its input for the first half hour and then stays the
// same size: 10 MiB more each batch from 10 MiB up to a cap of CAP_MIB (default
// 60), held for a third of the period and dropped. The batch is JS objects and
// arrays on the V8 heap (no Buffers): how much of the grown heap V8 keeps
// between batches is its own sizing, bounded by the largest batch.
// Run: node node_growing_bursts.js [PERIOD_S] [CAP_MIB]
const period = Number(process.argv[2] || 180) * 1000;
const cap = Number(process.argv[3] || 60);
let mib = 10;
let batch = null;
function startBatch() {
  const rows = [];
  // ~1 MiB per 1024 rows of a 128-double array and a small object.
  for (let i = 0; i < mib * 1024; i++) {
    rows.push({ id: i, values: new Array(120).fill(i + 0.5), name: 'row' + i });
  }
  batch = rows;
  setTimeout(() => { batch = null; }, period / 3);
  mib = Math.min(cap, mib + 10);
}
startBatch();
setInterval(startBatch, period);

let sink = 0;
setInterval(() => {
  const reqs = [];
  for (let i = 0; i < 200; i++) reqs.push({ id: i, body: 'r'.repeat(100) + i, at: Date.now() });
  sink += reqs.length + (batch ? 1 : 0);
}, 100);
