// Sources (issue 21): one Eka account each. Create (secrets in password fields, never shown
// again), pause/resume, check the credentials, rotate and remove signing keys, delete; each
// source's webhook URL with a copy button. The default source (the environment's) is read-only.
import { api, ApiError } from './api.js';
import { h, badge, field, facts, button, flash, fill, time } from './dom.js';

const path = (id, rest = '') => `/admin/sources/${encodeURIComponent(id)}${rest}`;

/** The sources for a filter: `[{id, name}]`, the default first (empty when the API is absent). */
export async function sourceOptions() {
  try {
    const { sources } = await api('/admin/sources');
    return sources.map((s) => ({ id: s.id, name: s.name }));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return [];
    throw e;
  }
}

/** A "Source" select (any + each source) whose value is `selected`; filled once loaded. */
export function sourceSelect(selected, onChange) {
  const select = h('select', { name: 'sourceId' }, h('option', { value: '' }, 'any'));
  sourceOptions().then((list) => {
    for (const s of list) select.append(h('option', { value: s.id, selected: s.id === selected }, `${s.name} (${s.id})`));
  }).catch(() => {});
  if (onChange) select.addEventListener('change', () => onChange(select.value));
  return select;
}

const hookUrl = (s) => `${location.origin}${s.webhookPath}`;

function copyUrl(s) {
  const input = h('input', { type: 'text', readonly: true, value: hookUrl(s), class: 'hook-url', 'aria-label': `Webhook URL of ${s.name}`, spellcheck: 'false' });
  const status = h('span', { class: 'muted', role: 'status' });
  const copy = button('Copy URL', async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      status.textContent = 'Copied.';
    } catch {
      input.select();
      status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  }, { 'aria-label': `Copy the webhook URL of ${s.name}`, class: 'copy-url' });
  return h('div', { class: 'row' }, input, copy, status);
}

function keyList(s, onChange) {
  const keys = s.secrets?.signingKeys ?? [];
  return h('ul', { class: 'keys' }, keys.map((k) => h('li',
    h('code', k.fingerprint), k.last4 ? ` …${k.last4}` : '',
    !s.readOnly && keys.length > 1 ? [' ', button('Remove', async () => {
      if (!window.confirm(`Stop verifying the key ${k.fingerprint} of ${s.name}?`)) return;
      onChange(await api(path(s.id, `/keys/${k.fingerprint}`), { method: 'DELETE' }));
      flash(`Removed the key ${k.fingerprint}.`, 'ok');
    }, { kind: 'quiet', 'aria-label': `Remove the key ${k.fingerprint}` })] : null)));
}

function rotateForm(s, onChange) {
  const key = h('input', { type: 'password', autocomplete: 'off', required: true, name: 'key' });
  const form = h('form', { class: 'row rotate', 'aria-label': `New signing key for ${s.name}` },
    field('New signing key', key, 'the older keys keep verifying'), h('button', { type: 'submit' }, 'Add key'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const updated = await api(path(s.id, '/rotate-key'), { method: 'POST', body: { key: key.value } });
      form.reset();
      flash(`Added a signing key to ${s.name}.`, 'ok');
      onChange(updated);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) flash(e.message, 'error');
    }
  });
  return form;
}

