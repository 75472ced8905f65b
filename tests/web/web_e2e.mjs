// tests/web/web_e2e.mjs -- the dashboard in a real browser (Debian's chromium,
// driven by playwright-core from tests/web/package-lock.json); run by
// tests/web_e2e.sh, which starts the daemon on the demo data and passes:
//   URL       the dashboard, e.g. http://127.0.0.1:PORT
//   REPORT    clustermonctl report --json --year YEAR, in a file
//   YEAR      that year
//   SERIES, RANKING, THROUGH   clustermonctl series --yoy and ranking --json for
//             energy-env in YEAR (ranking over months 1..THROUGH), in files
//   ADMIN, VIEWER   "name:password" of an admin and a viewer
//   ALERT_CMD a JSON array: the command that causes a new alert (an agent
//             sending readings over a rule's limit)
//   SHOTS     where the screenshots go
//   ACK_NOTE  the note an admin acknowledges the new alert with
//   FIRMUSER  "name:password" of ee-007's upload login (http_users firm:ee-007)
//   UPLOAD_DIR  upload-bad.csv (line 3 refused), upload-good.csv (its fix), upload-other.csv
//             (ee-008's row), GBK; UPLOAD_SUM the good file's revenue sum
//   FORM_PERIOD  last month (YYYY-MM, the daemon's time zone): the form's default period
//   FORM_REVENUE, FORM_PROFIT  the figures the firm types into the form
// Prints "ok   - ..." / "FAIL - ..." lines like the bash suites; exits 1 on a failure.
import { createRequire } from 'node:module';
import { spawn } from 'node:child_process';
import { readFileSync, mkdirSync } from 'node:fs';

const require = createRequire(process.env.NPM_DIR + '/node_modules/');
const { chromium } = require('playwright-core');

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`web_e2e.mjs: ${k} not set`); process.exit(2); } return v; };
const URL = env('URL');
const report = JSON.parse(readFileSync(env('REPORT'), 'utf8'));
const YEAR = env('YEAR');
const series = JSON.parse(readFileSync(env('SERIES'), 'utf8'));
const ranking = JSON.parse(readFileSync(env('RANKING'), 'utf8'));
const THROUGH = env('THROUGH');
const ACK_NOTE = env('ACK_NOTE');
const [firmUser, firmPw] = env('FIRMUSER').split(':');
const UPLOAD_DIR = env('UPLOAD_DIR');
const UPLOAD_SUM = env('UPLOAD_SUM');
const FORM_PERIOD = env('FORM_PERIOD');
const FORM_REVENUE = env('FORM_REVENUE');
const FORM_PROFIT = env('FORM_PROFIT');
const [adminUser, adminPw] = env('ADMIN').split(':');
const [viewerUser, viewerPw] = env('VIEWER').split(':');
const alertCmd = JSON.parse(env('ALERT_CMD'));
const SHOTS = env('SHOTS');
mkdirSync(SHOTS, { recursive: true });

let pass = 0, fail = 0;
const check = (name, cond, detail = '') => {
  if (cond) { pass++; console.log(`ok   - ${name}`); } else { fail++; console.log(`FAIL - ${name}${detail ? ': ' + detail : ''}`); }
};

