// Appointments: the range query (GET /admin/appointments, epoch seconds) with patient, doctor
// and clinic, and what is kept of each row; per appointment its reminders (list, create,
// cancel) and what its object keeps.
import { api, ApiError, findAppointments } from './api.js';
import { appointmentRows, keptSummary, toLocalInput, fromLocalInput } from './lib.js';
import { h, time, badge, section, fill, field, button, flash, table, errorText } from './dom.js';
import { sourceSelect } from './pages-sources.js';

const DAY = 86_400_000;
const SHOW = 50;

// What the appointment's object keeps of its events (GET /admin/appointments/{id}/object):
// claims, held intakes, enriched events waiting for their fan-out, meta. No bodies.
const OBJECT_TABLES = [
  ['claims', 'Claims (one per body)', [['Event', 'eventId'], ['Status', 'status'], ['Claimed', 'claimedAt', true], ['Last seen', 'seenAt', true]]],
  ['intake', 'Held intakes', [['Event', 'eventId'], ['Mode', 'mode'], ['Lease until', 'leaseUntil', true]]],
  ['outgoing', 'Events waiting for their fan-out', [['Event', 'eventId'], ['Type', 'event'], ['Stored', 'storedAt', true]]],
  ['meta', 'Meta', [['Key', 'key'], ['Value', 'value']]],
];

function objectPanel(appointmentId) {
  const box = h('div', { class: 'object-panel' });
  fill(box, async () => {
    const kept = await api(`/admin/appointments/${encodeURIComponent(appointmentId)}/object`);
    return [h('h3', 'Kept by the object of ', h('code', appointmentId)), ...OBJECT_TABLES.map(([key, title, cols]) => table(
      cols.map(([label, k, isTime]) => ({ label, cell: (r) => (isTime ? time(r[k]) : String(r[k] ?? '—')) })),
      kept[key] ?? [], { caption: title, empty: `${title}: none.`, className: `object-${key}` },
    ))];
  });
  return box;
}

