// Drives the dashboard of a running `skill-fleet serve` in headless Chromium
// and prints, as one JSON object on stdout, what it saw: the numbers on each
// page, what happened after each click, console and page errors and failed
// requests (each tagged with the step it happened in), the screenshots it
// saved (1280x800 viewport) and any control on them without an accessible
// name. It judges nothing: the Rust test compares
// what it saw with the database.
//
// Usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR PLAN_JSON
// PLAN_JSON: {"scenario": "tour", "run_id", "program", "alias",
//   "refused_version", "promote_version", "ab_test", "winner"}
//   | {"scenario": "live", "program", "trainset_file", "optimizer", "settings", "max_calls"}
//   | {"scenario": "token", "token"}

import { launch } from './browser.mjs';
import { join } from 'node:path';

const [base, shots, planText] = process.argv.slice(2);
if (!base || !shots || !planText) {
  console.error('usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR PLAN_JSON');
  process.exit(2);
}
const plan = JSON.parse(planText);
const out = { scenario: plan.scenario, steps: {}, console_errors: [], page_errors: [], failed_requests: [], screenshots: [], unnamed_controls: [] };
let step = 'load';

const browser = await launch();
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
page.setDefaultTimeout(60000);
page.on('console', (m) => {
  if (m.type() === 'error') out.console_errors.push({ step, text: m.text() });
});
page.on('pageerror', (e) => out.page_errors.push({ step, text: String(e && e.stack ? e.stack : e) }));
page.on('requestfailed', (r) => out.failed_requests.push({ step, url: r.url(), error: r.failure() ? r.failure().errorText : 'failed' }));
const apiRequests = [];
page.on('request', (r) => {
  if (new URL(r.url()).pathname.startsWith('/api/')) apiRequests.push({ path: new URL(r.url()).pathname, authorization: r.headers().authorization || null });
});

async function open(hash, selector) {
  await page.goto(`${base}/${hash}`);
  await page.waitForSelector(selector);
  await page.waitForFunction(() => !document.getElementById('app').hasAttribute('aria-busy'));
}

/** Visible controls without an accessible name (label, aria-label or text). */
function unnamed() {
  return page.$$eval('button, input, select, textarea, a[href]', (els) =>
    els
      .filter((e) => e.type !== 'hidden' && !e.closest('[hidden]') && !e.closest('dialog:not([open])'))
      .filter((e) => {
        const labels = e.labels ? [...e.labels].map((l) => l.textContent).join('') : '';
        return !(e.getAttribute('aria-label') || labels || e.textContent || e.getAttribute('title') || '').trim();
      })
      .map((e) => e.outerHTML.slice(0, 160)),
  );
}

/** Saves a 1280x800 screenshot and checks the page's controls are named. */
async function shot(name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path });
  out.screenshots.push(path);
  for (const html of await unnamed()) out.unnamed_controls.push({ step, html });
}

/** Rows of a table: each row's data-* attributes and cell texts. */
function rows(selector) {
  return page.$$eval(`${selector} tbody tr`, (trs) =>
    trs.filter((tr) => !tr.querySelector('td.empty')).map((tr) => ({ ...tr.dataset, cells: [...tr.cells].map((td) => td.textContent.trim()) })),
  );
}

function facts() {
  return page.$$eval('dd[data-fact]', (dds) => Object.fromEntries(dds.map((d) => [d.dataset.fact, d.textContent.trim()])));
}

function canvases() {
  return page.$$eval('canvas', (cs) =>
    cs.map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let drawn = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) drawn++;
      return { label: c.getAttribute('aria-label'), drawn_pixels: drawn };
    }),
  );
}