function card(src) {
  const el = h('article', { class: 'card source', 'data-id': src.id });
  const result = h('p', { role: 'status', class: 'check-result' });
  const draw = (s) => {
    if (!s) {
      el.remove();
      return;
    }
    el.replaceChildren(
      h('h3', s.name, ' ', badge(s.enabled ? 'enabled' : 'paused', s.enabled ? 'ok' : 'held'), s.readOnly ? [' ', badge('environment', 'info')] : null),
      copyUrl(s),
      facts([
        ['Id', h('code', s.id)],
        ['Business id', s.businessId],
        ['Eka API', s.apiBaseUrl],
        ['Client id', s.secrets?.clientId ? h('code', s.secrets.clientId.fingerprint) : null],
        ['Signing keys', keyList(s, draw)],
        ['Origin (gate)', s.originUrl],
        ['Events', (s.allowedEvents ?? []).join(', ') || null],
        ['Duplicate window', s.dedupWindowHours == null ? null : `${s.dedupWindowHours} h`],
        ['Updated', s.updatedAt ? time(s.updatedAt) : null],
      ]),
      h('div', { class: 'row actions' },
        s.readOnly ? h('span', { class: 'muted' }, 'The environment variables\' account: read-only here.') : [
          button(s.enabled ? 'Pause' : 'Resume', async () => {
            const updated = await api(path(s.id, '/toggle'), { method: 'POST' });
            flash(`${updated.enabled ? 'Resumed' : 'Paused'} ${s.name}.`, 'ok');
            draw(updated);
          }, { 'aria-label': `${s.enabled ? 'Pause' : 'Resume'} ${s.name}`, class: 'toggle' }),
          button('Delete', async () => {
            if (!window.confirm(`Delete the source ${s.name}? Its path answers 404 from then on.`)) return;
            await api(path(s.id), { method: 'DELETE' });
            flash(`Deleted ${s.name}.`, 'ok');
            draw(null);
          }, { kind: 'danger', 'aria-label': `Delete ${s.name}` }),
        ],
        button('Check credentials', async () => {
          const r = await api(path(s.id, '/check'), { method: 'POST' });
          result.textContent = r.ok ? 'Credentials work: Eka accepted the login.' : `Eka refused: ${r.error}`;
        }, { 'aria-label': `Check the credentials of ${s.name}`, class: 'check' }),
        result),
      ...(s.readOnly ? [] : [rotateForm(s, draw)]));
  };
  draw(src);
  return el;
}

function createForm(onCreated) {
  const text = (name, extra = {}) => h('input', { name, autocomplete: 'off', spellcheck: 'false', ...extra });
  const secret = (name, required = true) => text(name, { type: 'password', required });
  const inputs = {
    name: text('name', { required: true }),
    clientId: secret('clientId'),
    clientSecret: secret('clientSecret'),
    apiKey: secret('apiKey', false),
    signingKeys: secret('signingKeys'),
    businessId: text('businessId'),
    apiBaseUrl: text('apiBaseUrl', { type: 'url' }),
    originUrl: text('originUrl', { type: 'url' }),
  };
  const error = h('p', { role: 'alert', class: 'form-error' });
  const form = h('form', { class: 'card create', 'aria-label': 'New source' },
    h('h2', 'New source'),
    h('p', { class: 'muted' }, 'Secrets are stored encrypted and never shown again.'),
    field('Name', inputs.name),
    field('Client id', inputs.clientId), field('Client secret', inputs.clientSecret), field('API key', inputs.apiKey, 'optional'),
    field('Signing key', inputs.signingKeys, 'the webhook secret of this Eka account'),
    field('Business id', inputs.businessId, 'optional: routes this business\'s webhooks at the default path'),
    field('Eka API base URL', inputs.apiBaseUrl, 'optional: the production API when empty'), field('Origin URL (gate)', inputs.originUrl, 'optional'),
    error, h('button', { type: 'submit' }, 'Create source'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    for (const i of Object.values(inputs)) i.removeAttribute('aria-invalid');
    const v = (k) => inputs[k].value.trim();
    const body = { name: v('name'), clientId: v('clientId'), clientSecret: v('clientSecret'), signingKeys: [v('signingKeys')] };
    for (const k of ['apiKey', 'businessId', 'apiBaseUrl', 'originUrl']) if (v(k)) body[k] = v(k);
    try {
      const created = await api('/admin/sources', { method: 'POST', body });
      form.reset();
      onCreated(created);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      const bad = e instanceof ApiError ? inputs[e.field] : null;
      if (bad) {
        bad.setAttribute('aria-invalid', 'true');
        bad.focus();
      }
      error.textContent = e.message ?? String(e);
    }
  });
  return form;
}

export async function sourcesPage(view) {
  const list = h('div');
  view.append(h('h1', 'Sources'),
    h('p', 'Each source is one Eka account (a clinic): register its webhook URL in that account.'), list);
  await fill(list, async () => {
    const { sources } = await api('/admin/sources');
    const cards = h('div', { class: 'cards' }, sources.map(card));
    const form = createForm((created) => {
      cards.append(card(created));
      flash(`Created ${created.name}: register ${hookUrl(created)} in its Eka account.`, 'ok');
    });
    return [form, h('h2', 'Sources'), cards];
  }, { unavailable: 'This Worker has no sources API yet (404).' });
}
