// What each kind of operation costs workerd's one thread under Miniflare (issue 20's
// load-compare): workerd's own CPU time (/proc) per operation, for the operations a webhook is
// made of. A plain JavaScript Worker and object do each operation N times in a row inside one
// request (so the request's own cost is spread thin), and the CPU workerd used over it is
// divided by N; each kind is measured ROUNDS times, interleaved, and the median printed.
// Operations: a Durable Object call (to a new object each time, and to the same one), a
// statement on the object's SQLite (a write, a read; a CREATE TABLE on a new object), an
// alarm set, a D1 statement (write; a batch of 3), a fetch to a local server, and an incoming
// request with and without the local static-assets router in front.
//   node benches/workerd-op-costs.mjs   (env OPS_N, default 400; OPS_ROUNDS, default 5)
import http from 'node:http';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { processCpuSeconds } from '../tests/support/cpu-profile.mjs';
import { execFileSync } from 'node:child_process';

const N = Number(process.env.OPS_N ?? 400);
const ROUNDS = Number(process.env.OPS_ROUNDS ?? 5);

// The object's own statements and alarm calls are cheap: they run CHEAP times as often.
const CHEAP = 20;
const script = `const CHEAP = ${CHEAP};
import { DurableObject } from 'cloudflare:workers';
export class Obj extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
  }
  async fetch(request) {
    const { pathname, searchParams } = new URL(request.url);
    const n = Number(searchParams.get('n') ?? 0);
    const sql = this.ctx.storage.sql;
    if (pathname === '/sql-write') for (let i = 0; i < n; i++) sql.exec('INSERT INTO t (v) VALUES (?)', 'x' + i);
    if (pathname === '/sql-read') for (let i = 0; i < n; i++) sql.exec('SELECT MIN(id) AS m FROM t').toArray();
    if (pathname === '/alarm') for (let i = 0; i < n; i++) await this.ctx.storage.setAlarm(Date.now() + 3600000 + i);
    if (pathname === '/get-alarm') for (let i = 0; i < n; i++) await this.ctx.storage.getAlarm();
    if (pathname === '/create') {
      for (let i = 0; i < 10; i++) sql.exec('CREATE TABLE IF NOT EXISTS c' + i + ' (id TEXT PRIMARY KEY, a TEXT NOT NULL, b INTEGER NOT NULL, c TEXT)');
    }
    return new Response('ok');
  }
  async alarm() {}
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n') ?? 0);
    const op = url.pathname.slice(1);
    const fresh = () => env.OBJ.get(env.OBJ.idFromName(crypto.randomUUID()));
    if (op === 'noop') return new Response('ok');
    if (op === 'do-new') for (let i = 0; i < n; i++) await (await fresh().fetch('http://o/none')).text();
    if (op === 'do-new-create') for (let i = 0; i < n; i++) await (await fresh().fetch('http://o/create')).text();
    if (op === 'do-same') { const s = env.OBJ.get(env.OBJ.idFromName('same')); for (let i = 0; i < n; i++) await (await s.fetch('http://o/none')).text(); }
    if (['sql-write', 'sql-read', 'alarm', 'get-alarm'].includes(op)) {
      await (await env.OBJ.get(env.OBJ.idFromName(op)).fetch('http://o/' + op + '?n=' + n * CHEAP)).text();
    }
    if (op === 'd1-write') for (let i = 0; i < n; i++) await env.DB.prepare('INSERT INTO t (v) VALUES (?)').bind('x' + i).run();
    if (op === 'd1-batch3') for (let i = 0; i < n; i++) await env.DB.batch([1, 2, 3].map((k) => env.DB.prepare('INSERT INTO t (v) VALUES (?)').bind('x' + k)));
    if (op === 'fetch') for (let i = 0; i < n; i++) await (await fetch(env.TARGET)).text();
    return new Response('ok');
  },
};`;

const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const target = `http://127.0.0.1:${server.address().port}/`;
const dir = mkdtempSync(path.join(tmpdir(), 'eka-opcosts-'));
mkdirSync(path.join(dir, 'public'));
writeFileSync(path.join(dir, 'public', 'x.txt'), 'x');
// The workerd processes this process started.
const workerds = () => execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]).toString()
  .split('\n').filter((l) => l.includes('workerd')).map((l) => Number(l.trim().split(/\s+/)[0]));
const start = async (assets) => {
  const before = new Set(workerds());
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: '127.0.0.1', port: 0, modules: true, script, compatibilityDate: '2026-11-01',
    durableObjects: { OBJ: { className: 'Obj', useSQLite: true } }, d1Databases: ['DB'],
    bindings: { TARGET: target },
    ...(assets ? { assets: { directory: path.join(dir, 'public'), routerConfig: { has_user_worker: true } } } : {}),
  }));
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const db = await mf.getD1Database('DB');
  await db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
  const pid = workerds().find((p) => !before.has(p));
  return { mf, url, pid };
};
const plain = await start(false);
const withAssets = await start(true);
const pids = [plain.pid, withAssets.pid];
if (pids[0] === pids[1]) throw new Error('one workerd for both');

// CPU ms per operation for one batch of `op`.
async function measure(w, op) {
  const before = processCpuSeconds(w.pid);
  if (op === 'request' || op === 'request-assets') {
    // N incoming requests, 10 at a time (the client's own cost is not workerd's).
    let left = N;
    await Promise.all(Array.from({ length: 10 }, async () => {
      while (left-- > 0) await (await fetch(`${w.url}/noop`, { method: 'POST', body: '{}' })).text();
    }));
  } else {
    const res = await fetch(`${w.url}/${op}?n=${N}`);
    await res.text();
    if (!res.ok) throw new Error(`${op}: ${res.status}`);
  }
  const times = ['sql-write', 'sql-read', 'alarm', 'get-alarm'].includes(op) ? N * CHEAP : N;
  return ((processCpuSeconds(w.pid) - before) * 1000) / times;
}

const ops = [
  ['request', plain, 'an incoming request (Node → workerd → Worker → answer)'],
  ['request-assets', withAssets, 'the same through the static-assets router (has_user_worker)'],
  ['do-new', plain, 'an object call to a new object (constructor: one CREATE TABLE)'],
  ['do-new-create', plain, 'the same, the object making 10 more tables (TEXT keys)'],
  ['do-same', plain, 'an object call to the same object'],
  ['sql-write', plain, "an INSERT on the object's SQLite"],
  ['sql-read', plain, "a SELECT MIN(…) on the object's SQLite"],
  ['alarm', plain, 'setAlarm'],
  ['get-alarm', plain, 'getAlarm'],
  ['d1-write', plain, 'a D1 statement (INSERT, awaited)'],
  ['d1-batch3', plain, 'a D1 batch of 3 INSERTs'],
  ['fetch', plain, 'a fetch to a local server'],
];
const results = new Map(ops.map(([op]) => [op, []]));
try {
  for (const [op, w] of ops) await measure(w, op); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [op, w] of ops) results.get(op).push(await measure(w, op));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`workerd CPU per operation, median of ${ROUNDS} rounds of ${N} (load average ${(await import('node:os')).loadavg()[0].toFixed(1)})`);
  for (const [op, , what] of ops) {
    const xs = results.get(op);
    console.log(`${median(xs).toFixed(4).padStart(7)} ms  ${op.padEnd(15)} ${what}  [${xs.map((x) => x.toFixed(3)).join(' ')}]`);
  }
} finally {
  await plain.mf.dispose();
  await withAssets.mf.dispose();
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
