// The built Worker under `wrangler dev` (what `make dev` runs), for tests that must drive it the
// way a user does: local D1 migrated with `wrangler d1 migrations apply DB --local`, state in a
// temporary directory, settings as `--var`, 127.0.0.1 only, wrangler kept off the network.
// wrangler.toml is used as it is, minus its [build] command (the test set-up built the Worker)
// and with its paths made absolute, from a copy in the temporary directory.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../worker/harness.mjs';

const QUIET = {
  WRANGLER_SEND_METRICS: 'false',
  DO_NOT_TRACK: '1',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
};

const freePort = () => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.once('error', reject);
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    server.close(() => resolve(port));
  });
});

/** wrangler.toml for a Worker already built: no [build], absolute paths. */
export function configFor(root = ROOT) {
  const text = readFileSync(path.join(root, 'wrangler.toml'), 'utf8');
  const replaced = text
    .replace(/^\[build\]\ncommand = .*\n/m, '')
    .replace(/^main = "([^"]+)"/m, (_, p) => `main = ${JSON.stringify(path.join(root, p))}`)
    .replace(/^migrations_dir = "([^"]+)"/m, (_, p) => `migrations_dir = ${JSON.stringify(path.join(root, p))}`)
    .replace(/^directory = "([^"]+)"/m, (_, p) => `directory = ${JSON.stringify(path.join(root, p))}`);
  for (const key of ['main', 'migrations_dir', 'directory']) {
    if (!new RegExp(`^${key} = "/`, 'm').test(replaced)) throw new Error(`wrangler.toml: no ${key} to make absolute`);
  }
  if (/^\[build\]/m.test(replaced)) throw new Error('wrangler.toml: the [build] section is not the expected one line');
  return replaced;
}

/**
 * Starts `wrangler dev` with `vars`; resolves once it is ready. Returns `{ url, request,
 * dispose, output }` (`output()`: what wrangler printed, for failures). `config` replaces
 * this Worker's wrangler.toml (another Worker's, with absolute paths; benches/reference), and
 * `d1: false` skips the D1 migrations for a Worker without a database.
 */
export async function startWranglerDev({ vars = {}, root = ROOT, timeoutMs = 90_000, config: configText, d1 = true } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'eka-wrangler-dev-'));
  const config = path.join(dir, 'wrangler.toml');
  writeFileSync(config, configText ?? configFor(root));
  const persist = path.join(dir, 'state');
  const env = { ...process.env, ...QUIET, WRANGLER_LOG_PATH: path.join(dir, 'logs') };
  // wrangler under this Node (>= 22.12, as wrangler needs), not whatever `node` is on PATH.
  const wrangler = [path.join(root, 'node_modules', 'wrangler', 'bin', 'wrangler.js')];
  if (d1) await promisify(execFile)(process.execPath, [...wrangler, 'd1', 'migrations', 'apply', 'DB', '--local', '--config', config, '--persist-to', persist], { env, cwd: dir });
  const port = await freePort();
  const inspector = await freePort();
  const args = [...wrangler, 'dev', '--config', config, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--local', '--persist-to', persist, '--show-interactive-dev-session=false'];
  for (const [key, value] of Object.entries(vars)) {
    if (value !== null && value !== undefined) args.push('--var', `${key}:${value}`);
  }
  const child = spawn(process.execPath, args, { env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let printed = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wrangler dev was not ready in ${timeoutMs} ms:\n${printed}`)), timeoutMs);
    const read = (chunk) => {
      printed += chunk;
      const ready = printed.match(/Ready on (http:\/\/127\.0\.0\.1:\d+)/);
      if (ready) { clearTimeout(timer); resolve(ready[1]); }
    };
    child.stdout.setEncoding('utf8').on('data', read);
    child.stderr.setEncoding('utf8').on('data', read);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`wrangler dev exited (${code}):\n${printed}`)); });
  });
  child.removeAllListeners('exit');
  const dispose = async () => {
    const exited = new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); });
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    url,
    inspector,
    request: (p, init) => fetch(new URL(p, url), init),
    dispose,
    output: () => printed,
  };
}
