// The console in Debian's chromium (playwright-core, no browser download) against the Worker
// under `wrangler dev` (local D1 migrated with wrangler, the fake Eka API, the console served
// by Workers Static Assets as wrangler.toml configures them). Screenshots of each page go to
// target/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import {
  startFakeEka, startOrigin, sendSigned, appointmentEvent, ADMIN_TOKEN, ROOT, SIGNING_KEY, committed,
} from '../worker/harness.mjs';
import { bookingFor, CLIENT_ID, CLIENT_SECRET } from '../support/fake-eka.mjs';
import { startWranglerDev } from '../support/wrangler-dev.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'target', 'screenshots');

let eka;
let callback;
let receiver;
let worker;
let browser;
let page;
const requests = [];
const failures = [];
const problems = [];

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
const go = async (hash) => {
  await page.evaluate((h) => { location.hash = h; }, hash);
};

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run sh scripts/install-chromium.sh (make test-console does)`);
  mkdirSync(SHOTS, { recursive: true });
  eka = await startFakeEka();
  callback = await startOrigin();
  receiver = await startOrigin();
  worker = await startWranglerDev({
    vars: {
      EKA_CLIENT_ID: CLIENT_ID,
      EKA_CLIENT_SECRET: CLIENT_SECRET,
      EKA_API_BASE_URL: eka.url,
      EKA_SIGNING_KEY: SIGNING_KEY,
      ADMIN_TOKEN,
      EVENT_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      REMINDER_CALLBACK_URL: callback.url,
      // Required with REMINDER_CALLBACK_URL (issue 19 item 8).
      REMINDER_SIGNING_KEY: 'reminder-console-test',
      ALLOW_HTTP_DESTINATIONS: 'true',
    },
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, timezoneId: 'Asia/Kolkata', locale: 'en-GB' });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => { if (r.status() >= 400) failures.push(`${r.status()} ${new URL(r.url()).pathname}`); });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => d.accept());
});

after(async () => {
  await browser?.close();
  await worker?.dispose();
  await eka?.close();
  await callback?.close();
  await receiver?.close();
});

test('sign in: the token goes to sessionStorage only, and the overview draws its chart', async () => {
  await page.goto(`${worker.url}/admin/`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.locator('#nav').isHidden(), true);
  await shot('signin');
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  await page.locator('svg.chart').nth(1).waitFor();
  assert.equal(await page.locator('svg.chart').count(), 2);
  await page.getByText('Writes waiting for D1').waitFor();
  await page.getByText(/No failed reminders|failed reminders across/).first().waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('eka-admin-token')), ADMIN_TOKEN);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), '');
  await shot('overview');
});

test('a signed webhook appears on Events; its detail shows the body; replay raises replays', async () => {
  eka.setAppointment('con-1', bookingFor('con-1'));
  const res = await sendSigned(worker, appointmentEvent('con-1'));
  assert.equal(res.status, 200, await res.clone().text());
  const eventId = res.headers.get('x-eka-event-id');
  // The commit follows the answer (issue 20): the Events page lists the row once it is written.
  await committed(worker, eventId);
  await go('#/events');
  const row = page.locator('table.events tbody tr', { hasText: 'con-1' });
  await row.waitFor();
  assert.match(await row.textContent(), /appointment\.created/);
  assert.match(await row.locator('time').first().getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/, 'UTC on hover');
  await shot('events');
  await row.getByRole('link', { name: eventId }).click();
  await page.getByRole('heading', { name: `Event ${eventId}` }).waitFor();
  assert.equal(await page.locator('#replays').textContent(), '0');
  assert.match(await page.locator('pre.json').textContent(), /"appointment_id": "con-1"/);
  await page.getByRole('button', { name: 'Replay this event' }).click();
  await page.locator('#replays', { hasText: '1' }).waitFor();
  assert.match(await page.locator('#replay-result').textContent(), /Replayed/);
  await shot('event');
  // The filter: failed only → not listed.
  await go('#/events?status=failed');
  await page.getByText('No events match.').waitFor();
});

test('appointments list the booking with patient, doctor and clinic; a reminder is added and cancelled', async () => {
  await go('#/appointments');
  const row = page.locator('table.appointments tbody tr', { hasText: 'con-1' });
  await row.waitFor();
  const text = await row.textContent();
  assert.match(text, /Raj Sharma/);
  assert.match(text, /Dr\. Rahul Kumar/);
  assert.match(text, /DIABETES AND ENDOCRINE CLINIC/);
  // What the Worker keeps of the row (D1's schedule table), beside what Eka says.
  assert.match(await row.locator('.kept').textContent(), /^BK · REG · no reminder sent$/);
  await page.getByRole('button', { name: 'Reminders of con-1' }).click();
  const panel = page.locator('.reminder-panel');
  await panel.getByText('No reminders.').waitFor();
  // What the appointment's object keeps: the webhook's claim (processed, after its replay).
  const claim = panel.locator('table.object-claims tbody tr');
  await claim.first().waitFor();
  assert.match(await claim.first().textContent(), /evt_.*processed/);
  assert.ok(await panel.locator('table.object-meta tbody tr', { hasText: 'owner' }).count() >= 1);
  const at = new Date(Date.now() + 2 * 3_600_000);
  const local = await page.evaluate((ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  }, at.getTime());
  await panel.getByLabel('Send at (your time zone)').fill(local);
  await panel.getByRole('button', { name: 'Add reminder' }).click();
  const reminder = panel.locator('table.reminders tbody tr', { hasText: 'manual' });
  await reminder.locator('.badge', { hasText: 'pending' }).waitFor();
  await shot('appointments');
  await reminder.getByRole('button', { name: /^Cancel the reminder/ }).click();
  await reminder.locator('.badge', { hasText: 'cancelled' }).waitFor();
  const { reminders } = await (await worker.request('/admin/reminders?appointmentId=con-1', { headers: auth })).json();
  assert.deepEqual(reminders.map((r) => r.state), ['cancelled']);
});

test('destinations: create (secret once), test send, pause and resume', async () => {
  const probe = await worker.request('/admin/destinations', { headers: auth });
  assert.equal(probe.status, 200);
  const before = (await probe.json()).destinations.length;
  await go('#/destinations');
  await page.getByRole('heading', { name: 'Destinations', level: 1 }).waitFor();
  const heading = page.locator('#destinations-heading');
  await heading.waitFor();
  assert.equal(await heading.textContent(), `Destinations (${before})`);
  await page.getByLabel('URL').fill(receiver.url);
  await page.getByLabel('Description').fill('console test');
  await page.getByRole('button', { name: 'Create destination' }).click();
  const secret = page.locator('.secret-panel input.secret');
  await secret.waitFor();
  assert.match(await secret.inputValue(), /^whsec_/);
  const card = page.locator('article.destination', { hasText: receiver.url });
  await card.waitFor();
  // The list's heading counts the new card, and no "None yet." stands above it.
  assert.equal(await heading.textContent(), `Destinations (${before + 1})`);
  assert.equal(await page.getByText('None yet.').isVisible(), false);
  await shot('destinations');
  // Shown once: a reload has no secret anywhere.
  await page.reload();
  await page.locator('article.destination', { hasText: receiver.url }).waitFor();
  assert.equal(await page.locator('.secret-panel').count(), 0);
  const again = page.locator('article.destination', { hasText: receiver.url });
  await again.getByRole('button', { name: `Send a test to ${receiver.url}` }).click();
  await page.locator('#flash', { hasText: `Test to ${receiver.url}` }).waitFor();
  await again.getByRole('button', { name: `Pause ${receiver.url}` }).click();
  await again.getByRole('button', { name: `Resume ${receiver.url}` }).waitFor();
  await again.getByRole('button', { name: `Resume ${receiver.url}` }).click();
  await again.getByRole('button', { name: `Pause ${receiver.url}` }).waitFor();
  await again.getByRole('link', { name: receiver.url }).click();
  await page.getByRole('heading', { name: 'Attempt log' }).waitFor();
  await page.locator('section', { hasText: 'Attempt log' }).locator('tbody tr').first().waitFor();
  await shot('destination');
});

test('sources: create one, copy its webhook URL, send a signed webhook to it, see the event under it', async () => {
  const SOURCE_KEY = 'whsec-console-source-0123456789';
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: worker.url });
  await go('#/sources');
  await page.getByRole('heading', { name: 'Sources', level: 1 }).waitFor();
  await page.locator('article.source', { hasText: 'read-only' }).waitFor();
  const form = page.getByRole('form', { name: 'New source' });
  await form.getByLabel('Name').fill('Clinic Browser');
  await form.getByLabel('Client id').fill(CLIENT_ID);
  await form.getByLabel('Client secret').fill(CLIENT_SECRET);
  await form.getByLabel('Signing key').fill(SOURCE_KEY);
  await form.getByLabel('Eka API base URL').fill(eka.url);
  assert.equal(await form.getByLabel('Client secret').getAttribute('type'), 'password');
  await form.getByRole('button', { name: 'Create source' }).click();
  const card = page.locator('article.source', { hasText: 'Clinic Browser' });
  await card.waitFor();
  // The secrets are gone from the form and never shown again.
  assert.equal(await form.getByLabel('Signing key').inputValue(), '');
  assert.ok(!(await page.content()).includes(SOURCE_KEY), 'the signing key is on the page');
  await card.getByRole('button', { name: 'Copy the webhook URL of Clinic Browser' }).click();
  await card.getByText('Copied.').waitFor();
  const url = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(url, /\/hooks\/src_[0-9A-HJKMNP-TV-Z]{26}$/);
  assert.equal(new URL(url).origin, worker.url);
  const id = url.split('/').pop();
  await card.getByRole('button', { name: 'Check the credentials of Clinic Browser' }).click();
  await card.getByText('Credentials work').waitFor();
  await shot('sources');
  eka.setAppointment('con-src', bookingFor('con-src'));
  const res = await sendSigned(worker, appointmentEvent('con-src'), { key: SOURCE_KEY, path: new URL(url).pathname });
  assert.equal(res.status, 200, await res.clone().text());
  // The environment's key is refused at the source's path.
  const forged = await sendSigned(worker, appointmentEvent('con-src-2'), { key: SIGNING_KEY, path: new URL(url).pathname });
  assert.equal(forged.status, 403);
  await go(`#/events?sourceId=${id}`);
  const row = page.locator('table.events tbody tr', { hasText: 'con-src' });
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(id));
  assert.equal(await page.locator('select[name=sourceId]').inputValue(), id);
  await shot('events-by-source');
  await go('#/events?sourceId=default');
  await page.locator('table.events tbody tr', { hasText: 'con-1' }).first().waitFor();
  assert.equal(await page.locator('table.events tbody tr', { hasText: 'con-src' }).count(), 0);
  // Refusals are written by the isolate in a batch, 5 s after the first: reload until then.
  const perSource = page.locator('table.per-source tbody tr', { hasText: 'Clinic Browser' });
  let cells = [];
  for (const until = Date.now() + 20_000; Date.now() < until;) {
    // Away and back: setting the same hash again would not load the page anew.
    await go('#/sources');
    await page.getByRole('heading', { name: 'Sources', level: 1 }).waitFor();
    await go('#/overview');
    await perSource.waitFor();
    cells = await perSource.locator('td').allTextContents();
    if (cells[3] === '1') break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  assert.equal(cells[2], '1', `events of the source: ${cells}`);
  assert.equal(cells[3], '1', `refusals of the source: ${cells}`);
  await shot('overview-sources');
});

