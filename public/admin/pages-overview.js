// Overview: the last 24 hours as a chart (GET /admin/stats), pending schedule writes, troubled
// destinations, and reminders that failed.
import { api, findAppointments } from './api.js';
import { stackedBars, totals, formatHour, utcTitle, troubledDestinations, destinationState, appointmentRows } from './lib.js';
import { h, s, time, badge, section, fill, table, facts, field, button, flash } from './dom.js';
import { sourceSelect } from './pages-sources.js';

const EVENT_KEYS = ['processed', 'processing', 'failed'];
const REFUSAL_KEYS = ['missing_signature', 'invalid_signature', 'too_large', 'invalid_json'];
const LABELS = {
  processed: 'processed', processing: 'processing', failed: 'failed',
  missing_signature: 'missing signature', invalid_signature: 'invalid signature', too_large: 'too large', invalid_json: 'invalid JSON',
};
/** How far around now the overview looks for failed reminders (no route lists them all). */
const REMINDER_WINDOW = { beforeMs: 2 * 86_400_000, afterMs: 7 * 86_400_000, maxAppointments: 50 };

let chartId = 0;

/** A stacked bar chart (inline SVG) of `stats.hours[].<group>`, with a legend and a table. */
export function chart(stats, group, keys, title) {
  const g = stackedBars(stats, group, keys, { width: 720, height: 200 });
  const id = `chart-${++chartId}`;
  const sum = totals(stats, group);
  const desc = keys.map((k) => `${LABELS[k]}: ${sum[k] ?? 0}`).join(', ');
  const svg = s('svg', { viewBox: `0 0 ${g.width} ${g.height}`, class: 'chart', role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, preserveAspectRatio: 'none' },
    s('title', { id: `${id}-t` }, title),
    s('desc', { id: `${id}-d` }, `Totals over ${g.bars.length} hours: ${desc}.`),
    g.ticks.map((t) => [
      s('line', { x1: g.pad.left, x2: g.width - g.pad.right, y1: t.y, y2: t.y, class: 'grid' }),
      s('text', { x: g.pad.left - 4, y: t.y + 4, class: 'axis', 'text-anchor': 'end' }, String(t.value)),
    ]),
    g.bars.map((b, i) => [
      // An invisible full-height target per hour, so hovering an empty hour still says so.
      s('rect', { x: b.x, y: g.pad.top, width: b.slot, height: g.plotH, class: 'hit' },
        s('title', `${formatHour(b.hour)} (${utcTitle(b.hour)}): ${b.total} in all`)),
      b.segments.map((seg) => s('rect', { x: seg.x, y: seg.y, width: seg.width, height: Math.max(seg.height, 0.5), class: `seg seg-${seg.key}` },
        s('title', `${formatHour(b.hour)} (${utcTitle(b.hour)}): ${LABELS[seg.key]} ${seg.n}`))),
      i % 3 === 0 ? s('text', { x: b.x + b.slot / 2, y: g.height - 6, class: 'axis', 'text-anchor': 'middle' }, formatHour(b.hour)) : null,
    ]));
  const legend = h('ul', { class: 'legend' }, keys.map((k) => h('li', h('span', { class: `swatch seg-${k}`, 'aria-hidden': 'true' }), `${LABELS[k]}: ${sum[k] ?? 0}`)));
  const rows = (stats.hours ?? []).filter((hr) => keys.some((k) => hr[group]?.[k]));
  const detail = h('details', h('summary', 'As a table'),
    table([{ label: 'Hour', cell: (hr) => time(hr.hour) }, ...keys.map((k) => ({ label: LABELS[k], cell: (hr) => String(hr[group]?.[k] ?? 0) }))],
      rows, { empty: 'Nothing in these hours.' }));
  return h('figure', { class: 'chart-figure' }, h('figcaption', title), h('div', { class: 'chart-box' }, svg), legend, detail);
}

