// DOM building from nodes, never from HTML strings: every piece of text from the API goes in
// as a text node.
import { formatTime, utcTitle, formatRelative } from './lib.js';
import { ApiError } from './api.js';

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  return el;
}

/** An HTML element: h('p', {class: 'x'}, 'text', child, …); props may be omitted. */
export function h(tag, props, ...children) {
  if (props instanceof Node || typeof props !== 'object' || props === null || Array.isArray(props)) {
    children.unshift(props);
    props = {};
  }
  return append(setProps(document.createElement(tag), props), children);
}

/** An SVG element. */
export function s(tag, props, ...children) {
  return append(setProps(document.createElementNS(SVG_NS, tag), props), children);
}

/** A <time> showing local time, with the UTC value on hover. */
export function time(ms, { relative = false } = {}) {
  if (!Number.isFinite(ms)) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString(), title: utcTitle(ms) },
    formatTime(ms), relative ? h('span', { class: 'muted' }, ` (${formatRelative(ms)})`) : null);
}

/** A status badge. */
export function badge(text, kind = text) {
  return h('span', { class: ['badge', `badge-${String(kind).replace(/[^a-z0-9-]/gi, '')}`] }, text);
}

/** The message area at the top of the page (announced to screen readers). */
export function flash(message, kind = 'info') {
  const area = document.getElementById('flash');
  if (!area) return;
  area.replaceChildren(message ? h('p', { class: ['notice', `notice-${kind}`] }, message) : '');
}

/** The text of an error for the operator. */
export function errorText(e) {
  if (e instanceof ApiError) return `${e.message} (HTTP ${e.status})`;
  return e?.message ?? String(e);
}

/**
 * A real <button> that runs `action` (async): disabled while it runs; an error goes to the
 * flash area unless `action` handles it.
 */
export function button(label, action, { kind, title, type = 'button', ...rest } = {}) {
  const el = h('button', { type, class: kind ? `btn-${kind}` : null, title, ...rest }, label);
  el.addEventListener('click', async (ev) => {
    if (type === 'submit') return;
    ev.preventDefault();
    el.disabled = true;
    el.setAttribute('aria-busy', 'true');
    try {
      await action(ev);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) flash(errorText(e), 'error');
    } finally {
      el.disabled = false;
      el.removeAttribute('aria-busy');
    }
  });
  return el;
}

/** A table in a horizontally scrolling wrapper: `columns` [{label, cell(row)}]. */
export function table(columns, rows, { caption, empty = 'Nothing here.', className } = {}) {
  const body = h('tbody');
  const t = h('table', { class: className },
    caption ? h('caption', caption) : null,
    h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.className }, c.label)))),
    body);
  const add = (list) => {
    for (const row of list) body.append(h('tr', columns.map((c) => h('td', { class: c.className, 'data-label': c.label }, c.cell(row)))));
  };
  add(rows);
  const emptyNote = h('p', { class: 'muted' }, empty);
  const wrap = h('div', { class: 'table-wrap' }, t);
  const sync = () => {
    wrap.hidden = body.rows.length === 0;
    emptyNote.hidden = body.rows.length > 0;
  };
  sync();
  const holder = h('div', wrap, emptyNote);
  holder.addRows = (list) => { add(list); sync(); };
  holder.tbody = body;
  return holder;
}

/** A list backed by a pager: the table and a "More" button while the API has a cursor. */
export function pagedTable(columns, pager, options = {}) {
  const view = table(columns, [], options);
  const more = button('More', async () => {
    const items = await pager.more();
    view.addRows(items);
    more.hidden = pager.done;
  }, { class: 'more' });
  more.hidden = true;
  const holder = h('div', { class: 'paged' }, view, more);
  holder.start = async () => {
    const items = await pager.more();
    view.addRows(items);
    more.hidden = pager.done;
  };
  return holder;
}

/** A <section> with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h2', title), ...children);
}

/** Replaces `el`'s content with the result of `load()` (a node or nodes), or an error note. */
export async function fill(el, load) {
  el.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  try {
    el.replaceChildren(...[await load()].flat().filter(Boolean));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    el.replaceChildren(h('p', { class: 'notice notice-error', role: 'alert' }, errorText(e)));
  }
}

/** A labelled field: label + control (+ hint). */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintEl = hint ? h('small', { id: `${id}-hint`, class: 'hint' }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** A definition list from [label, value] pairs. */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v ?? h('span', { class: 'muted' }, '—'))]));
}

/** A secret shown once, with a copy button. */
export function secretPanel(title, secret, note) {
  const input = h('input', { type: 'text', readonly: true, value: secret, class: 'secret', 'aria-label': title, spellcheck: 'false' });
  const status = h('span', { class: 'muted', role: 'status' });
  const copy = button('Copy', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status.textContent = 'Copied.';
    } catch {
      input.select();
      status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  const panel = h('div', { class: 'card secret-panel', role: 'region', 'aria-label': title },
    h('h3', title), h('p', note ?? 'Shown once: store it now. It cannot be read again.'),
    h('div', { class: 'row' }, input, copy, status),
    button('Done, hide it', () => panel.remove(), { kind: 'quiet' }));
  return panel;
}