async function tour() {
  step = 'runs';
  await open('#/runs', '#runs-table');
  const s = { rows: await rows('#runs-table') };
  await page.click('button[aria-label="Sort by Run"]');
  s.sorted_first_click = (await rows('#runs-table')).map((r) => Number(r.runId));
  await page.click('button[aria-label="Sort by Run"]');
  s.sorted_second_click = (await rows('#runs-table')).map((r) => Number(r.runId));
  await page.selectOption('#filter-status', 'completed');
  s.completed_rows = (await rows('#runs-table')).length;
  await page.selectOption('#filter-status', '');
  await shot('runs');
  out.steps.runs = s;

  step = 'run';
  await open(`#/runs/${plan.run_id}`, '#traces-table');
  const r = { facts: await facts() };
  r.leaderboard = await rows('#leaderboard-table');
  r.examples = await rows('#examples-table');
  r.wins = await page.$eval('[data-wins]', (e) => Number(e.dataset.wins)).catch(() => null);
  r.losses = await page.$eval('[data-losses]', (e) => Number(e.dataset.losses)).catch(() => null);
  r.chart_points = await page.$eval('#trials-chart', (e) => Number(e.dataset.points));
  r.instructions = await page.$$eval('#best-program pre.instructions', (ps) => ps.map((p) => p.textContent));
  r.demos = await page.$$eval('#best-program ol.demos > li', (ls) => ls.length);
  r.traces = await rows('#traces-table');
  // Only a run whose best beat its baseline has the wins-and-losses table.
  if (await page.$('button[aria-label="Sort by Best score"]')) {
    await page.click('button[aria-label="Sort by Best score"]');
    r.examples_sorted = (await rows('#examples-table')).map((e) => Number(e.exampleId));
  }
  r.canvases = await canvases();
  await shot('run');
  step = 'trace';
  const first = r.traces[0];
  if (first) {
    await page.click(`button[aria-label="Open trace ${first.traceId}"]`);
    await page.waitForSelector('#trace-title');
    r.opened_trace = await page.$eval('#trace-title', (e) => Number(e.dataset.traceId));
    r.opened_request = await page.$eval('#trace-request', (e) => e.textContent);
    r.opened_response = await page.$eval('#trace-response', (e) => e.textContent);
    await page.$eval('#trace-detail', (e) => e.scrollIntoView());
    await shot('run-trace');
  }
  out.steps.run = r;

  step = 'program';
  await open(`#/programs/${encodeURIComponent(plan.program)}`, '#lineage');
  const p = { facts: await facts() };
  p.lineage = await page.$$eval('#lineage li[data-version]', (ls) => ls.map((l) => ({ version: Number(l.dataset.version), depth: (() => { let d = 0; for (let x = l.parentElement; x && x.id !== 'lineage'; x = x.parentElement) if (x.tagName === 'UL') d++; return d; })() })));
  p.history_before = await rows('#alias-history');
  p.comparisons = await rows('#comparisons-table');
  p.diff_predictors = await page.$$eval('#diff article[data-predictor]', (as) => as.length);
  p.canvases = await canvases();
  await shot('program');

  step = 'promote-refused';
  await page.fill('#promote-alias', plan.alias);
  await page.selectOption('#promote-version', String(plan.refused_version));
  await page.check('#promote-gate');
  await page.selectOption('#promote-split', 'val');
  await page.click('#promote-form button[type="submit"]');
  await page.waitForSelector('#alias-refusal');
  p.refusal = await page.$eval('#alias-refusal', (e) => ({ status: Number(e.dataset.status), text: e.textContent }));
  await page.$eval('#s-aliases', (e) => e.scrollIntoView());
  await shot('program-refusal');

  step = 'promote';
  await page.uncheck('#promote-gate');
  await page.selectOption('#promote-version', String(plan.promote_version));
  await page.click('#promote-form button[type="submit"]');
  await page.waitForSelector('#alias-result .notice.ok');
  p.promoted = await page.$eval('#alias-result', (e) => e.textContent);
  // The page reloads itself to show the move.
  await page.waitForFunction((n) => document.querySelectorAll('#alias-history tbody tr[data-move-id]').length > n, p.history_before.length);
  p.history_after_promote = await rows('#alias-history');

  step = 'rollback';
  await page.selectOption('#rollback-alias', plan.alias);
  await page.click('#rollback-form button[type="submit"]');
  await page.waitForSelector('#alias-result .notice.ok');
  p.rolled_back = await page.$eval('#alias-result', (e) => e.textContent);
  await page.waitForFunction((n) => document.querySelectorAll('#alias-history tbody tr[data-move-id]').length > n, p.history_after_promote.length);
  p.history_after_rollback = await rows('#alias-history');
  out.steps.program = p;

  step = 'ab';
  await open('#/ab', '#ab-table');
  const a = { tests: await rows('#ab-table') };
  await open(`#/ab/${encodeURIComponent(plan.ab_test)}`, '#variants-table');
  a.facts = await facts();
  a.variants = await rows('#variants-table');
  a.canvases = await canvases();
  await shot('ab');
  step = 'conclude';
  await page.selectOption('#conclude-winner', plan.winner);
  await page.click('#conclude-form button[type="submit"]');
  await page.waitForSelector('#conclude-result .notice.ok');
  a.concluded = await page.$eval('#conclude-result', (e) => e.textContent);
  out.steps.ab = a;

  step = 'start';
  await open('#/start', '#start-form');
  await page.selectOption('#optimizer', 'labeled');
  const st = {};
  st.optimizers = await page.$$eval('#optimizer option', (os) => os.map((o) => o.value));
  st.labeled_k = await page.$eval('#opt-max_labeled_demos', (e) => ({ min: e.min, max: e.max, value: e.value, label: e.labels[0].textContent }));
  await page.selectOption('#optimizer', 'miprov2');
  st.miprov2_fields = await page.$$eval('#optimizer-settings input, #optimizer-settings select', (es) => es.map((e) => e.name));
  await shot('start');
  out.steps.start = st;
}

