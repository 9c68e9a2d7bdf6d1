// Destinations: create (secret shown once), pause/resume, test, rotate the secret, delete; one
// destination's stats, deliveries (retry a failed one) and attempt log.
import { api, ApiError } from './api.js';
import { createPager, parseEventList, describeEvents, destinationState, formatDuration } from './lib.js';
import { h, time, badge, section, fill, field, facts, button, flash, pagedTable, secretPanel } from './dom.js';
import { attemptColumns, deliveryColumns } from './pages-events.js';
import { sourceSelect } from './pages-sources.js';

const PAGE = 50;
const path = (id, rest = '') => `/admin/destinations/${encodeURIComponent(id)}${rest}`;

function attemptText(a) {
  if (!a) return 'no attempt recorded';
  const what = a.ok ? 'delivered' : 'failed';
  const status = a.status == null ? '' : ` with HTTP ${a.status}`;
  return `${what}${status} in ${formatDuration(a.durationMs)}${a.error ? `: ${a.error}` : ''}`;
}

/** The buttons on a destination; `onChange(destination | null)` after each action. */
function actions(d, { onChange, secrets }) {
  if (d.source === 'config') {
    return h('p', { class: 'muted' }, 'Configured by FORWARD_URL: read-only here.');
  }
  const label = d.url;
  return h('div', { class: 'row actions' },
    button(d.enabled ? 'Pause' : 'Resume', async () => {
      const updated = await api(path(d.id, '/toggle'), { method: 'POST' });
      const released = updated.released ? ` ${updated.released} held message${updated.released === 1 ? '' : 's'} released.` : '';
      flash(`${updated.enabled ? 'Resumed' : 'Paused'} ${label}.${released}`, 'ok');
      onChange(updated);
    }, { 'aria-label': `${d.enabled ? 'Pause' : 'Resume'} ${label}`, class: 'toggle' }),
    button('Send test', async () => {
      const { attempt } = await api(path(d.id, '/test'), { method: 'POST' });
      flash(`Test to ${label}: ${attemptText(attempt)}.`, attempt?.ok ? 'ok' : 'error');
      onChange(await api(path(d.id)));
    }, { 'aria-label': `Send a test to ${label}`, class: 'test' }),
    button('Rotate secret', async () => {
      if (!window.confirm(`Rotate the signing secret of ${label}? The old one keeps working for a while.`)) return;
      const r = await api(path(d.id, '/rotate-secret'), { method: 'POST' });
      secrets.prepend(secretPanel(`New secret for ${label}`, r.secret,
        ['Shown once: store it now. The previous secret keeps verifying until ', time(r.previousSecretExpiresAt), '.']));
      onChange(await api(path(d.id)));
    }, { 'aria-label': `Rotate the secret of ${label}` }),
    button('Delete', async () => {
      if (!window.confirm(`Delete the destination ${label}? Its pending and held messages fail, on record (destination_deleted); they stay in the message list.`)) return;
      await api(path(d.id), { method: 'DELETE' });
      flash(`Deleted ${label}.`, 'ok');
      onChange(null);
    }, { kind: 'danger', 'aria-label': `Delete ${label}` }));
}

function summary(d) {
  return facts([
    ['State', [badge(destinationState(d)), d.enabled ? '' : ' (not sending)']],
    ['Events', describeEvents(d.events)],
    ['Format', d.format],
    ['Description', d.description],
    ['Failures in a row', String(d.consecutiveFailures ?? 0)],
    ['Paused because', d.pausedReason],
    ['Last success', time(d.lastSuccessAt)],
    ['Last failure', time(d.lastFailureAt)],
    ['Created', time(d.createdAt)],
  ]);
}

function card(d, ctx) {
  const el = h('article', { class: 'card destination', 'data-id': d.id });
  const draw = (dest) => {
    if (!dest) {
      el.remove();
      return;
    }
    el.replaceChildren(
      h('h3', h('a', { href: `#/destinations/${encodeURIComponent(dest.id)}` }, dest.url), ' ', badge(dest.source === 'config' ? 'config' : dest.format, 'info')),
      summary(dest),
      actions(dest, { ...ctx, onChange: draw }));
  };
  draw(d);
  return el;
}

