// Opens one page in headless Chromium and reports, as one JSON object on
// stdout, what a test needs to judge it: console errors, uncaught page errors,
// failed requests, whether each <canvas> drew pixels, and whether the
// screenshot shows more than a blank page.
//
// Usage: node check_page.mjs URL_OR_FILE SCREENSHOT.png [--wait-ms N]
//
// Generic on purpose (reports now, the dashboard later): it knows nothing of
// the page. Exit code 0 when the page loaded (the caller judges the JSON),
// 2 on bad arguments, 1 when the browser could not open the page at all.
// The browser is Debian's /usr/bin/chromium (override: CHROMIUM_PATH);
// playwright-core never downloads one.

import { launch } from './browser.mjs';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const waitIdx = args.indexOf('--wait-ms');
let waitMs = 500;
if (waitIdx >= 0) {
  waitMs = Number(args[waitIdx + 1]);
  args.splice(waitIdx, 2);
}
if (args.length !== 2 || !Number.isFinite(waitMs)) {
  console.error('usage: node check_page.mjs URL_OR_FILE SCREENSHOT.png [--wait-ms N]');
  process.exit(2);
}
const [target, screenshot] = args;
const url = /^[a-z]+:\/\//i.test(target) ? target : pathToFileURL(resolve(target)).href;
const browser = await launch();
const result = {
  url,
  console_errors: [],
  page_errors: [],
  failed_requests: [],
  canvases: [],
  screenshot: resolve(screenshot),
  screenshot_blank: true,
  title: null,
};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (msg) => {
    if (msg.type() === 'error') result.console_errors.push(msg.text());
  });
  page.on('pageerror', (err) => result.page_errors.push(String(err && err.stack ? err.stack : err)));
  page.on('requestfailed', (req) => {
    result.failed_requests.push(`${req.url()}: ${req.failure() ? req.failure().errorText : 'failed'}`);
  });
  await page.goto(url, { waitUntil: 'load' });
  // Let charts finish their first draw (animations are short, or off).
  await page.waitForTimeout(waitMs);
  result.title = await page.title();
  // For every canvas: its size and how many pixels are not fully transparent.
  result.canvases = await page.evaluate(() =>
    Array.from(document.querySelectorAll('canvas')).map((c) => {
      const out = { id: c.id || null, width: c.width, height: c.height, drawn_pixels: 0 };
      try {
        const ctx = c.getContext('2d');
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) out.drawn_pixels++;
      } catch (e) {
        out.error = String(e);
      }
      return out;
    }),
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  // A blank screenshot is one colour: decode it in a fresh blank page (the
  // checked page's own content security policy may refuse data: images) and
  // count the pixels that differ from the top-left one.
  const png = readFileSync(screenshot).toString('base64');
  const blank = await browser.newPage();
  const stats = await blank.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let differing = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) differing++;
    }
    return { width: img.width, height: img.height, differing };
  }, png);
  result.screenshot_size = [stats.width, stats.height];
  result.screenshot_differing_pixels = stats.differing;
  result.screenshot_blank = stats.differing === 0;
} catch (e) {
  result.page_errors.push(`check_page: ${e && e.stack ? e.stack : e}`);
  console.log(JSON.stringify(result));
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify(result));
