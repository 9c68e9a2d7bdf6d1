// Shared by the OpenAPI suites: the document, the routes the Worker answers (read from its
// source, so a new route without documentation fails), and the operations documented ahead
// of the router.
import path from 'node:path';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DOCUMENT_PATH = path.join(ROOT, 'public', 'openapi.json');

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export const loadDocument = () => JSON.parse(readFileSync(DOCUMENT_PATH, 'utf8'));

/** `GET /admin/events/{id}` → `GET /admin/events/{}`: parameter names do not matter. */
export const shape = (key) => key.replace(/\{[^}/]+\}/g, '{}');

/** Every documented operation: `{ key: 'GET /path', method, path, operation, item }`. */
export function documentedOperations(doc) {
  const out = [];
  for (const [p, item] of Object.entries(doc.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      if (item[method]) out.push({ key: `${method.toUpperCase()} ${p}`, method: method.toUpperCase(), path: p, operation: item[method], item });
    }
  }
  return out;
}

/** The text of the `{ … }` block that starts at the first `{` at or after `from`. */
function block(text, from, what) {
  const open = text.indexOf('{', from);
  if (from < 0 || open < 0) throw new Error(`routes.rs: cannot find ${what}`);
  let depth = 0;
  for (let i = open; i < text.length; i += 1) {
    if (text[i] === '{') depth += 1;
    else if (text[i] === '}' && (depth -= 1) === 0) return text.slice(open + 1, i);
  }
  throw new Error(`routes.rs: unbalanced braces in ${what}`);
}

const methodsOf = (lhs) => [...lhs.matchAll(/Method::(\w+)/g)].map((m) => m[1].toUpperCase());
const allowOf = (text, what) => {
  const m = text.match(/method_not_allowed\("([^"]*)"\)/);
  if (!m) throw new Error(`routes.rs: no method_not_allowed("…") for ${what}`);
  return m[1].split(',').map((s) => s.trim()).filter(Boolean);
};

/**
 * The routes the Worker answers, read from src/worker/routes.rs (and the defaults in
 * src/settings.rs): the webhook, health, every `Admin::parse` arm with the methods its
 * `allow()` arm gives and the dispatch in `handle` answers, and every file in `public/`
 * (Workers Static Assets serve them with GET). Path segments bound to a name become
 * `{name}`. Returns `[{ key, method, path, allow, source }]`.
 */
