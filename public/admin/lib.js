// The console's pure helpers: formatting, query strings, paging and the chart's geometry.
// No DOM and no network here, so Node's test runner imports this file as it is
// (tests/console/lib.test.mjs).

/** Local date and time of epoch ms `ms`, in the browser's time zone (or `timeZone`). */
export function formatTime(ms, { locale, timeZone } = {}) {
  if (!Number.isFinite(ms)) return '—';
  return new Intl.DateTimeFormat(locale, {
    year: 'numeric', month: 'short', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone,
  }).format(new Date(ms));
}

/** The hour of epoch ms `ms`, local ("14:00"), for the chart's axis. */
export function formatHour(ms, { locale, timeZone } = {}) {
  return new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone })
    .format(new Date(ms));
}

/** The UTC value of epoch ms `ms`, for a title attribute: "2026-11-01 09:30:05 UTC". */
export function utcTitle(ms) {
  if (!Number.isFinite(ms)) return '';
  return `${new Date(ms).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '')} UTC`;
}

/** A duration: "850 ms", "1.2 s", "3 min 5 s", "2 h 10 min". */
export function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const m = Math.round(s / 60);
  return `${Math.floor(m / 60)} h${m % 60 ? ` ${m % 60} min` : ''}`;
}

/** "in 5 min" / "3 h ago" / "now", from `now`. */
export function formatRelative(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '—';
  const d = ms - now;
  if (Math.abs(d) < 1000) return 'now';
  const text = formatDuration(Math.abs(d)).replace(/ \d+ (s|min)$/, '');
  return d > 0 ? `in ${text}` : `${text} ago`;
}

const pad = (n) => String(n).padStart(2, '0');

/** Epoch ms as a `datetime-local` input value (local time, minutes). */
export function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A `datetime-local` input value (local time) as epoch ms; null when empty or invalid. */
export function fromLocalInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(String(value ?? '').trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  const date = new Date(y, mo - 1, d, h, mi, s || 0);
  return Number.isNaN(date.getTime()) ? null : date.getTime();
}