// an amount as exact milli-units (BigInt): "20,580,000,000", "1234.5", 1234.5 or "1234.500"
function milli(x) {
  if (x === null || x === undefined) return null;
  if (typeof x === 'number') return BigInt(Math.round(x * 1000));
  const s = String(x).replace(/,/g, '').trim();
  const m = /^(-?)(\d+)(?:\.(\d{1,3}))?$/.exec(s);
  if (!m) return `not an amount: '${x}'`;
  return BigInt(m[1] + m[2] + (m[3] || '').padEnd(3, '0'));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  timeout: 30000,
});
const consoleErrors = [];
async function newPage(user, pw) {
  const ctx = await browser.newContext({ httpCredentials: { username: user, password: pw }, viewport: { width: 1360, height: 900 }, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${user}: ${m.text()}`); });
  page.on('pageerror', (e) => consoleErrors.push(`${user}: ${e.message}`));
  return { ctx, page };
}

try {
  // ---- overview, in Chinese: the figures are report --json's --------------------
  const { page } = await newPage(adminUser, adminPw);
  await page.goto(`${URL}/#/?year=${YEAR}`);
  await page.waitForSelector('[data-testid="report"] tbody tr');
  check('the page is zh-CN by default', (await page.getAttribute('html', 'lang')) === 'zh-CN' &&
        (await page.textContent('nav')).includes('概览'));
  for (const c of report.clusters) {
    const txt = async (id) => (await page.textContent(`[data-testid="${id}-${c.id}"]`)).trim();
    check(`overview ${c.id}: member firms = report (${c.firms})`, Number(await txt('firms')) === c.firms);
    check(`overview ${c.id}: above-scale firms = report (${c.above_scale})`, Number(await txt('above')) === c.above_scale);
    const rev = await txt('revenue'), prof = await txt('profit');
    check(`overview ${c.id}: revenue ${rev} = report's ${c.revenue}`, milli(rev) === milli(c.revenue));
    check(`overview ${c.id}: profit ${prof} = report's ${c.profit}`, milli(prof) === milli(c.profit));
  }
  await page.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });

  // ---- cluster page: chart, chains, tiers, designations ---------------------------
  await page.goto(`${URL}/#/cluster/energy-env?year=${YEAR}&through=${THROUGH}`);
  await page.waitForSelector('[data-testid="trend"] canvas');
  // the trend is the series command's reply, the drag firms the ranking's
  let same = 0; const diffs = [];
  for (const p of series.points) {
    const row = page.locator(`[data-testid="trend-table"] tr[data-period="${p.period}"]`);
    const v = (await row.locator('[data-testid="value"]').textContent()).trim();
    const l = (await row.locator('[data-testid="last-year"]').textContent()).trim();
    const ok = (p.value === null ? v === '–' : milli(v) === milli(p.value)) && (p.last_year === null ? l === '–' : milli(l) === milli(p.last_year));
    if (ok) same++; else diffs.push(`${p.period}: page ${v} / ${l}, series ${p.value} / ${p.last_year}`);
  }
  check(`cluster energy-env: the 12 monthly figures and last year's on the page = clustermonctl series --json (${same} same)`, same === 12, diffs.join('; '));
  const pageSum = (await page.textContent('[data-testid="trend-table"] [data-testid="sum"]')).trim();
  check(`cluster energy-env: the year's sum on the page ${pageSum} = series --json's ${series.sum}`, milli(pageSum) === milli(series.sum));
  const drags = ranking.firms.filter((f) => f.gap_pp !== null && f.gap_pp > 0).slice(0, 10);
  const dragIds = await page.locator('[data-testid="drag"] tr[data-firm]').evaluateAll((rows) => rows.map((r) => r.dataset.firm));
  check(`cluster energy-env: the drag firms on the page are ranking --json's, in its order (${dragIds.slice(0, 3).join(', ')}...)`,
        dragIds.length > 0 && JSON.stringify(dragIds) === JSON.stringify(drags.map((f) => f.id)), `page ${dragIds} ranking ${drags.map((f) => f.id)}`);
  const firstVal = (await page.textContent('[data-testid="drag"] tr[data-firm] [data-testid="drag-value"]')).trim();
  const firstGap = (await page.textContent('[data-testid="drag"] tr[data-firm] [data-testid="drag-gap"]')).trim();
  check(`cluster energy-env: the first drag firm's figure ${firstVal} and gap share ${firstGap} = ranking --json's`,
        drags.length > 0 && milli(firstVal) === milli(drags[0].value) && Number(firstGap) === Number(drags[0].gap_pp.toFixed(2)));
  const demo = Number((await page.textContent('[data-testid="designation-provincial-tech-demo"]')).trim());
  const sme = Number((await page.textContent('[data-testid="designation-provincial-sme-scitech"]')).trim());
  check(`cluster energy-env: 1 provincial demonstration firm, 13 provincial SME sci-tech firms (page: ${demo}, ${sme})`, demo === 1 && sme === 13);
  check('cluster energy-env: chains table lists the chains and the members on none',
        (await page.textContent('[data-testid="chains"]')).includes('water-pollution-control') &&
        (await page.textContent('[data-testid="chains"]')).includes('无产业链的其他成员'));
  await page.screenshot({ path: `${SHOTS}/cluster.png`, clip: { x: 0, y: 0, width: 1360, height: 1500 }, fullPage: true });

  await page.goto(`${URL}/#/firm/ne-001?year=${YEAR}`);
  await page.waitForSelector('#chart-revenue canvas');
  check('firm ne-001: its monthly series table is shown', (await page.locator('[data-testid="series"] tbody tr').count()) === 12);
  await page.screenshot({ path: `${SHOTS}/firm.png`, fullPage: true });

  // ---- live alerts: an alert caused now appears without a reload --------------------
  await page.goto(`${URL}/#/alerts`);
  await page.waitForSelector('[data-testid="alerts"]');
  await page.waitForSelector('#live.on');
  await page.evaluate(() => { window.__sameDocument = true; });
  const before = await page.locator('[data-testid="alerts"] tr', { hasText: 'ee-007' }).count();
  check('before: no alert for ee-007 on the page', before === 0);
  const t0 = Date.now();
  const agentExit = await new Promise((resolve) => {
    const p = spawn(alertCmd[0], alertCmd.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code) => resolve(code));
  });
  const tAck = Date.now();
  check('the agent sent the readings over the limit', agentExit === 0, `exit ${agentExit}`);
  let seenMs = null;
  try {
    await page.locator('[data-testid="alerts"] tr', { hasText: 'ee-007' }).first().waitFor({ timeout: 2000 });
    seenMs = Date.now() - tAck;
  } catch { /* seenMs stays null */ }
  check(`the new alert is on the open page within 2 s of the daemon's ack (${seenMs} ms; agent ran ${tAck - t0} ms)`, seenMs !== null && seenMs <= 2000);
  check('... without a reload', await page.evaluate(() => window.__sameDocument === true));
  check('... and in the page\'s list of changes received', (await page.textContent('[data-testid="events"]')).includes('ee-007'));

  // ---- an admin acknowledges it from the page, with a note -------------------------
  const ackRow = page.locator('[data-testid="alerts"] tr', { hasText: 'ee-007' }).first();
  await ackRow.locator('form.ack input[name="note"]').fill(ACK_NOTE);
  await ackRow.locator('[data-testid="ack-add"]').click();
  await page.waitForSelector(`[data-testid="alerts"] [data-testid="ack"] >> text=${ACK_NOTE}`);
  const ackText = await page.locator('[data-testid="alerts"] tr', { hasText: 'ee-007' }).first().locator('[data-testid="ack"]').textContent();
  check(`an admin acknowledges the alert from the page; the row shows who and the note (${ackText.trim()})`,
        ackText.includes(adminUser) && ackText.includes(ACK_NOTE));

  // ---- an admin silences it from the page ----------------------------------------
  const row = page.locator('[data-testid="alerts"] tr', { hasText: 'ee-007' }).first();
  await row.locator('input[name="reason"]').fill('web e2e: plant maintenance');
  await row.locator('[data-testid="silence-add"]').click();
  await page.waitForSelector('[data-testid="silences"] >> text=web e2e: plant maintenance');
  check('an admin adds a silence from the page', true);
  await page.screenshot({ path: `${SHOTS}/alerts.png`, fullPage: true });

  // ---- the alert history, filtered -------------------------------------------------
  await page.goto(`${URL}/#/history?firm=ee-007&cluster=energy-env`);
  await page.waitForSelector('[data-testid="history"] tbody tr');
  const hist = await page.locator('[data-testid="history"] tbody tr').evaluateAll((rows) => rows.map((r) => ({ kind: r.dataset.kind, text: r.textContent })));
  check(`history filtered to ee-007: the firing alert, the ack (by ${adminUser}, with its note) and the silence (${hist.length} entries)`,
        hist.some((h) => h.kind === 'alert' && h.text.includes('cod-limit')) &&
        hist.some((h) => h.kind === 'ack' && h.text.includes(adminUser) && h.text.includes(ACK_NOTE)) &&
        hist.some((h) => h.kind === 'silence_add' && h.text.includes('web e2e: plant maintenance')) &&
        hist.every((h) => !h.kind || h.text.includes('ee-007') || h.kind.startsWith('silence')), JSON.stringify(hist.slice(0, 4)));
  await page.screenshot({ path: `${SHOTS}/history.png`, fullPage: true });
  // the filter form: another cluster has none of ee-007's entries
  await page.selectOption('[data-testid="history-filter"] select[name="cluster"]', 'new-energy');
  await page.click('[data-testid="history-apply"]');
  await page.waitForFunction(() => location.hash.includes('cluster=new-energy'));
  await page.waitForSelector('[data-testid="history"] tbody tr');
  check('history: the filter form narrows to another cluster (no ee-007 entry left)',
        !(await page.textContent('[data-testid="history"]')).includes('ee-007'));

  // ---- the English switch -----------------------------------------------------------
  await page.goto(`${URL}/#/?year=${YEAR}`);
  await page.waitForSelector('[data-testid="report"] tbody tr');
  await page.click('[data-testid="lang"]');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
  await page.waitForSelector('text=Same months last year');
  check('the English switch: nav, headings and the button change',
        (await page.textContent('nav')).includes('Overview') && (await page.textContent('[data-testid="lang"]')).includes('中文'));
  const c0 = report.clusters[0];
  check('the English page shows the same figures', milli((await page.textContent(`[data-testid="revenue-${c0.id}"]`)).trim()) === milli(c0.revenue));
  await page.reload();
  await page.waitForSelector('[data-testid="report"] tbody tr');
  check('the language choice stays after a reload', (await page.getAttribute('html', 'lang')) === 'en');
  await page.screenshot({ path: `${SHOTS}/overview-en.png`, fullPage: true });

  // ---- a firm uploads its figures: check, fix, confirm (twice) -----------------------
  const fm = await newPage(firmUser, firmPw);
  await fm.page.goto(`${URL}/#/`);
  await fm.page.waitForSelector('[data-testid="upload-file"]');
  check('a firm login lands on the upload page, bound to its firm, with no figures in the nav',
        (await fm.page.textContent('[data-testid="upload-firms"]')).includes('ee-007') &&
        !(await fm.page.isVisible('nav a[href="#/"]')));
  const pick = async (file) => {
    await fm.page.setInputFiles('[data-testid="upload-file"]', { name: 'upload.csv', mimeType: 'text/csv', buffer: readFileSync(`${UPLOAD_DIR}/${file}`) });
    await fm.page.click('[data-testid="upload-check"]');
  };
  await pick('upload-bad.csv');
  await fm.page.waitForSelector('[data-testid="upload-problems"] tr[data-line]');
  const probs = await fm.page.locator('[data-testid="upload-problems"] tr[data-line]').evaluateAll((rows) => rows.map((r) => ({ line: r.dataset.line, text: r.textContent })));
  check(`the check names the bad row by its line: ${probs.map((p) => p.text.trim().replace(/\s+/g, ' ')).join(' | ')}`,
        probs.length === 1 && probs[0].line === '3' && probs[0].text.includes('upload.csv:3:') && probs[0].text.includes('below its min'));
  await fm.page.screenshot({ path: `${SHOTS}/upload.png`, fullPage: true });
  await pick('upload-good.csv');
  await fm.page.waitForSelector('[data-testid="upload-clean"]');
  const upSum = (await fm.page.textContent('[data-testid="sum-revenue"]')).trim();
  check(`the fixed file checks clean; the page shows its revenue sum ${upSum} = ${UPLOAD_SUM}`, milli(upSum) === milli(UPLOAD_SUM));
  // a double click on confirm sends the check's seq twice
  await fm.page.dblclick('[data-testid="upload-confirm"]');
  await fm.page.waitForSelector('[data-testid="upload-applied"]');
  const seq = (await fm.page.textContent('[data-testid="upload-seq"]')).trim();
  const retry = await fm.page.evaluate(async ([s, bytes]) => {
    const r = await fetch(`/api/v1/upload/apply?name=upload.csv&seq=${s}`, { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(bytes) });
    return r.json();
  }, [seq, [...readFileSync(`${UPLOAD_DIR}/upload-good.csv`)]]);
  check(`confirmed (upload ${seq}); a retried POST of it is answered "already applied", nothing applied again`,
        retry.already_applied === true && retry.applied === true && retry.seq === Number(seq), JSON.stringify(retry));
  await fm.page.screenshot({ path: `${SHOTS}/upload-done.png`, fullPage: true });
  await pick('upload-other.csv');
  await fm.page.waitForSelector('[data-testid="upload-problems"] tr[data-line]');
  const other = await fm.page.textContent('[data-testid="upload-problems"]');
  check('another firm\'s row is refused on its line (forbidden)', other.includes('upload.csv:2:') && other.includes('forbidden') && other.includes('ee-008'));

  // ---- the same firm types the month's figures into the form -------------------------
  const rows = fm.page.locator('#figform tbody tr');
  const row1 = rows.nth(0);
  const firmOpts = await row1.locator('select[name="firm"] option').evaluateAll((o) => o.map((x) => x.value));
  const metricOpts = await row1.locator('select[name="metric"] option').evaluateAll((o) => o.map((x) => x.value));
  check(`the form offers the login's firms (${firmOpts}) and the period metrics (${metricOpts}); the period defaults to last month (${FORM_PERIOD})`,
        JSON.stringify(firmOpts) === '["ee-007"]' && metricOpts.includes('revenue') && metricOpts.includes('profit') && !metricOpts.includes('cod') &&
        (await row1.locator('input[name="period"]').inputValue()) === FORM_PERIOD);
  await fm.page.click('[data-testid="form-add"]');
  await fm.page.click('[data-testid="form-add"]');
  await rows.nth(2).locator('[data-testid="form-remove"]').click();
  check('add row, add row, remove row: two rows', (await rows.count()) === 2);
  await row1.locator('select[name="metric"]').selectOption('profit');
  await row1.locator('input[name="value"]').fill(FORM_PROFIT);
  const row2 = rows.nth(1);
  await row2.locator('select[name="metric"]').selectOption('revenue');
  await row2.locator('input[name="value"]').fill('-' + FORM_REVENUE);
  await fm.page.click('[data-testid="form-check"]');
  await fm.page.waitForSelector('[data-testid="upload-problems"] tr[data-row]');
  const formProbs = await fm.page.locator('[data-testid="upload-problems"] tr[data-row]').evaluateAll((r) => r.map((x) => ({ row: x.dataset.row, text: x.textContent })));
  check(`the form's check names the negative revenue by its form row: ${formProbs.map((p) => p.text.trim().replace(/\s+/g, ' ')).join(' | ')}`,
        formProbs.length === 1 && formProbs[0].row === '2' && formProbs[0].text.includes('below its min') && !formProbs[0].text.includes('form.csv') &&
        await row2.evaluate((tr) => tr.classList.contains('bad')) && !(await row1.evaluate((tr) => tr.classList.contains('bad'))));
  await fm.page.screenshot({ path: `${SHOTS}/upload-form.png`, fullPage: true });
  await row2.locator('input[name="value"]').fill(FORM_REVENUE);
  check('editing the form after its check takes its confirm away (check again)', (await fm.page.locator('[data-testid="upload-confirm"]').count()) === 0);
  await fm.page.click('[data-testid="form-check"]');
  await fm.page.waitForSelector('[data-testid="upload-clean"]');
  const fRev = (await fm.page.textContent('[data-testid="sum-revenue"]')).trim();
  const fProf = (await fm.page.textContent('[data-testid="sum-profit"]')).trim();
  check(`the fixed form checks clean: revenue ${fRev}, profit ${fProf} as typed`, milli(fRev) === milli(FORM_REVENUE) && milli(fProf) === milli(FORM_PROFIT));
  await fm.page.dblclick('[data-testid="upload-confirm"]');
  await fm.page.waitForSelector('[data-testid="upload-applied"]');
  check('the form is confirmed (a double click)', (await fm.page.locator('[data-testid="upload-applied"]').count()) === 1);

  // ---- a viewer reads, but cannot add a silence --------------------------------------
  const v = await newPage(viewerUser, viewerPw);
  await v.page.goto(`${URL}/#/alerts`);
  await v.page.waitForSelector('[data-testid="readonly"]');
  check('a viewer sees no silence form', (await v.page.locator('[data-testid="silence-add"]').count()) === 0);
  check('a viewer sees no acknowledge form', (await v.page.locator('[data-testid="ack-add"]').count()) === 0);
  check('a viewer sees the acknowledgement', (await v.page.textContent('[data-testid="alerts"]')).includes(ACK_NOTE));
  // the refusal below is meant: the console is judged before it
  check(`no errors on the browser console (${consoleErrors.length})`, consoleErrors.length === 0, consoleErrors.slice(0, 5).join(' | '));
  const status = await v.page.evaluate(async () => (await fetch('/api/v1/cmd/silence_add', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ rule: 'cod-limit', cluster: 'energy-env', for: '1h', reason: 'viewer try' }) })).status);
  check(`a viewer's silence_add is refused by the daemon (HTTP ${status})`, status === 403);
  const ackStatus = await v.page.evaluate(async () => (await fetch('/api/v1/cmd/ack', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: 'cod-limit:ee-007', note: 'viewer try' }) })).status);
  check(`a viewer's ack is refused by the daemon (HTTP ${ackStatus})`, ackStatus === 403);
  const upStatus = await v.page.evaluate(async () => (await fetch('/api/v1/upload/check?name=x.csv', {
    method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'ee-007,revenue,1,2023-01\n' })).status);
  check(`a viewer's upload is refused by the daemon (HTTP ${upStatus})`, upStatus === 403);
  const firmReads = await fm.page.evaluate(async () => [(await fetch('/api/v1/overview')).status, (await fetch('/metrics')).status]);
  check(`a firm login reads no figures: overview ${firmReads[0]}, /metrics ${firmReads[1]}`, firmReads[0] === 403 && firmReads[1] === 403);
  const wrong = await browser.newContext({ httpCredentials: { username: viewerUser, password: 'wrong' } });
  const resp = await (await wrong.newPage()).goto(`${URL}/api/v1/me`);
  check(`a wrong password is refused (HTTP ${resp.status()})`, resp.status() === 401);
  await wrong.close();
} catch (e) {
  check('the browser test ran to its end', false, e.stack);
} finally {
  await browser.close();
}
console.log(`web_e2e.mjs: ${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
