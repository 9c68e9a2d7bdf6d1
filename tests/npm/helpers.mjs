// Shared by the npm package's tests (run from target/npm-consumer, where the packed tarball
// is installed as a dependency).
import net from 'node:net';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export { startFakeEka, bookingFor, CLIENT_ID, CLIENT_SECRET } from '../../tests/support/fake-eka.mjs';
export { signHeader, verifyHeader } from '../../tests/support/eka-signature.mjs';
export { appointmentEvent } from '../../tests/support/common.mjs';
import { waitFor as pollUntil } from '../../tests/support/common.mjs';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const KEY = 'npm-test-signing-key';


export async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs `node <file>` with env; resolves once it prints `listening`. */
export function runExample(file, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { cwd: HERE, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${out}`)), 15000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening')) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    });
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${file} exited ${code}: ${out}`)); });
  });
}

/** Polls `check` (default: 10 s, every 50 ms). */
export const waitFor = (check, timeoutMs = 10000) => pollUntil(check, { timeoutMs, intervalMs: 50 });
