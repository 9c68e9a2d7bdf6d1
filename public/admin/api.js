// The admin API, same origin only. The token lives in sessionStorage (this tab, until it
// closes); any 401 forgets it and sends the operator back to sign-in.
import { queryString, followCursor } from './lib.js';

const TOKEN_KEY = 'eka-admin-token';

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** An answer other than 2xx: `status`, the API's `error` message and `field` when given. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.field = body?.field ?? null;
  }
}

let unauthorized = () => {};
/** Sets what happens on a 401 (the app shows sign-in). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** Calls `path` (with `query`) and returns the JSON body; throws ApiError for non-2xx. */
export async function api(path, { method = 'GET', query, body } = {}) {
  const bearer = token.get();
  if (!bearer) {
    // No news for the operator: a page still loading after a refusal must not replace the
    // refusal's message (or the form being typed in).
    unauthorized(null);
    throw new ApiError(401, { error: 'Not signed in' });
  }
  const headers = { authorization: `Bearer ${bearer}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path + queryString(query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { error: text.slice(0, 200) };
  }
  if (res.status === 401) {
    // Only the token that was refused is forgotten: a late 401 from a request sent with an
    // earlier (wrong) token must not sign out the operator who has since signed in again.
    if (token.get() === bearer) {
      token.clear();
      unauthorized('The admin token was refused (401). Sign in again.');
    }
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/**
 * GET /admin/appointments for `query`, every page (10 rows each, at most `maxPages`) merged:
 * `{appointments, followupAppointments, failed, complete}`.
 */
export async function findAppointments(query, { maxPages = 50 } = {}) {
  const merged = { appointments: [], followupAppointments: [], failed: [], stored: [] };
  const { complete } = await followCursor(async (cursor) => {
    const page = await api('/admin/appointments', { query: { ...query, cursor } });
    for (const k of Object.keys(merged)) merged[k].push(...(page?.[k] ?? []));
    return page;
  }, 'failed', { maxSteps: maxPages });
  return { ...merged, complete };
}
