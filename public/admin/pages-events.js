// Events: the log with filters and keyset paging, one event with its body, deliveries and
// attempts, replay of one, and replay of the failed ones in a range.
import { api, ApiError } from './api.js';
import { createPager, followCursor, toLocalInput, fromLocalInput, formatDuration, truncate } from './lib.js';
import { h, time, badge, section, fill, field, facts, button, flash, pagedTable, errorText } from './dom.js';
import { sourceSelect } from './pages-sources.js';

const STATUSES = ['processing', 'processed', 'failed'];
const EVENTS = ['appointment.created', 'appointment.updated', 'prescription.created', 'prescription.updated'];
const PAGE = 50;

const eventLink = (id) => h('a', { href: `#/events/${encodeURIComponent(id)}` }, h('code', id));

/** The attempt log columns (event and destination pages). */
export function attemptColumns({ withEvent = true, withDestination = true } = {}) {
  return [
    { label: 'At', cell: (a) => time(a.at) },
    withEvent ? { label: 'Event', cell: (a) => eventLink(a.eventId) } : null,
    withDestination ? { label: 'Destination', cell: (a) => h('a', { href: `#/destinations/${encodeURIComponent(a.destinationId)}` }, h('code', a.destinationId)) } : null,
    { label: '#', cell: (a) => String(a.attempt ?? '—') },
    { label: 'Result', cell: (a) => badge(a.ok ? 'ok' : 'failed') },
    { label: 'HTTP', cell: (a) => (a.status == null ? '—' : String(a.status)) },
    { label: 'Took', cell: (a) => formatDuration(a.durationMs) },
    { label: 'Error / response', cell: (a) => (a.error || a.responseBody ? h('span', { title: a.error ?? a.responseBody }, truncate(a.error ?? a.responseBody, 60)) : '—') },
  ].filter(Boolean);
}

/** The delivery columns, with Retry on failed ones; `onRetried(result)` after a retry. */
export function deliveryColumns({ withEvent = true, withDestination = true, onRetried } = {}) {
  return [
    withEvent ? { label: 'Event', cell: (d) => eventLink(d.eventId) } : null,
    withDestination ? { label: 'Destination', cell: (d) => h('a', { href: `#/destinations/${encodeURIComponent(d.destinationId)}` }, h('code', d.destinationId)) } : null,
    { label: 'Message', cell: (d) => h('code', d.id) },
    { label: 'Status', cell: (d) => badge(d.status) },
    { label: 'Attempts', cell: (d) => String(d.attempts ?? 0) },
    { label: 'Next attempt', cell: (d) => time(d.nextAttemptAt) },
    { label: 'Last error', cell: (d) => (d.lastError ? `${d.lastStatus ? `${d.lastStatus}: ` : ''}${truncate(d.lastError, 60)}` : '—') },
    { label: 'Updated', cell: (d) => time(d.updatedAt) },
    {
      label: 'Actions',
      cell: (d) => (d.status === 'failed'
        ? button('Retry', async () => {
          const result = await api(`/admin/deliveries/${encodeURIComponent(d.id)}/retry`, { method: 'POST' });
          flash(`Retried ${d.id}: ${result.attempt?.ok ? 'delivered' : `failed again (${result.attempt?.error ?? result.attempt?.status ?? 'no answer'})`}.`, result.attempt?.ok ? 'ok' : 'error');
          onRetried?.(result);
        }, { 'aria-label': `Retry message ${d.id}` })
        : null),
    },
  ].filter(Boolean);
}

function filterForm(params) {
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((st) => h('option', { value: st, selected: params.get('status') === st }, st)));
  const event = h('input', { name: 'event', list: 'event-names', value: params.get('event') ?? '', autocomplete: 'off' });
  const appointment = h('input', { name: 'appointmentId', value: params.get('appointmentId') ?? '', autocomplete: 'off' });
  const since = h('input', { name: 'since', type: 'datetime-local', value: params.get('since') ? toLocalInput(Number(params.get('since'))) : '' });
  const until = h('input', { name: 'until', type: 'datetime-local', value: params.get('until') ? toLocalInput(Number(params.get('until'))) : '' });
  const source = sourceSelect(params.get('sourceId') ?? '');
  const form = h('form', { class: 'card filters', role: 'search', 'aria-label': 'Filter events' },
    h('datalist', { id: 'event-names' }, EVENTS.map((e) => h('option', { value: e }))),
    field('Source', source), field('Status', status), field('Event', event), field('Appointment id', appointment),
    field('Since', since, 'your time zone'), field('Until', until, 'your time zone'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter'), h('a', { href: '#/events', class: 'btn-link' }, 'Clear')));
  const values = () => ({
    sourceId: source.value, status: status.value, event: event.value.trim(), appointmentId: appointment.value.trim(),
    since: fromLocalInput(since.value), until: fromLocalInput(until.value),
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(values())) if (v !== null && v !== '') q.set(k, String(v));
    location.hash = `#/events${q.toString() ? `?${q}` : ''}`;
  });
  return { form, values };
}

