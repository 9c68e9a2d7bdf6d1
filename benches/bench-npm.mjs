// Benchmark (not a test): verifySignature calls/s from the built package on a ~2 KB Eka
// payload, against the JS reference of Eka's Node SDK (JSON.parse + JSON.stringify +
// createHmac) and the floor (createHmac over the raw body alone), measured in the same run.
// Usage: node benches/bench-npm.mjs   (after `make npm`)
import { createRequire } from 'node:module';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { ekaPayload2k } from './bench-payload.mjs';

const require = createRequire(import.meta.url);
const { verifySignature, signPayload } = require('../pkg/index.cjs');

const KEY = 'test_signing_key_do_not_use';
const payload = ekaPayload2k('क्लिनिक-café');
// `--payload <file>`: verify that body instead (the shared one `make bench` writes).
const fileArg = process.argv.indexOf('--payload');
const body = fileArg > 0 ? readFileSync(process.argv[fileArg + 1], 'utf8') : JSON.stringify(payload);
const t = Math.floor(Date.now() / 1000);
const header = signPayload(body, KEY, t);

// Eka's Node SDK (docs/eka-compatibility.md#signed-string-and-body-forms): re-serialise the
// parsed body, HMAC, compare.
function jsReference(raw, h, key) {
  const items = Object.fromEntries(h.split(',').map((i) => i.split('=')));
  const expected = createHmac('sha256', key).update(`${items.t}.${JSON.stringify(JSON.parse(raw))}`).digest();
  const given = Buffer.from(items.v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
const floor = (raw) => createHmac('sha256', KEY).update(`${t}.`).update(raw).digest();

function rate(fn, n = 100_000) {
  for (let i = 0; i < 5_000; i++) fn();
  let best = 0;
  for (let run = 0; run < 5; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    best = Math.max(best, n / (Number(process.hrtime.bigint() - start) / 1e9));
  }
  return best;
}

if (!verifySignature(body, header, KEY).valid || !jsReference(body, header, KEY)) throw new Error('benchmark inputs do not verify');
const rows = [
  ['eka-webhook-edge verifySignature (string body)', rate(() => verifySignature(body, header, KEY))],
  ['eka-webhook-edge verifySignature (Buffer body)', rate(((b) => () => verifySignature(b, header, KEY))(Buffer.from(body)))],
  ['JS reference (parse + stringify + createHmac)', rate(() => jsReference(body, header, KEY))],
  ['floor: createHmac over the raw body', rate(() => floor(body))],
];
const reference = rows[2][1];
console.log(`verifySignature on a ${body.length}-byte Eka payload, Node ${process.version}, best of 5 x 100,000 calls`);
console.log(`${'implementation'.padEnd(50)} ${'calls/s'.padStart(10)} ${'vs JS ref'.padStart(10)}`);
for (const [name, r] of rows) console.log(`${name.padEnd(50)} ${Math.round(r).toLocaleString('en').padStart(10)} ${(r / reference).toFixed(2).padStart(9)}x`);
const wasm = readFileSync(new URL('../pkg/wasm/core_bg.wasm', import.meta.url));
console.log(`package wasm: ${(wasm.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(wasm, { level: 9 }).length / 1024).toFixed(1)} KiB gzip`);
console.log(`RESULT ${JSON.stringify({ npm: rows[0][1], npmBuffer: rows[1][1], jsReference: rows[2][1], floor: rows[3][1],
  wasmRaw: wasm.length, wasmGzip: gzipSync(wasm, { level: 9 }).length })}`);
