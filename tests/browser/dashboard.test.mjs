/*
 * The dashboard in real headless Chromium, driven by Playwright
 * (playwright-core from npm, pinned in package-lock.json here), against
 * the real beacon binary with a fresh database seeded through the API.
 *
 * Usage: node dashboard.test.mjs BEACON NODE_MODULES OUT_DIR
 *   BEACON        the beacon binary
 *   NODE_MODULES  where `npm ci` put playwright-core (the build does it)
 *   OUT_DIR       where the screenshot goes (dashboard.png)
 * CHROMIUM may name the browser; default /usr/bin/chromium.
 *
 * Every page runs under a strict Content-Security-Policy added by the
 * test (no inline script or style), and any request that leaves the
 * Beacon origin fails the test.  Ends with "N passed, N failed".
 */

import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';

import {Beacon, Failure, check, checkEq, runTests} from './harness.mjs';
import {seed, DOMAINS, VIP, EXPECTED_ALERT, THIN_DOMAINS} from './seed.mjs';

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; "
  + "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
  + "base-uri 'none'; frame-ancestors 'none'";
const TZ = 'Europe/Berlin';
const WAIT_MS = 10000;

const [binary, nodeModules, outDir] = process.argv.slice(2);
if (!binary || !nodeModules || !outDir) {
  console.error('usage: dashboard.test.mjs BEACON NODE_MODULES OUT_DIR');
  process.exit(2);
}
const {chromium} = createRequire(path.join(path.resolve(nodeModules),
                                           'noop.js'))('playwright-core');

let beacon;
let browser;

/*
 * A fresh page (its own context: its own sessionStorage) with the CSP
 * and the watchers every test checks at its end through done().
 */
