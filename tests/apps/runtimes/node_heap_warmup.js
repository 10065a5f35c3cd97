// NOT leaking (issue 17). A Node app whose V8 heap grows to a new steady size
// after warm-up: a session table of plain JS objects (~1 KiB each: a string and
// an array of numbers) grows to MAX entries over ~8 minutes, then every new
// session replaces a random old one. ~200 KiB/s of short-lived objects besides.
// Run: node node_heap_warmup.js [MAX_SESSIONS]
const max = Number(process.argv[2] || 60000);
let seed = 99;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const sessions = [];
const perTick = Math.ceil(max / (8 * 600));
let n = 0;
const session = () => ({ id: n++, name: 'user-' + n + '-'.repeat(16), hits: new Array(100).fill(n % 97) });
let sink = 0;
setInterval(() => {
  for (let i = 0; i < perTick; i++) {
    if (sessions.length < max) sessions.push(session());
    else sessions[Math.floor(rand() * max)] = session();
  }
  const reqs = [];
  for (let i = 0; i < 200; i++) reqs.push({ id: i, body: 'r'.repeat(100) + i });
  sink += reqs.length;
}, 100);