async function live() {
  step = 'start';
  await open('#/start', '#start-form');
  await page.selectOption('#program', plan.program);
  await page.fill('#trainset', plan.trainset_file);
  await page.selectOption('#optimizer', plan.optimizer);
  for (const [name, value] of Object.entries(plan.settings || {})) await page.fill(`#opt-${name}`, String(value));
  await page.fill('#threads', '1');
  if (plan.max_calls) await page.fill('#max-calls', String(plan.max_calls));
  step = 'live';
  await page.click('#start-form button[type="submit"]');
  await page.waitForURL(/#\/runs\/\d+$/);
  await page.waitForSelector('#live-progress');
  const l = { run_id: Number(page.url().match(/#\/runs\/(\d+)$/)[1]), samples: [] };
  const sample = () =>
    page.evaluate(() => ({
      t: Date.now(),
      done: Number(document.getElementById('live-work')?.dataset.done || 0),
      events: Number(document.getElementById('live-events')?.textContent || 0),
      points: Number(document.getElementById('trials-chart')?.dataset.points || 0),
      calls: Number(document.getElementById('live-budget')?.dataset.calls || 0),
      budget: document.getElementById('live-budget')?.textContent,
      eta: document.getElementById('live-eta')?.textContent,
      rate: document.getElementById('live-rate')?.textContent,
      finished: document.getElementById('live')?.dataset.finished || null,
    }));
  const deadline = Date.now() + 120000;
  let shotTaken = false;
  for (;;) {
    const s = await sample();
    l.samples.push(s);
    if (!shotTaken && s.points >= 2 && s.done > 0) {
      await shot('live');
      shotTaken = true;
    }
    if (s.finished || Date.now() > deadline) break;
    await page.waitForTimeout(250);
  }
  if (!shotTaken) await shot('live');
  // After the end the page reads the stored run once more.
  await page.waitForFunction(() => document.getElementById('run-status')?.textContent !== 'running');
  await page.waitForTimeout(300);
  l.final_status = await page.$eval('#run-status', (e) => e.textContent);
  l.final_points = await page.$eval('#trials-chart', (e) => Number(e.dataset.points));
  l.leaderboard = await rows('#leaderboard-table');
  l.canvases = await canvases();
  out.steps.live = l;
}

async function token() {
  step = 'token-asked';
  await page.goto(`${base}/#/runs`);
  await page.waitForSelector('#token-dialog[open]');
  const t = { dialog_label: await page.$eval('#token-input', (e) => e.labels[0].textContent) };
  await shot('token');
  step = 'token-given';
  await page.fill('#token-input', plan.token);
  await page.click('#token-form button[type="submit"]');
  await page.waitForSelector('#runs-table');
  t.rows = await rows('#runs-table');
  t.stored = await page.evaluate(() => sessionStorage.getItem('skill-fleet-token'));
  t.api_requests = apiRequests;
  out.steps.token = t;
}

try {
  if (plan.scenario === 'tour') await tour();
  else if (plan.scenario === 'live') await live();
  else if (plan.scenario === 'token') await token();
  else throw new Error(`unknown scenario ${plan.scenario}`);
} catch (e) {
  out.error = `${step}: ${e && e.stack ? e.stack : e}`;
  try {
    await shot(`failed-${step}`);
  } catch (_) {
    /* the page is gone */
  }
}
await browser.close();
console.log(JSON.stringify(out));