async function newPage(query = '') {
  const context = await browser.newContext({
    timezoneId: TZ, locale: 'en-US', acceptDownloads: true,
    viewport: {width: 1360, height: 900},
  });
  const page = await context.newPage();
  const problems = [];

  await context.route('**/*', async (route) => {
    const url = route.request().url();
    if (!url.startsWith(`${beacon.url}/`)) {
      problems.push(`request outside Beacon: ${url}`);
      return route.abort();
    }
    try {
      const res = await route.fetch();
      return route.fulfill({response: res, headers: {
        ...res.headers(), 'content-security-policy': CSP,
      }});
    } catch (e) {
      /* The server is down (the offline test): let the page see it. */
      return route.abort('connectionrefused');
    }
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    /* A refused key or a stopped server logs a failed load; not a bug. */
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  await page.goto(`${beacon.url}/${query}`);
  return {
    page,
    async done() {
      await context.close();
      checkEq(problems, [], 'CSP violations, page errors, outside requests');
    },
  };
}

async function logIn(page, key = beacon.apiKey) {
  await page.locator('#api-key').fill(key);
  await page.getByRole('button', {name: 'Open the dashboard'}).click();
}

/* Logs in and waits for the first complete refresh. */
async function openDashboard(query) {
  const p = await newPage(query);

  await logIn(p.page);
  await p.page.locator('#refresh-status time').waitFor({timeout: WAIT_MS});
  return p;
}

async function cellTexts(rows) {
  return rows.evaluateAll((trs) => trs.map(
    (tr) => [...tr.cells].map((c) => c.textContent.trim())));
}

function rate(r) {
  return r === null ? '–' : `${(r * 100).toFixed(1)}%`;
}

/* RFC 4180: quoted fields may hold commas, quotes and line breaks. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;

  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/* -- the tests ---------------------------------------------------------- */

async function assets_are_served_with_their_types() {
  const want = {
    '/': 'text/html', '/app.js': 'text/javascript', '/app.css': 'text/css',
    '/vendor/uPlot.esm.js': 'text/javascript',
    '/vendor/uPlot.min.css': 'text/css',
  };

  for (const [p, type] of Object.entries(want)) {
    const r = await beacon.request('GET', p, {auth: false});
    checkEq(r.status, 200, `status of ${p}`);
    check(r.headers.get('content-type').startsWith(type),
          `${p} is ${r.headers.get('content-type')}, want ${type}`);
  }
  const html = (await beacon.request('GET', '/', {auth: false})).text;
  check(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html),
        'index.html has an inline <script>');
  check(!/\son[a-z]+\s*=|\sstyle\s*=/i.test(html),
        'index.html has an inline handler or style attribute');
}

async function a_wrong_key_is_refused() {
  const {page, done} = await newPage();
  const error = page.locator('#login-error');

  await logIn(page, 'not-the-key');
  await error.filter({hasText: '401'}).waitFor({timeout: WAIT_MS});
  checkEq(await error.textContent(),
          'The server refused this key (401). Use the content of the API '
          + 'key file.', 'login error');
  check(await page.locator('#dashboard').isHidden(),
        'the dashboard shows after a wrong key');
  checkEq(await page.evaluate(() => sessionStorage.length), 0,
          'sessionStorage entries after a wrong key');
  await done();
}

async function the_key_is_asked_once_per_tab() {
  const {page, done} = await openDashboard();

  checkEq(await page.evaluate(() => sessionStorage.getItem('beacon.apiKey')),
          beacon.apiKey, 'the key kept in sessionStorage');
  await page.reload();
  await page.locator('#refresh-status time').waitFor({timeout: WAIT_MS});
  check(await page.locator('#login').isHidden(),
        'the key was asked for again after a reload');
  await page.getByRole('button', {name: 'Forget key'}).click();
  check(await page.locator('#login').isVisible(), 'no login after forget');
  checkEq(await page.evaluate(() => sessionStorage.length), 0,
          'sessionStorage entries after forgetting the key');
  await done();
}

async function the_domain_table_shows_and_sorts_the_api_rows() {
  const api = (await beacon.get('/api/v1/domains')).domains;
  const {page, done} = await openDashboard();
  const rows = page.locator('#domains tbody tr');
  const expect = (list) => list.map((r) => [r.domain, String(r.sent),
    String(r.reached), String(r.opened), rate(r.open_rate)]);
  const shown = async () => (await cellTexts(rows)).map((c) => c.slice(0, 5));

  const yahoo = api.find((r) => r.domain === 'yahoo.com');
  checkEq([yahoo.sent, yahoo.opened], [80, 34], 'seeded yahoo.com row');
  checkEq(await shown(), expect(api), 'rows as the API sorts them');

  await page.getByRole('button', {name: 'Open rate'}).click();
  const byRate = [...api].sort((a, b) => b.open_rate - a.open_rate
    || a.domain.localeCompare(b.domain));
  checkEq(await shown(), expect(byRate), 'rows by open rate, highest first');
  checkEq(await page.locator('th[data-sort="open_rate"]')
    .getAttribute('aria-sort'), 'descending', 'aria-sort');

  await page.getByRole('button', {name: 'Open rate'}).click();
  const byRateUp = [...api].sort((a, b) => a.open_rate - b.open_rate
    || a.domain.localeCompare(b.domain));
  checkEq(await shown(), expect(byRateUp), 'rows by open rate, lowest first');

  await page.getByRole('button', {name: 'Domain'}).click();
  checkEq((await shown()).map((c) => c[0]),
          api.map((r) => r.domain).sort(), 'rows by domain');
  await done();
}

async function the_alert_strip_says_what_dropped() {
  const api = await beacon.get('/api/v1/alerts');
  const {page, done} = await openDashboard();

  checkEq(api.alerts.map((a) => a.message), [EXPECTED_ALERT],
          'the API flags the seeded drop');
  checkEq(await page.locator('#alert-list .alert-message').allTextContents(),
          [EXPECTED_ALERT], 'messages in the alert strip');
  check(await page.locator('#alerts.alerting').isVisible(),
        'the strip is not marked as alerting');
  const thin = await page.locator('#alert-thin').textContent();
  for (const d of THIN_DOMAINS) {
    check(thin.includes(d), `"${thin}" does not name ${d}`);
  }
  check(!thin.includes('yahoo.com'), `"${thin}" names yahoo.com`);
  await done();
}

async function a_domain_chart_shows_the_trend() {
  const {page, done} = await openDashboard();
  const rows = page.locator('#chart-data tbody tr');
  const want = async (bucket) => (await beacon.get(
    `/api/v1/domains/trend?domain=yahoo.com&bucket=${bucket}&tz=${TZ}`))
    .points.map((p) => [p.date, String(p.sent), String(p.reached),
                        String(p.opened), rate(p.open_rate)]);

  checkEq(await page.locator('#chart-tz').inputValue(), TZ,
          'the time zone defaults to the browser\'s');
  await page.locator('#chart-summary').filter({hasText: /^gmail\.com by/})
    .waitFor({timeout: WAIT_MS});
  await page.locator('#domains tbody')
    .getByRole('button', {name: 'yahoo.com', exact: true}).click();
  await page.locator('#chart-summary').filter({hasText: /^yahoo\.com by/})
    .waitFor({timeout: WAIT_MS});
  check(await page.locator('#chart canvas').first().isVisible(),
        'no chart drawn');
  const day = await want('day');
  checkEq(await cellTexts(rows), day, 'daily points of yahoo.com');
  checkEq(day.reduce((n, p) => n + Number(p[1]), 0), 80,
          'yahoo.com replies in the daily chart');
  check((await page.locator('#chart-summary').textContent())
    .startsWith(`yahoo.com by day in ${TZ} from ${day[0][0]}`),
        'chart summary');

  await page.locator('#chart-bucket').selectOption('week');
  await page.locator('#chart-form').getByRole('button').click();
  const week = await want('week');
  await page.locator('#chart-summary').filter({hasText: 'by week'})
    .waitFor({timeout: WAIT_MS});
  checkEq(await cellTexts(rows), week, 'weekly points of yahoo.com');

  await page.locator('#chart-tz').fill('Mars/Olympus');
  await page.locator('#chart-form').getByRole('button').click();
  await page.locator('#chart-error').filter({hasText: 'Mars'})
    .waitFor({timeout: WAIT_MS});
  checkEq(await page.locator('#chart-error').textContent(),
          'tz: unknown time zone "Mars/Olympus"', 'error for a bad zone');
  checkEq(await rows.count(), 0, 'stale rows under the error');
  await done();
}

async function the_csv_download_holds_the_call_list() {
  const api = (await beacon.get('/api/v1/unopened')).customers;
  const {page, done} = await openDashboard();
  const [download] = await Promise.all([
    page.waitForEvent('download', {timeout: WAIT_MS}),
    page.getByRole('button', {name: 'Download CSV'}).click(),
  ]);
  const file = await download.path();
  const table = parseCsv(fs.readFileSync(file, 'utf8'));
  const header = table[0];
  const col = (name) => header.indexOf(name);

  check(/^beacon-call-list-\d{4}-\d{2}-\d{2}\.csv$/
    .test(download.suggestedFilename()), 'CSV file name '
    + download.suggestedFilename());
  checkEq(header.slice(0, 5), ['recipient', 'name', 'phone', 'value',
                               'reason'], 'CSV header');
  check(api.length > 10, `only ${api.length} customers on the call list`);
  checkEq(table.slice(1).map((r) => r[col('recipient')]),
          api.map((c) => c.recipient), 'CSV recipients, in order');
  checkEq(table[1].slice(0, 5), [VIP[0].recipient, VIP[0].name,
    VIP[0].phone, String(VIP[0].value), 'never_fetched'], 'first CSV row');
  checkEq(await page.locator('#calls tbody tr').count(), api.length,
          'rows in the call list');
  await done();
}

async function logging_a_call_updates_the_list() {
  const {page, done} = await openDashboard();
  const row = (v) => page.locator(`#calls tr[data-recipient="${v.recipient}"]`);
  const dialog = page.locator('#call-dialog');
  const before = (await beacon.get('/api/v1/unopened')).customers.length;

  await page.evaluate(() => {
    window.notReloaded = true;
  });
  await row(VIP[1]).getByRole('button', {name: 'Log call'}).click();
  await dialog.getByLabel('Voicemail').check();
  await dialog.getByLabel('Note (optional)').fill('Left a message <b>hi</b>');
  await dialog.getByRole('button', {name: 'Save'}).click();
  await row(VIP[1]).locator('.last-call').filter({hasText: 'Voicemail'})
    .waitFor({timeout: WAIT_MS});
  checkEq(await row(VIP[1]).locator('.note').textContent(),
          'Left a message <b>hi</b>', 'the note, shown as text');

  await row(VIP[0]).getByRole('button', {name: 'Log call'}).click();
  await dialog.getByLabel('Reached').check();
  await dialog.getByRole('button', {name: 'Save'}).click();
  await row(VIP[0]).waitFor({state: 'detached', timeout: WAIT_MS});
  check((await page.locator('#calls-summary').textContent())
    .includes(`${VIP[0].name}: Reached, off the list until `),
        'the summary does not say the reached customer left the list');
  check(await page.evaluate(() => window.notReloaded === true),
        'the page reloaded');

  const after = (await beacon.get('/api/v1/unopened')).customers;
  checkEq(after.length, before - 1, 'customers on the call list');
  check(!after.some((c) => c.recipient === VIP[0].recipient),
        'the reached customer is still on the list');
  const kai = after.find((c) => c.recipient === VIP[1].recipient);
  checkEq([kai.last_call.outcome, kai.last_call.note],
          ['voicemail', 'Left a message <b>hi</b>'], 'Kai\'s last call');
  checkEq(await page.locator('#calls tbody tr').count(), after.length,
          'rows in the call list after the calls');
  await done();
}

async function a_screenshot_of_the_dashboard() {
  const {page, done} = await openDashboard();
  const file = path.join(outDir, 'dashboard.png');

  await page.locator('#domains tbody')
    .getByRole('button', {name: 'yahoo.com', exact: true}).click();
  await page.locator('#chart-summary').filter({hasText: /^yahoo\.com/})
    .waitFor({timeout: WAIT_MS});
  await page.locator('#domains svg.spark').first()
    .waitFor({timeout: WAIT_MS});
  /* The top of the page: alerts, domains, chart and the first calls. */
  await page.setViewportSize({width: 1360, height: 1120});
  await page.evaluate(() => window.scrollTo(0, 0));
  fs.mkdirSync(outDir, {recursive: true});
  await page.screenshot({path: file});
  check(fs.statSync(file).size > 10000, 'the screenshot is nearly empty');
  await done();
  return file;
}

async function polls_and_says_when_the_server_is_gone() {
  const {page, done} = await openDashboard('?poll=2');
  const stamp = page.locator('#refresh-status time');
  const first = await stamp.getAttribute('datetime');

  check((await page.locator('#refresh-status').textContent())
    .endsWith('every 2 s'), 'the poll interval is not shown');
  await page.waitForFunction((t) => {
    const el = document.querySelector('#refresh-status time');
    return el && el.getAttribute('datetime') !== t;
  }, first, {timeout: WAIT_MS});
  check(await page.locator('#offline-banner').isHidden(),
        'the offline banner shows while the server answers');

  await beacon.stop();
  const banner = page.locator('#offline-banner');
  await banner.waitFor({state: 'visible', timeout: WAIT_MS});
  check((await banner.textContent())
    .startsWith('Cannot reach the Beacon server since'),
        `banner text: ${await banner.textContent()}`);
  await done();
}

/* -- main --------------------------------------------------------------- */

async function main() {
  const tests = [
    assets_are_served_with_their_types,
    a_wrong_key_is_refused,
    the_key_is_asked_once_per_tab,
    the_domain_table_shows_and_sorts_the_api_rows,
    the_alert_strip_says_what_dropped,
    a_domain_chart_shows_the_trend,
    the_csv_download_holds_the_call_list,
    logging_a_call_updates_the_list,
    a_screenshot_of_the_dashboard,
    polls_and_says_when_the_server_is_gone,      /* stops the server */
  ];
  const seedStart = Date.now();

  beacon = await new Beacon(path.resolve(binary)).start();
  try {
    await seed(beacon);
    console.log(`seeded ${DOMAINS.length + VIP.length} domains in `
      + `${Date.now() - seedStart} ms`);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu'],
    });
    return await runTests(tests);
  } finally {
    if (browser) {
      await browser.close();
    }
    beacon.cleanup();
  }
}

main().then((status) => process.exit(status), (e) => {
  console.log(`FAIL setup: ${e instanceof Failure ? e.message : e.stack}`);
  process.exit(1);
});