function createForm({ onCreated }) {
  const url = h('input', { name: 'url', type: 'url', required: true, placeholder: 'https://example.com/hooks/eka', autocomplete: 'off' });
  const events = h('input', { name: 'events', value: '*', autocomplete: 'off' });
  const format = h('select', { name: 'format' }, h('option', { value: 'eka' }, 'eka (Eka-Webhook-Signature)'), h('option', { value: 'standard' }, 'standard (Standard Webhooks)'));
  const description = h('input', { name: 'description', autocomplete: 'off' });
  const enabled = h('input', { name: 'enabled', type: 'checkbox', checked: true });
  const error = h('p', { role: 'alert', class: 'form-error' });
  const inputs = { url, events, format, description, enabled };
  const form = h('form', { class: 'card create', 'aria-label': 'New destination' },
    h('h2', 'New destination'),
    field('URL', url, 'https; http only to 127.0.0.1/localhost when ALLOW_HTTP_DESTINATIONS is set'),
    field('Events', events, 'comma separated; * for all'),
    field('Format', format),
    field('Description', description, 'optional'),
    h('div', { class: 'field check' }, enabled, h('label', { for: (enabled.id = 'dst-enabled') }, 'Enabled')),
    error,
    h('button', { type: 'submit' }, 'Create destination'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    for (const i of Object.values(inputs)) i.removeAttribute('aria-invalid');
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const created = await api('/admin/destinations', {
        method: 'POST',
        body: { url: url.value.trim(), events: parseEventList(events.value), format: format.value, enabled: enabled.checked, description: description.value.trim() || null },
      });
      form.reset();
      events.value = '*';
      onCreated(created);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      if (e instanceof ApiError && e.field && inputs[e.field]) {
        inputs[e.field].setAttribute('aria-invalid', 'true');
        inputs[e.field].focus();
      }
      error.textContent = e instanceof ApiError && e.status === 409 ? `${e.message} (409)` : (e.message ?? String(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function destinationsPage(view) {
  const secrets = h('div', { class: 'secrets' });
  const list = h('div', { class: 'destinations' });
  view.append(h('h1', 'Destinations'), secrets, list);
  await fill(list, async () => {
    const { destinations } = await api('/admin/destinations');
    const cards = h('div', { class: 'cards' }, destinations.map((d) => card(d, { secrets })));
    const heading = h('h2', { id: 'destinations-heading' });
    const none = h('p', { class: 'muted' }, 'None yet.');
    let count = destinations.length;
    const counted = () => {
      heading.textContent = `Destinations (${count})`;
      none.hidden = count > 0;
    };
    counted();
    const form = createForm({
      onCreated: (created) => {
        const { secret, ...d } = created;
        secrets.prepend(secretPanel(`Signing secret for ${d.url}`, secret));
        cards.prepend(card(d, { secrets }));
        count += 1;
        counted();
        flash(`Created ${d.url}.`, 'ok');
        secrets.querySelector('input.secret')?.focus();
      },
    });
    return [form, heading, none, cards];
  });
}

export async function destinationPage(view, route) {
  const id = route.id;
  const secrets = h('div', { class: 'secrets' });
  const head = h('div');
  const stats = h('div');
  const deliveries = h('div');
  const attempts = h('div');
  const status = h('select', { id: 'delivery-status' }, ['', 'pending', 'held', 'delivered', 'failed'].map((st) => h('option', { value: st }, st || 'any')));
  // The source the events arrived at: filters the messages and the attempt log.
  const source = sourceSelect('', () => Promise.all([fill(deliveries, loadDeliveries), fill(attempts, loadAttempts)]));
  source.id = 'delivery-source';
  view.append(h('p', h('a', { href: '#/destinations' }, '← Destinations')), h('h1', 'Destination ', h('code', id)), secrets, head,
    section('Stats', stats),
    section('Messages', h('div', { class: 'row' }, field('Status', status), field('Source', source)), deliveries),
    section('Attempt log', attempts));
  const loadHead = async () => {
    const d = await api(path(id));
    return [h('h2', d.url), summary(d), actions(d, { secrets, onChange: (x) => (x ? Promise.all([fill(head, loadHead), fill(stats, loadStats)]) : (location.hash = '#/destinations')) })];
  };
  const loadStats = async () => {
    const st = await api(path(id, '/stats'));
    const c = st.deliveries ?? {};
    return facts([['Pending', String(c.pending ?? 0)], ['Held (paused)', String(c.held ?? 0)], ['Delivered', String(c.delivered ?? 0)], ['Failed', String(c.failed ?? 0)],
      ['Failures in a row', String(st.consecutiveFailures ?? 0)], ['Last success', time(st.lastSuccessAt)], ['Last failure', time(st.lastFailureAt)]]);
  };
  const loadDeliveries = async () => {
    const pager = createPager((cursor) => api('/admin/deliveries', { query: { destinationId: id, status: status.value, sourceId: source.value, limit: PAGE, cursor } }), 'deliveries');
    const t = pagedTable(deliveryColumns({ withDestination: false, onRetried: () => Promise.all([fill(deliveries, loadDeliveries), fill(attempts, loadAttempts), fill(stats, loadStats)]) }), pager, { empty: 'No messages.' });
    await t.start();
    return t;
  };
  const loadAttempts = async () => {
    const pager = createPager((cursor) => api('/admin/attempts', { query: { destinationId: id, sourceId: source.value, limit: PAGE, cursor } }), 'attempts');
    const t = pagedTable(attemptColumns({ withDestination: false }), pager, { empty: 'No attempts yet.' });
    await t.start();
    return t;
  };
  status.addEventListener('change', () => fill(deliveries, loadDeliveries));
  await Promise.all([fill(head, loadHead), fill(stats, loadStats), fill(deliveries, loadDeliveries), fill(attempts, loadAttempts)]);
}
