// The bare reference of issue 20, in plain JavaScript: what one Durable Object call costs on
// this machine, to hold this Worker's intake against (benches/bench-intake.mjs runs both under
// `wrangler dev`, interleaved).
//   POST /claim   one object call: a new object (named by a fresh UUID) creates its table and
//                 inserts the body in SQLite, then the Worker answers 200;
//   POST /origin  the same call, then the body is POSTed to ORIGIN_URL and its answer returned
//                 (what the gate must do at least);
//   POST /hop     the body read and 200: a bare Worker's hop in and out of workerd.
import { DurableObject } from 'cloudflare:workers';

const OK = () => new Response('{"ok":true}', { headers: { 'content-type': 'application/json' } });

export class Reference extends DurableObject {
  async fetch(request) {
    const body = await request.text();
    const sql = this.ctx.storage.sql;
    sql.exec('CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    sql.exec('INSERT INTO events (body) VALUES (?)', body);
    return OK();
  }
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const body = await request.text();
    if (request.method !== 'POST') return new Response('POST only', { status: 405 });
    if (pathname === '/hop') return OK();
    if (pathname !== '/claim' && pathname !== '/origin') return new Response('not found', { status: 404 });
    const stub = env.REFERENCE.get(env.REFERENCE.idFromName(crypto.randomUUID()));
    const stored = await stub.fetch('http://reference/insert', { method: 'POST', body });
    await stored.text();
    if (pathname === '/claim') return OK();
    const origin = await fetch(env.ORIGIN_URL, {
      method: 'POST',
      headers: { 'content-type': request.headers.get('content-type') ?? 'application/json' },
      body,
    });
    return new Response(await origin.text(), { status: origin.status, headers: { 'content-type': 'application/json' } });
  },
};