async function statsSection(sourceId) {
  const stats = await api('/admin/stats', { query: { hours: 24, sourceId } });
  const q = sourceId ? `&sourceId=${encodeURIComponent(sourceId)}` : '';
  return [
    chart(stats, 'events', EVENT_KEYS, 'Events per hour, by status'),
    chart(stats, 'refusals', REFUSAL_KEYS, 'Refused requests per hour, by reason'),
    h('p', h('a', { href: `#/events?status=failed${q}` }, 'Failed events'), ' · ', h('a', { href: `#/events${q ? `?${q.slice(1)}` : ''}` }, 'All events')),
  ];
}

/** Per source, the last 24 hours: events, refusals, failures, and the last event. */
async function sourcesSection() {
  const { sources } = await api('/admin/sources');
  const rows = await Promise.all(sources.map(async (src) => {
    const [stats, last] = await Promise.all([
      api('/admin/stats', { query: { hours: 24, sourceId: src.id } }),
      api('/admin/events', { query: { sourceId: src.id, limit: 1 } }),
    ]);
    const sum = (group) => Object.values(totals(stats, group)).reduce((a, b) => a + b, 0);
    return { src, events: sum('events'), refusals: sum('refusals'), failed: totals(stats, 'events').failed ?? 0, last: last.events?.[0] };
  }));
  return table([
    { label: 'Source', cell: (r) => h('a', { href: `#/events?sourceId=${encodeURIComponent(r.src.id)}` }, r.src.name) },
    { label: 'State', cell: (r) => badge(r.src.enabled ? 'enabled' : 'paused', r.src.enabled ? 'ok' : 'held') },
    { label: 'Events', cell: (r) => String(r.events) },
    { label: 'Refusals', cell: (r) => String(r.refusals) },
    { label: 'Failures', cell: (r) => String(r.failed) },
    { label: 'Last event', cell: (r) => (r.last ? time(r.last.receivedAt) : '—') },
  ], rows, { className: 'per-source' });
}

async function pendingSection(target) {
  const p = await api('/admin/pending-writes');
  const objects = p.objects ?? [];
  const aside = objects.flatMap((o) => (o.aside ?? []).map((a) => ({ ...a, owner: o.owner })));
  const entry = (a) => `/admin/pending-writes/${encodeURIComponent(a.owner)}/${a.seq}`;
  const redo = async (message) => {
    flash(message, 'info');
    await fill(target, () => pendingSection(target));
  };
  return [
    facts([
      ['Writes waiting for D1', h('strong', String(p.pending ?? 0))],
      ['Set aside', String(p.aside ?? 0)],
      ['Attempts (most)', String(p.attempts ?? 0)],
      ['Last error', p.lastError ?? null],
      ['Next attempt', Number.isFinite(p.nextAttemptAt) ? time(p.nextAttemptAt, { relative: true }) : null],
      p.legacyQueue ? ['Previous release\'s queue', `${p.legacyQueue.pending ?? 0} pending`] : null,
    ]),
    objects.length ? table([
      { label: 'Object', cell: (o) => h('code', o.owner ?? '—') },
      { label: 'Pending', cell: (o) => String(o.pending ?? 0) },
      { label: 'Aside', cell: (o) => String(o.aside?.length ?? 0) },
      { label: 'Attempts', cell: (o) => String(o.attempts ?? 0) },
      { label: 'Last error', cell: (o) => o.lastError ?? '—' },
      { label: 'Next attempt', cell: (o) => time(o.nextAttemptAt) },
    ], objects) : null,
    p.nextCursor ? h('p', { class: 'muted' }, `The first ${objects.length} objects holding writes; more follow (GET /admin/pending-writes?cursor=…).`) : null,
    aside.length ? table([
      { label: 'Object', cell: (a) => h('code', a.owner) },
      { label: 'Entry', cell: (a) => `#${a.seq} ${a.kind}${a.target ? ` → ${a.target}` : ''}` },
      { label: 'Failures', cell: (a) => String(a.failures ?? 0) },
      { label: 'Last error', cell: (a) => a.lastError ?? '—' },
      { label: 'Set aside', cell: (a) => time(a.asideAt) },
      {
        label: 'Actions',
        cell: (a) => [
          button('Retry', async () => {
            await api(`${entry(a)}/retry`, { method: 'POST' });
            await redo(`Entry #${a.seq} of ${a.owner} applied.`);
          }, { kind: 'secondary', 'aria-label': `Retry entry ${a.seq} of ${a.owner}` }),
          ' ',
          button('Drop', async () => {
            if (!window.confirm(`Drop entry #${a.seq} of ${a.owner}? Its writes are never applied.`)) return;
            await api(entry(a), { method: 'DELETE' });
            await redo(`Entry #${a.seq} of ${a.owner} dropped.`);
          }, { kind: 'danger', 'aria-label': `Drop entry ${a.seq} of ${a.owner}` }),
        ],
      },
    ], aside, { caption: 'Set aside: failed 5 times on their own while D1 answered; the writes behind them drained' }) : null,
  ];
}

