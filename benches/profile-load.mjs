// Where the CPU per webhook goes under `make load-compare`'s own traffic (issue 20), not spaced
// requests: runs tests/load/load-test.mjs with LOAD_PROFILE (V8 CPU profiles over the
// inspector, from the first delivery until nothing is pending), then prints, per delivery,
// workerd's whole CPU (/proc), each profiled worker's busy time (the Worker and its objects
// `core:user:`; Miniflare's D1 `d1:db`; its entry `core:entry`), the user Worker's time by
// role (webhook, object command, alarm, …) and the frames with the most self and total time.
// For wasm names, build with them and pass the directory holding `build/`:
//   CARGO_PROFILE_RELEASE_STRIP=none sh scripts/build-worker.sh --out-dir /tmp/named/build
//   (with /tmp/named/migrations and /tmp/named/public linked to this checkout's)
//   node benches/profile-load.mjs [--root /tmp/named] [--previous target/previous-release]
//     [--webhooks 2000] [--concurrency 50] …   (the rest goes to load-test.mjs)
// Summarise profiles already written: node benches/profile-load.mjs --summarise <dir>
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { account } from '../tests/support/cpu-profile.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const TOP = Number(process.env.PROFILE_TOP ?? 40);

// A sample's role in the user Worker, from its stack (root first): the first frame that names
// one. wasm frames carry Rust paths when the build kept its names.
const ROLES = [
  [/AppointmentLedger.*alarm|::wake/, 'object alarm'],
  [/AppointmentLedger.*fetch|::dispatch/, 'object command'],
  [/IndexShard/, 'index shard'],
  [/worker::webhook::run|pipeline.*handle|routes.*webhook/, 'webhook (pipeline)'],
  [/worker::routes|__wbg_fetch|^fetch /, 'Worker fetch'],
];
const role = (stack) => {
  for (let i = stack.length - 1; i >= 0; i--) {
    for (const [re, name] of ROLES) if (re.test(stack[i])) return name;
  }
  return 'other';
};

function summarise(dir) {
  const run = JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8'));
  const n = run.deliveries;
  const per = (us) => `${(us / 1000 / n).toFixed(3)} ms`;
  console.log(`${run.previous ? `previous release (${run.previous})` : 'this checkout'}: ${n} deliveries in ${run.seconds.toFixed(1)} s`);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
    const user = file.startsWith('core_user');
    const { self, total, groups, busy, gc } = account(profile, user ? role : () => null);
    console.log(`\n=== ${file}: busy ${per(busy)} per delivery (gc ${per(gc)})`);
    if (busy < 1000 * n * 0.05) continue;
    if (user) {
      console.log('--- by role (innermost role frame on the stack)');
      for (const [k, v] of [...groups].sort((a, b) => b[1] - a[1])) console.log(per(v), k);
    }
    console.log('--- self');
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(per(v), k);
    console.log('--- total');
    for (const [k, v] of [...total].sort((a, b) => b[1] - a[1]).slice(0, TOP + 20)) console.log(per(v), k);
  }
}

if (argv[0] === '--summarise') {
  summarise(argv[1]);
} else {
  const dir = mkdtempSync(path.join(tmpdir(), 'eka-profile-load-'));
  const args = ['--webhooks', '2000', '--concurrency', '50', '--bursts', '20', '--kill', '0', '--seed', '7', '--destinations', '0', ...argv];
  const run = spawnSync(path.join(ROOT, 'node_modules/.bin/node'), [path.join(ROOT, 'tests/load/load-test.mjs'), ...args], {
    env: { ...process.env, LOAD_PROFILE: dir }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  const report = run.stdout;
  const figures = report.match(/"perSecond": \d+|"workerdCpuMsPerDelivery": \{[^}]*\}|load: \d passed, \d failed/g) ?? [];
  console.log(figures.join('\n'));
  if (run.status !== 0) { console.log(report); process.exit(1); }
  summarise(dir);
  console.log(`\nprofiles in ${dir}`);
}