export function workerRoutes(root = ROOT) {
  const src = readFileSync(path.join(root, 'src', 'worker', 'routes.rs'), 'utf8');
  const settings = readFileSync(path.join(root, 'src', 'settings.rs'), 'utf8');
  const routes = [];
  const add = (method, p, allow, source) => routes.push({ key: `${method} ${p}`, method, path: p, allow, source });

  // The webhook and health blocks at the top of `handle`.
  const handle = block(src, src.indexOf('pub async fn handle('), 'fn handle');
  const webhookPath = settings.match(/get\("WEBHOOK_PATH"\)[^;]*?unwrap_or\("([^"]*)"\)/)?.[1];
  const healthPath = settings.match(/pub const HEALTH_PATH: &str = "([^"]*)";/)?.[1];
  if (!webhookPath || !healthPath) throw new Error('settings.rs: cannot read the WEBHOOK_PATH default or HEALTH_PATH');
  // A source's own webhook path (issue 21): `/hooks/{id}`.
  const sourcePath = readFileSync(path.join(root, 'src', 'sources', 'routing.rs'), 'utf8')
    .match(/pub const HOOKS_PREFIX: &str = "([^"]*)";/)?.[1];
  if (!sourcePath) throw new Error('sources/routing.rs: cannot read HOOKS_PREFIX');
  for (const [marker, p, source] of [['if path == settings.webhook_path', webhookPath, 'webhook'], ['if path == HEALTH_PATH', healthPath, 'health'], ['if let Some(id) = path_source_id(&path)', `${sourcePath}{sourceId}`, 'source webhook']]) {
    const body = block(handle, handle.indexOf(marker), marker);
    const allow = allowOf(body, source);
    const arms = body.split('\n').filter((l) => /Method::\w+.*=>/.test(l)).map((l) => l.split('=>')[0]);
    const methods = arms.flatMap(methodsOf);
    if (methods.length === 0) throw new Error(`routes.rs: no methods for ${source}`);
    for (const method of methods) add(method, p, allow, source);
  }

  // `Admin::parse`: `["events", id, "replay"] if … => Admin::EventReplay(id),`.
  const parse = block(src, src.indexOf('fn parse('), 'Admin::parse');
  const templates = new Map();
  for (const m of parse.matchAll(/^\s*\[([^\]]*)\][^\n]*?=>\s*Admin::(\w+)/gm)) {
    const segments = m[1].split(',').map((s) => s.trim()).map((s) => {
      if (/^"[^"]*"$/.test(s)) return s.slice(1, -1);
      if (/^[a-z_][a-z0-9_]*$/.test(s) && s !== '_') return `{${s}}`;
      throw new Error(`routes.rs: Admin::parse segment ${s} is neither a literal nor a name`);
    });
    templates.set(m[2], `/admin/${segments.join('/')}`);
  }
  if (templates.size === 0) throw new Error('routes.rs: no Admin::parse arms found');

  // `allow()`: `Admin::A | Admin::B(_) => "GET, POST",` and `_ => "GET",`.
  const allowBody = block(src, src.indexOf('fn allow(&self)'), 'Admin::allow');
  const allows = new Map();
  let fallback;
  for (const m of allowBody.matchAll(/^\s*([^\n]*?)\s*=>\s*"([^"]*)"/gm)) {
    const methods = m[2].split(',').map((s) => s.trim()).filter(Boolean);
    if (m[1] === '_') fallback = methods;
    else for (const v of m[1].matchAll(/Admin::(\w+)/g)) allows.set(v[1], methods);
  }

  // The dispatch: `(Method::Get, Admin::Appointments) => …` (in `handle` or the admin
  // dispatch it calls, behind the token).
  const dispatch = new Map();
  for (const m of src.matchAll(/\(Method::(\w+),\s*Admin::(\w+)/g)) {
    dispatch.set(m[2], [...(dispatch.get(m[2]) ?? []), m[1].toUpperCase()]);
  }

  for (const [variant, template] of templates) {
    const allow = allows.get(variant) ?? fallback;
    if (!allow) throw new Error(`routes.rs: Admin::${variant} has no allow() arm and there is no fallback`);
    // A variant dispatched by a handler that takes the method itself (`(method, Admin::X(id))`)
    // is trusted to answer what allow() says; one matched on `Method::…` must agree with it.
    const byHandler = new RegExp(`\\(\\s*[a-z_]\\w*\\s*,\\s*Admin::${variant}\\b`).test(src);
    const answered = dispatch.get(variant) ?? [];
    if (!byHandler && [...answered].sort().join() !== [...allow].sort().join()) {
      throw new Error(`routes.rs: Admin::${variant} (${template}) is dispatched for ${answered.join(', ') || 'no method'} but allow() says ${allow.join(', ')}`);
    }
    for (const method of allow) add(method, template, allow, `Admin::${variant}`);
  }

  // Static assets: every file under public/ answers GET, except `_headers` (the assets
  // layer's configuration, not served) and the console's files (public/admin/: a web page,
  // not API operations; tests/console checks what it serves).
  const publicDir = path.join(root, 'public');
  const walk = (dir) => readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
  for (const file of walk(publicDir)) {
    const served = `/${path.relative(publicDir, file).split(path.sep).join('/')}`;
    if (served === '/_headers' || served.startsWith('/admin/')) continue;
    add('GET', served, ['GET'], 'public/');
  }
  return routes;
}