function replayRange(values) {
  const out = h('div', { role: 'status', class: 'replay-progress' });
  const run = button('Replay failed events in this range', async () => {
    const { since, until } = values();
    const range = `${since ? new Date(since).toLocaleString() : 'the beginning'} – ${until ? new Date(until).toLocaleString() : 'now'}`;
    if (!window.confirm(`Replay every failed event received ${range}?`)) return;
    let ok = 0;
    const result = await followCursor(
      (cursor) => api('/admin/events/replay', { method: 'POST', body: { status: 'failed', since, until, cursor } }),
      'replayed',
      {
        onStep: (all) => {
          ok = all.filter((r) => r.status >= 200 && r.status < 300).length;
          out.textContent = `Replayed ${all.length} so far: ${ok} succeeded, ${all.length - ok} failed again…`;
        },
      });
    const n = result.items.length;
    out.textContent = n === 0
      ? 'No failed events in this range.'
      : `Replayed ${n} failed event${n === 1 ? '' : 's'}: ${ok} succeeded, ${n - ok} failed again.`;
  }, { kind: 'secondary' });
  return h('div', { class: 'row' }, run, out);
}

export async function eventsPage(view, route) {
  const { form, values } = filterForm(route.params);
  const query = {};
  for (const k of ['sourceId', 'status', 'event', 'appointmentId', 'since', 'until']) if (route.params.get(k)) query[k] = route.params.get(k);
  const pager = createPager((cursor) => api('/admin/events', { query: { ...query, limit: PAGE, cursor } }), 'events');
  const list = pagedTable([
    { label: 'Received', cell: (e) => time(e.receivedAt) },
    { label: 'Event', cell: (e) => e.event },
    { label: 'Source', cell: (e) => h('code', e.source ?? 'default') },
    { label: 'Appointment', cell: (e) => e.appointmentId ?? '—' },
    { label: 'Status', cell: (e) => badge(e.status) },
    { label: 'Answer', cell: (e) => [String(e.httpStatus ?? '—'), e.error ? h('small', { class: 'muted' }, ` ${e.error}`) : null] },
    { label: 'Copies', cell: (e) => String(e.deliveries) },
    { label: 'Replays', cell: (e) => String(e.replays) },
    { label: 'Id', cell: (e) => eventLink(e.id) },
  ], pager, { empty: 'No events match.', className: 'events' });
  const listBox = h('div');
  view.append(h('h1', 'Events'), form, section('Replay', h('p', 'Runs every failed event received in the filter\'s Since–Until range again (100 per request, following the API\'s cursor).'), replayRange(values)), section('Event log', listBox));
  await fill(listBox, async () => {
    await list.start();
    return list;
  });
}

export async function eventPage(view, route) {
  const id = route.id;
  const head = h('div');
  const body = h('div');
  const deliveries = h('div');
  const attempts = h('div');
  view.append(
    h('p', h('a', { href: '#/events' }, '← Events')),
    h('h1', 'Event ', h('code', id)),
    head,
    section('Body', body),
    section('Deliveries', deliveries),
    section('Attempts', attempts));
  const result = h('p', { role: 'status', class: 'replay-result', id: 'replay-result' });
  const load = async () => {
    const data = await api(`/admin/events/${encodeURIComponent(id)}`);
    const e = data.event;
    body.replaceChildren(data.body === null || data.body === undefined
      ? h('p', { class: 'muted' }, 'The body is no longer kept (or EVENT_ENCRYPTION_KEY is not set), so it cannot be shown or replayed.')
      : h('pre', { class: 'json', tabindex: '0' }, typeof data.body === 'string' ? data.body : JSON.stringify(data.body, null, 2)));
    return [
      facts([
        ['Event', e.event], ['Status', badge(e.status)], ['Answered', e.httpStatus == null ? null : String(e.httpStatus)],
        ['Error', e.error], ['Source', e.source], ['Appointment', e.appointmentId], ['Transaction', e.transactionId], ['Business', e.businessId],
        ['Received', time(e.receivedAt)], ['Last seen', time(e.lastSeenAt)],
        ['Copies received', String(e.deliveries)], ['Replays', h('span', { id: 'replays' }, String(e.replays))],
      ]),
      h('div', { class: 'row' },
        button('Replay this event', async () => {
          try {
            const answer = await api(`/admin/events/${encodeURIComponent(id)}/replay`, { method: 'POST' });
            result.textContent = `Replayed: ${answer?.success === false ? 'failed' : 'succeeded'}.`;
          } catch (err) {
            if (err instanceof ApiError && err.status === 401) return;
            result.textContent = `Replay answered: ${errorText(err)}`;
          }
          await fill(head, load);
        }, { kind: 'primary', id: 'replay' }),
        result),
    ];
  };
  await Promise.all([
    fill(head, load),
    fill(deliveries, async () => {
      const pager = createPager((cursor) => api('/admin/deliveries', { query: { eventId: id, limit: PAGE, cursor } }), 'deliveries');
      const t = pagedTable(deliveryColumns({ withEvent: false, onRetried: () => fill(attempts, loadAttempts) }), pager, { empty: 'No deliveries to destinations.' });
      await t.start();
      return t;
    }),
    fill(attempts, loadAttempts),
  ]);
  async function loadAttempts() {
    const pager = createPager((cursor) => api('/admin/attempts', { query: { eventId: id, limit: PAGE, cursor } }), 'attempts');
    const t = pagedTable(attemptColumns({ withEvent: false }), pager, { empty: 'No delivery attempts.' });
    await t.start();
    return t;
  }
}
