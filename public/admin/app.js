// The operator's console: sign-in, the shell and the hash router. Pages live in pages-*.js.
import { token, onUnauthorized } from './api.js';
import { parseRoute } from './lib.js';
import { h, flash } from './dom.js';
import { overviewPage } from './pages-overview.js';
import { eventsPage, eventPage } from './pages-events.js';
import { destinationsPage, destinationPage } from './pages-destinations.js';
import { appointmentsPage } from './pages-appointments.js';
import { sourcesPage } from './pages-sources.js';

const PAGES = [
  ['overview', 'Overview'],
  ['events', 'Events'],
  ['destinations', 'Destinations'],
  ['appointments', 'Appointments'],
  ['sources', 'Sources'],
];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let signInMessage = null;
let generation = 0;

// Several requests of a page can be refused at once: the first shows sign-in, the others only
// update its message, so the form (and what the operator typed) is never rebuilt under them.
onUnauthorized((message) => {
  const shown = document.getElementById('signin');
  if (message !== null || !shown) signInMessage = message ?? signInMessage ?? 'Sign in with the admin token.';
  if (shown) {
    showSignInMessage(shown);
    return;
  }
  render();
});

function showSignInMessage(form) {
  form.querySelector('[role="alert"]')?.remove();
  if (signInMessage) form.querySelector('h1').after(h('p', { class: 'notice notice-error', role: 'alert' }, signInMessage));
}

function signIn() {
  document.title = 'Sign in · Eka webhook console';
  nav.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const form = h('form', { class: 'card signin', id: 'signin' },
    h('h1', 'Sign in'),
    h('p', 'Paste the Worker\'s ADMIN_TOKEN. It is kept in this tab only (sessionStorage) and sent to this origin\'s admin API.'),
    h('div', { class: 'field' }, h('label', { for: 'token' }, 'Admin token'), input),
    h('button', { type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    token.set(value);
    signInMessage = null;
    if (parseRoute(location.hash).page === 'signin') location.hash = '#/overview';
    render();
  });
  showSignInMessage(form);
  main.replaceChildren(form);
  input.focus();
}

function shell(page) {
  nav.hidden = false;
  nav.replaceChildren(
    h('ul', PAGES.map(([id, label]) => h('li', h('a', { href: `#/${id}`, 'aria-current': id === page ? 'page' : null }, label)))),
    h('ul', { class: 'nav-end' },
      h('li', h('a', { href: '/openapi.json', target: '_blank', rel: 'noopener' }, 'API (OpenAPI)')),
      h('li', h('button', { type: 'button', class: 'btn-quiet', id: 'signout', onclick: () => { token.clear(); signInMessage = 'Signed out.'; render(); } }, 'Sign out'))));
}

async function render() {
  const run = ++generation;
  flash(null);
  const route = parseRoute(location.hash);
  if (!token.get() || route.page === 'signin') {
    if (token.get() && route.page === 'signin') token.clear();
    signIn();
    return;
  }
  const pages = {
    overview: overviewPage,
    events: route.id ? eventPage : eventsPage,
    destinations: route.id ? destinationPage : destinationsPage,
    appointments: appointmentsPage,
    sources: sourcesPage,
  };
  const page = pages[route.page] ? route.page : 'overview';
  shell(page);
  const label = PAGES.find(([id]) => id === page)[1];
  document.title = `${label} · Eka webhook console`;
  const view = h('div', { class: 'page' });
  main.replaceChildren(view);
  // Focus moves to the new page before it loads, so a keyboard user is never moved mid-way.
  main.focus({ preventScroll: true });
  view.isCurrent = () => run === generation;
  await pages[page](view, route);
}

// Only "#/…" hashes are routes; "#main" (the skip link) just moves focus.
window.addEventListener('hashchange', () => {
  if (!location.hash || location.hash.startsWith('#/')) render();
});
render();
