// The dashboard's entry: a hash router over the pages (runs, one run,
// programs, one program, A/B tests, one test, start a job). Each page is
// `render(main, ...params)` and may return a cleanup function, called when
// the user leaves it (to stop an event stream or a poll).

import { forgetToken, hasToken } from './api.js';
import { notice } from './ui.js';
import * as runs from './runs.js';
import * as run from './run.js';
import * as programs from './programs.js';
import * as ab from './ab.js';
import * as start from './start.js';

const routes = [
  [/^#\/runs\/(\d+)$/, run.render, 'runs'],
  [/^#\/runs\/?$/, runs.render, 'runs'],
  [/^#\/programs\/([^/]+)$/, programs.renderProgram, 'programs'],
  [/^#\/programs\/?$/, programs.render, 'programs'],
  [/^#\/ab\/([^/]+)$/, ab.renderTest, 'ab'],
  [/^#\/ab\/?$/, ab.render, 'ab'],
  [/^#\/start\/?$/, start.render, 'start'],
];

let cleanup = null;
let generation = 0;

async function show() {
  const main = document.getElementById('app');
  const hash = location.hash || '#/runs';
  if (typeof cleanup === 'function') cleanup();
  cleanup = null;
  const mine = ++generation;
  const found = routes.find(([re]) => re.test(hash));
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (found && a.dataset.nav === found[2]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren();
  main.setAttribute('aria-busy', 'true');
  if (!found) {
    main.append(notice(`No page ${hash}.`));
    main.removeAttribute('aria-busy');
    return;
  }
  const params = hash.match(found[0]).slice(1).map(decodeURIComponent);
  try {
    const done = await found[1](main, ...params);
    if (mine === generation) cleanup = done;
    else if (typeof done === 'function') done();
  } catch (e) {
    if (mine === generation) main.append(notice(e.message || String(e)));
  } finally {
    if (mine === generation) main.removeAttribute('aria-busy');
  }
}

document.getElementById('forget-token').hidden = !hasToken();
document.getElementById('forget-token').addEventListener('click', () => {
  forgetToken();
  document.getElementById('forget-token').hidden = true;
  show();
});
window.addEventListener('hashchange', show);
show();