function reminderPanel(appointmentId, sourceId) {
  const list = h('div');
  const at = h('input', { type: 'datetime-local', required: true, value: toLocalInput(Date.now() + 3_600_000) });
  const error = h('p', { role: 'alert', class: 'form-error' });
  const load = async () => {
    // With the page's source filter: the reminders run with that source's account.
    const { reminders, sourceId: account } = await api('/admin/reminders', { query: { appointmentId, sourceId } });
    const of = h('p', { class: 'muted reminder-account' }, 'Sent with the account of source ', h('code', account ?? 'default'), '.');
    return [of, table([
      { label: 'Sends at', cell: (r) => time(r.fireAt, { relative: true }) },
      { label: 'Source', cell: (r) => r.source },
      { label: 'State', cell: (r) => badge(r.state) },
      { label: 'Attempts', cell: (r) => String(r.attempts) },
      { label: 'Last error', cell: (r) => r.lastError ?? '—' },
      {
        label: 'Actions',
        cell: (r) => (r.state === 'pending'
          ? button('Cancel', async () => {
            await api(`/admin/reminders/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
            flash(`Cancelled the reminder at ${new Date(r.fireAt).toLocaleString()}.`, 'ok');
            await fill(list, load);
          }, { kind: 'danger', 'aria-label': `Cancel the reminder at ${new Date(r.fireAt).toLocaleString()}`, class: 'cancel-reminder' })
          : null),
      },
    ], (reminders ?? []).sort((a, b) => a.fireAt - b.fireAt), { empty: 'No reminders.', className: 'reminders' })];
  };
  const form = h('form', { class: 'row add-reminder', 'aria-label': `New reminder for ${appointmentId}` },
    field('Send at (your time zone)', at), h('button', { type: 'submit' }, 'Add reminder'), error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const ms = fromLocalInput(at.value);
    if (ms === null) {
      error.textContent = 'Pick a date and time.';
      return;
    }
    try {
      await api('/admin/reminders', { method: 'POST', body: { appointmentId, cronTime: new Date(ms).toISOString() } });
      flash(`Reminder added for ${new Date(ms).toLocaleString()}.`, 'ok');
      await fill(list, load);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) error.textContent = errorText(e);
    }
  });
  const panel = h('div', { class: 'reminder-panel', id: `rem-${appointmentId.replace(/[^A-Za-z0-9_-]/g, '_')}` },
    h('h3', 'Reminders of ', h('code', appointmentId)), list, form, objectPanel(appointmentId));
  fill(list, load);
  return panel;
}

export async function appointmentsPage(view, route) {
  const now = Date.now();
  const startMs = Number(route.params.get('start')) || now - DAY;
  const endMs = Number(route.params.get('end')) || now + 7 * DAY;
  const open = route.params.get('open');
  const from = h('input', { type: 'datetime-local', required: true, value: toLocalInput(startMs) });
  const to = h('input', { type: 'datetime-local', required: true, value: toLocalInput(endMs) });
  const sourceId = route.params.get('sourceId') ?? '';
  const source = sourceSelect(sourceId);
  const form = h('form', { class: 'card filters', role: 'search', 'aria-label': 'Appointments between' },
    field('From', from, 'your time zone'), field('To', to, 'your time zone'), field('Source', source),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const s = fromLocalInput(from.value);
    const e = fromLocalInput(to.value);
    if (s === null || e === null || s > e) {
      flash('Pick a From before To.', 'error');
      return;
    }
    location.hash = `#/appointments?start=${s}&end=${e}${source.value ? `&sourceId=${encodeURIComponent(source.value)}` : ''}`;
  });
  const results = h('div');
  view.append(h('h1', 'Appointments'), form, section('Bookings and follow-ups', results));
  await fill(results, async () => {
    const found = await findAppointments({ start: Math.floor(startMs / 1000), end: Math.floor(endMs / 1000), sourceId });
    const rows = appointmentRows(found);
    let shown = 0;
    const t = table([
      { label: 'Starts', cell: (r) => time(r.startMs) },
      { label: 'Patient', cell: (r) => r.patient ?? '—' },
      { label: 'Doctor', cell: (r) => r.doctor ?? '—' },
      { label: 'Clinic', cell: (r) => r.clinic ?? '—' },
      { label: 'Status', cell: (r) => [r.status ? badge(r.status, 'info') : '—', ' ', h('small', { class: 'muted' }, r.kind)] },
      { label: 'Appointment', cell: (r) => h('code', r.id) },
      {
        label: 'Kept',
        cell: (r) => h('small', { class: 'kept' }, keptSummary(r.kept),
          r.kept?.reminderSentAt == null ? null : [' ', time(r.kept.reminderSentAt * 1000)]),
      },
      {
        label: 'Reminders',
        cell: (r) => {
          const btn = h('button', { type: 'button', class: 'btn-secondary show-reminders', 'aria-expanded': 'false', 'aria-label': `Reminders of ${r.id}` }, 'Reminders');
          btn.addEventListener('click', () => {
            const row = btn.closest('tr');
            const next = row.nextElementSibling;
            if (next?.classList.contains('reminder-row')) {
              next.remove();
              btn.setAttribute('aria-expanded', 'false');
              return;
            }
            const panel = reminderPanel(r.id, sourceId);
            row.after(h('tr', { class: 'reminder-row' }, h('td', { colspan: '8' }, panel)));
            btn.setAttribute('aria-expanded', 'true');
            btn.setAttribute('aria-controls', panel.id);
          });
          if (open && open === r.id) queueMicrotask(() => btn.click());
          return btn;
        },
      },
    ], [], { empty: 'No bookings or follow-ups start in this range.', className: 'appointments' });
    const more = button('More', () => {
      t.addRows(rows.slice(shown, shown + SHOW));
      shown = Math.min(rows.length, shown + SHOW);
      more.hidden = shown >= rows.length;
    }, { class: 'more' });
    t.addRows(rows.slice(0, SHOW));
    shown = Math.min(rows.length, SHOW);
    more.hidden = shown >= rows.length;
    return [
      h('p', { class: 'muted' }, `${rows.length} between `, time(startMs), ' and ', time(endMs), '.'),
      t, more,
      found.failed?.length ? h('p', { class: 'notice notice-error' }, `Could not fetch from Eka: ${found.failed.join(', ')}`) : null,
    ];
  });
}