test('phone-sized screen: the pages fit and stay usable', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [hash, name] of [['#/overview', 'overview-phone'], ['#/events', 'events-phone'], ['#/appointments', 'appointments-phone']]) {
    await go(hash);
    await page.locator('main h1').waitFor();
    await page.waitForLoadState('networkidle');
    await page.getByText('Loading…').first().waitFor({ state: 'detached' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${name}: the page scrolls sideways by ${overflow}px (tables scroll inside their wrapper)`);
    await shot(name);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('by keyboard: the nav links and buttons are reachable with Tab and show focus', async () => {
  await go('#/overview');
  await page.locator('main h1').waitFor();
  await page.waitForLoadState('networkidle');
  await page.locator('a.skip').focus();
  const seen = [];
  for (let i = 0; i < 8; i += 1) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => {
      const el = document.activeElement;
      return `${el.tagName.toLowerCase()}:${el.textContent.trim()}:${getComputedStyle(el).outlineStyle}`;
    }));
  }
  assert.ok(seen.some((s) => s.startsWith('a:Events:solid')), seen.join(' | '));
  assert.ok(seen.some((s) => s.startsWith('button:Sign out:solid')), seen.join(' | '));
});

test('a wrong token lands back on sign-in', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('eka-admin-token')), null);
  await page.getByLabel('Admin token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'refused (401)' }).waitFor();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('eka-admin-token')), null);
  await shot('signin-refused');
});

test('a late 401 for a refused token does not sign out the operator who signed in again', async () => {
  // The refused token's overview asks several routes at once; one answer is held until the
  // operator has signed in with the right token, then arrives as 401.
  const WRONG = 'also-not-the-token';
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const hold = async (route) => {
    if (route.request().headers().authorization === `Bearer ${WRONG}`) await held;
    await route.continue();
  };
  await page.route('**/admin/pending-writes', hold);
  await page.getByLabel('Admin token').fill(WRONG);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'refused (401)' }).waitFor();
  await page.getByLabel('Admin token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('main h1', { hasText: 'Overview' }).waitFor();
  const late = page.waitForEvent('requestfinished', (r) => r.url().includes('/admin/pending-writes') && r.headers().authorization === `Bearer ${WRONG}`);
  release();
  await late;
  await page.unroute('**/admin/pending-writes', hold);
  // One turn of the page's event loop: the late answer's handler has run.
  await page.evaluate(() => new Promise((resolve) => { setTimeout(resolve, 0); }));
  assert.equal(await page.evaluate(() => sessionStorage.getItem('eka-admin-token')), ADMIN_TOKEN);
  assert.equal(await page.locator('#signin').count(), 0, 'the late 401 sent the operator back to sign-in');
  await page.locator('main h1', { hasText: 'Overview' }).waitFor();
});

test('no request left 127.0.0.1, and the CSP refused nothing', () => {
  assert.ok(requests.length > 10, `recorded ${requests.length} requests`);
  const elsewhere = requests.filter((u) => {
    const url = new URL(u);
    return url.protocol !== 'data:' && url.hostname !== '127.0.0.1';
  });
  assert.deepEqual(elsewhere, []);
  // Failed answers: the wrong-token step's 401, and 404 from the destinations API while it is
  // not merged; nothing else.
  const expected = /^(401 \/admin\/|404 \/admin\/(destinations|deliveries|attempts)$)/;
  assert.deepEqual(failures.filter((f) => !expected.test(f)), []);
  // The browser logs each failed answer as an error; anything else (a CSP refusal, a script
  // error) is a problem.
  const unexpected = problems.filter((p) => !/^Failed to load resource: the server responded with a status of (401|404)/.test(p));
  assert.deepEqual(unexpected, []);
});