async function destinationsSection() {
  const { destinations } = await api('/admin/destinations');
  const troubled = troubledDestinations(destinations);
  if (!troubled.length) return h('p', `All ${destinations.length} destination${destinations.length === 1 ? '' : 's'} enabled and delivering.`);
  return table([
    { label: 'Destination', cell: (d) => h('a', { href: `#/destinations/${encodeURIComponent(d.id)}` }, d.url) },
    { label: 'State', cell: (d) => badge(destinationState(d)) },
    { label: 'Failures in a row', cell: (d) => String(d.consecutiveFailures ?? 0) },
    { label: 'Paused because', cell: (d) => d.pausedReason ?? '—' },
    { label: 'Last failure', cell: (d) => time(d.lastFailureAt) },
  ], troubled);
}

async function failedRemindersSection() {
  const now = Date.now();
  const start = Math.floor((now - REMINDER_WINDOW.beforeMs) / 1000);
  const end = Math.floor((now + REMINDER_WINDOW.afterMs) / 1000);
  const found = await findAppointments({ start, end }, { maxPages: REMINDER_WINDOW.maxAppointments / 10 });
  const rows = appointmentRows(found).slice(0, REMINDER_WINDOW.maxAppointments);
  const failed = [];
  for (const row of rows) {
    const { reminders } = await api('/admin/reminders', { query: { appointmentId: row.id } });
    for (const r of reminders ?? []) if (r.state === 'failed') failed.push({ ...r, row });
  }
  const note = h('p', { class: 'muted' },
    `No admin route lists failed reminders across all appointments, so this lists those of the ${rows.length} appointment${rows.length === 1 ? '' : 's'} starting between `,
    time(start * 1000), ' and ', time(end * 1000), ` (range query, at most ${REMINDER_WINDOW.maxAppointments}).`);
  return [
    table([
      { label: 'Appointment', cell: (r) => h('a', { href: `#/appointments?start=${start * 1000}&end=${end * 1000}&open=${encodeURIComponent(r.appointmentId)}` }, r.appointmentId) },
      { label: 'Patient', cell: (r) => r.row.patient ?? '—' },
      { label: 'Was due', cell: (r) => time(r.fireAt) },
      { label: 'Attempts', cell: (r) => String(r.attempts) },
      { label: 'Last error', cell: (r) => r.lastError ?? '—' },
    ], failed, { empty: 'No failed reminders.' }),
    note,
  ];
}

export async function overviewPage(view) {
  const stats = h('div');
  const perSource = h('div');
  const pending = h('div');
  const destinations = h('div');
  const reminders = h('div');
  view.append(
    h('h1', 'Overview'),
    section('Last 24 hours', h('div', { class: 'row' }, field('Source', sourceSelect('', (id) => fill(stats, () => statsSection(id))))), stats),
    section('Sources, last 24 hours', perSource),
    h('div', { class: 'grid-2' },
      section('Pending schedule writes', pending),
      section('Destinations paused or failing', destinations)),
    section('Reminders that failed', reminders),
    h('p', { class: 'muted' }, `Times are in your time zone (${Intl.DateTimeFormat().resolvedOptions().timeZone}); hover one for UTC. Updated `, time(Date.now()), '.'));
  await Promise.all([
    fill(stats, () => statsSection('')),
    fill(perSource, sourcesSection, { unavailable: 'This Worker has no sources API yet (404).' }),
    fill(pending, () => pendingSection(pending)),
    fill(destinations, destinationsSection),
    fill(reminders, failedRemindersSection),
  ]);
}
