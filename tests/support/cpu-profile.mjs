// CPU accounting for a workerd that Miniflare started (issue 20's load-compare profile):
// V8's sampling profiler over the inspector (CDP) on chosen workers (the user Worker and its
// objects are `core:user:`; Miniflare's local D1 is `d1:db`), and the process's own CPU time
// from /proc (every isolate and workerd's native work: SQLite, HTTP, the event loop).
import { readFileSync } from 'node:fs';

/** The CPU seconds (user + system) process `pid` has used so far (Linux /proc; null elsewhere). */
export function processCpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis: utime is the 14th field, stime the 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100;
  } catch {
    return null;
  }
}

/**
 * Starts V8's sampling profiler on each inspector target whose id is in `targets` (all when
 * none given), sampling every `intervalUs`. Returns `stop()`, which resolves to
 * `{ [targetId]: profile }`.
 */
export async function startProfiling(port, { targets, intervalUs = 200 } = {}) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const chosen = list.filter((t) => !targets || targets.includes(t.id));
  const sessions = [];
  for (const t of chosen) {
    const ws = new WebSocket(t.webSocketDebuggerUrl, { headers: { origin: 'http://localhost' } });
    await new Promise((r, j) => { ws.onopen = r; ws.onerror = j; });
    let id = 0;
    const pending = new Map();
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); }
    };
    const cdp = (method, params = {}) => new Promise((r) => {
      const i = ++id;
      pending.set(i, r);
      ws.send(JSON.stringify({ id: i, method, params }));
    });
    await cdp('Profiler.enable');
    await cdp('Profiler.setSamplingInterval', { interval: intervalUs });
    await cdp('Profiler.start');
    sessions.push({ id: t.id, ws, cdp });
  }
  return async () => {
    const out = {};
    for (const s of sessions) {
      const { result } = await s.cdp('Profiler.stop');
      s.ws.close();
      if (result?.profile) out[s.id] = result.profile;
    }
    return out;
  };
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);

/** A frame's name: the function, and its file and line when it has one. */
export function frameName(node) {
  const f = node.callFrame;
  const file = f.url ? ` ${f.url.split('/').pop()}:${f.lineNumber}` : '';
  return `${f.functionName || '(anon)'}${file}`;
}

/**
 * Self and total time (µs) by frame name for one profile, and the busy time (not idle,
 * program or GC). `bucket(stack)` (names from the root down) may name a group each sample's
 * time is added to as well.
 */
export function account(profile, bucket = () => null) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const dt = new Map();
  profile.samples.forEach((s, i) => dt.set(s, (dt.get(s) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const self = new Map();
  const total = new Map();
  const groups = new Map();
  let busy = 0;
  let gc = 0;
  for (const [nid, us] of dt) {
    const node = byId.get(nid);
    const own = node.callFrame.functionName;
    if (own === '(garbage collector)') gc += us;
    if (!IDLE.has(own)) busy += us;
    const nm = frameName(node);
    self.set(nm, (self.get(nm) ?? 0) + us);
    const stack = [];
    for (let c = nid; c !== undefined; c = parent.get(c)) stack.push(frameName(byId.get(c)));
    for (const n of new Set(stack)) total.set(n, (total.get(n) ?? 0) + us);
    const g = IDLE.has(own) ? null : bucket(stack.reverse());
    if (g) groups.set(g, (groups.get(g) ?? 0) + us);
  }
  return { self, total, groups, busy, gc };
}