/** `?a=1&b=x` from `params`, leaving out null, undefined and empty values; '' when none. */
export function queryString(params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** "appointment.created, *" → ["appointment.created", "*"]; empty → ["*"]; "*" wins. */
export function parseEventList(text) {
  const list = [...new Set(String(text ?? '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean))];
  if (list.length === 0 || list.includes('*')) return ['*'];
  return list;
}

/** ["*"] → "all events"; otherwise the names joined. */
export function describeEvents(events) {
  if (!Array.isArray(events) || events.length === 0 || events.includes('*')) return 'all events';
  return events.join(', ');
}

/**
 * A keyset pager over an API that answers `{<key>: [...], nextCursor}`. `load(cursor)` fetches
 * one page (cursor undefined for the first). `more()` appends the next page; `done` is true
 * once the API returned no cursor. A `more()` while one is loading returns that same promise.
 */
export function createPager(load, key) {
  let pending = null;
  const pager = {
    items: [],
    nextCursor: undefined,
    done: false,
    pages: 0,
    more() {
      if (pager.done) return Promise.resolve([]);
      if (pending) return pending;
      pending = (async () => {
        try {
          const page = await load(pager.nextCursor);
          const items = (key ? page?.[key] : page?.items) ?? [];
          pager.items.push(...items);
          pager.pages += 1;
          pager.nextCursor = page?.nextCursor ?? null;
          pager.done = !pager.nextCursor;
          return items;
        } finally {
          pending = null;
        }
      })();
      return pending;
    },
  };
  return pager;
}

/**
 * Calls `step(cursor)` until it answers no `nextCursor` (or `maxSteps` is reached), collecting
 * each answer's `key` list. For the batch replay, which answers 100 at a time.
 */
export async function followCursor(step, key, { maxSteps = 1000, onStep } = {}) {
  const all = [];
  let cursor;
  for (let i = 0; i < maxSteps; i += 1) {
    const answer = await step(cursor);
    const items = answer?.[key] ?? [];
    all.push(...items);
    onStep?.(all, answer);
    cursor = answer?.nextCursor ?? null;
    if (!cursor) return { items: all, complete: true };
  }
  return { items: all, complete: false, cursor };
}

/** Sums `hours[].<group>` by name: `{processed: 12, failed: 1, …}`. */
export function totals(stats, group) {
  const out = {};
  for (const h of stats?.hours ?? []) {
    for (const [name, n] of Object.entries(h[group] ?? {})) out[name] = (out[name] ?? 0) + n;
  }
  return out;
}

/** The smallest "nice" number (1, 2, 5 × 10^k) at least `n` (at least 1). */
export function niceCeil(n) {
  if (!(n > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/**
 * The geometry of a stacked bar chart of `stats.hours[].<group>` (GET /admin/stats), in a
 * `width` × `height` box with `pad` around the plot: one bar per hour, one segment per
 * name in `keys` (bottom first, zero segments left out), and y-axis ticks.
 */
export function stackedBars(stats, group, keys, { width = 720, height = 200, pad = { top: 10, right: 8, bottom: 24, left: 36 } } = {}) {
  const hours = stats?.hours ?? [];
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sums = hours.map((h) => keys.reduce((s, k) => s + (h[group]?.[k] ?? 0), 0));
  const max = niceCeil(Math.max(0, ...sums));
  const slot = hours.length ? plotW / hours.length : plotW;
  const barW = Math.max(1, slot * 0.8);
  const scale = (n) => (n / max) * plotH;
  const bars = hours.map((h, i) => {
    let y = pad.top + plotH;
    const segments = [];
    for (const k of keys) {
      const n = h[group]?.[k] ?? 0;
      if (!n) continue;
      const hgt = scale(n);
      y -= hgt;
      segments.push({ key: k, n, x: pad.left + i * slot + (slot - barW) / 2, y, width: barW, height: hgt });
    }
    return { hour: h.hour, total: sums[i], x: pad.left + i * slot, slot, segments };
  });
  const ticks = [0, max / 2, max].map((v) => ({ value: v, y: pad.top + plotH - scale(v) }));
  return { width, height, pad, plotW, plotH, max, bars, ticks };
}

const str = (v) => (typeof v === 'string' && v.trim() ? v.trim() : null);

/** A patient's name from the Eka patient profile (`patientDetails`). */
export function patientName(p) {
  if (!p || typeof p !== 'object') return null;
  const full = [p.first_name, p.middle_name, p.last_name].map(str).filter(Boolean).join(' ');
  return full || str(p.name) || str(p.fln) || null;
}

/** A doctor's name from `doctorDetails` (the profile's personal block, or flat fields). */
export function doctorName(d) {
  if (!d || typeof d !== 'object') return null;
  const personal = d.profile?.personal ?? d.personal ?? d;
  const full = [personal.salutation, personal.first_name, personal.middle_name, personal.last_name]
    .map(str).filter(Boolean).join(' ');
  return (full && full !== str(personal.salutation) ? full : null) ?? str(d.name) ?? null;
}

/** A clinic's name from `clinicDetails` (`{clinic}`, `{data:{clinic}}` or the clinic itself). */
export function clinicName(c) {
  if (!c || typeof c !== 'object') return null;
  const clinic = c.data?.clinic ?? c.clinic ?? c;
  return str(clinic.name) ?? null;
}

/** The rows of GET /admin/appointments, bookings and follow-ups together, in start order. */
export function appointmentRows(found) {
  // What the Worker keeps of each row (`stored`), beside what the Eka API says.
  const kept = new Map((found?.stored ?? []).map((k) => [k.appointmentId, k]));
  const rows = [
    ...(found?.appointments ?? []).map((a) => ({ ...a, kind: 'booking' })),
    ...(found?.followupAppointments ?? []).map((a) => ({ ...a, kind: 'follow-up' })),
  ].map((a) => {
    const d = a.appointmentDetails ?? {};
    const start = Number(d.start_time);
    return {
      id: a.appointmentId,
      kind: a.kind,
      startMs: Number.isFinite(start) ? start * 1000 : null,
      status: d.status ?? null,
      patient: patientName(a.patientDetails) ?? d.patient_id ?? null,
      doctor: doctorName(a.doctorDetails) ?? d.doctor_id ?? null,
      clinic: clinicName(a.clinicDetails) ?? d.clinic_id ?? null,
      kept: kept.get(a.appointmentId) ?? null,
    };
  });
  // A row whose fetch from Eka failed is still listed, from what is kept.
  for (const id of found?.failed ?? []) {
    const k = kept.get(id);
    if (!k) continue;
    rows.push({
      id, kind: k.status === 'BK' ? 'booking' : 'follow-up', startMs: k.startTime * 1000, status: null,
      patient: null, doctor: null, clinic: null, kept: k,
    });
  }
  return rows.sort((x, y) => (x.startMs ?? 0) - (y.startMs ?? 0));
}

/** A kept schedule row in words: status, visit type, the appointment it replaces, reminder. */
export function keptSummary(k) {
  if (!k) return '—';
  const parts = [k.status || '—'];
  if (k.visitType) parts.push(k.visitType);
  if (k.pAid) parts.push(`replaces ${k.pAid}`);
  if (k.sourceId && k.sourceId !== 'default') parts.push(`source ${k.sourceId}`);
  parts.push(k.reminderSentAt == null ? 'no reminder sent' : 'reminder sent');
  return parts.join(' · ');
}

/** Destinations the overview lists: paused, disabled or failing. */
export function troubledDestinations(list) {
  return (list ?? []).filter((d) => d.pausedReason || d.enabled === false || (d.consecutiveFailures ?? 0) > 0);
}

/** The state word of a destination: "paused", "disabled", "failing" or "healthy". */
export function destinationState(d) {
  if (d.pausedReason) return 'paused';
  if (d.enabled === false) return 'disabled';
  if ((d.consecutiveFailures ?? 0) > 0) return 'failing';
  return 'healthy';
}

/** The console's routes: "#/events/evt_1?status=failed" → {page:"events", id:"evt_1", params}. */
export function parseRoute(hash) {
  const raw = String(hash ?? '').replace(/^#\/?/, '');
  const [pathPart, query = ''] = raw.split('?');
  const [page = '', ...rest] = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  return { page: page || 'overview', id: rest[0] ?? null, params: new URLSearchParams(query) };
}

/** A short, single-line preview of `text` (at most `max` characters). */
export function truncate(text, max = 80) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
