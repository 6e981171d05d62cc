// Small DOM helpers the pages share: element building (text only, never
// HTML strings, so no value from the database is ever parsed as markup),
// number and time formatting, sortable tables, fact lists and charts.

/** `h('a', {href: '#/runs', class: 'x', onclick: f}, 'text', child)`. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/** Replaces `el`'s children (arrays flattened, null and false skipped). */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A number with `digits` decimals, or an en dash. */
export function num(x, digits = 3) {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

export function int(x) {
  return typeof x === 'number' && Number.isFinite(x) ? String(Math.round(x)) : '–';
}

export function usd(x) {
  return typeof x === 'number' && Number.isFinite(x) ? `$${x.toFixed(4)}` : '–';
}

/** Milliseconds as `1h 02m`, `3m 05s` or `4.2s`. */
export function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** Milliseconds between two stored times (the end defaults to now). */
export function elapsed(start, end) {
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : Date.now();
  return Number.isFinite(a) && Number.isFinite(b) ? b - a : NaN;
}

/** A stored time as `2026-11-29 15:04:05`. */
export function when(t) {
  return t ? String(t).replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '–';
}

/** A value as short text: objects as JSON. */
export function text(v) {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** `<dl>` of [label, value] pairs; each value cell gets `data-fact=key`. */
export function facts(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs.map(([label, value, key]) => [h('dt', {}, label), h('dd', { 'data-fact': key || null }, value)]),
  );
}

/**
 * A table whose columns sort by clicking their header button.
 * `columns`: [{label, value(row) (sort key), cell(row) (node or text), num}].
 * `rowAttrs(row)` adds attributes to each `<tr>` (tests read them).
 */
export function sortableTable({ columns, rows, caption, id, rowAttrs, sort }) {
  const tbody = h('tbody');
  let state = sort || null;
  const ths = columns.map((c, i) => {
    const button = h('button', { type: 'button', class: 'sort', 'aria-label': `Sort by ${c.label}` }, c.label);
    const th = h('th', { scope: 'col', class: c.num ? 'num' : null }, button);
    button.addEventListener('click', () => {
      const desc = state && state.col === i ? !state.desc : !!c.num;
      state = { col: i, desc };
      draw();
    });
    return th;
  });
  function draw() {
    let list = rows.slice();
    ths.forEach((th, i) => th.setAttribute('aria-sort', state && state.col === i ? (state.desc ? 'descending' : 'ascending') : 'none'));
    if (state) {
      const key = columns[state.col].value;
      list.sort((a, b) => {
        const x = key(a);
        const y = key(b);
        const cmp = x === y ? 0 : x === null || x === undefined ? 1 : y === null || y === undefined ? -1 : x < y ? -1 : 1;
        return state.desc ? -cmp : cmp;
      });
    }
    put(
      tbody,
      list.map((r) =>
        h('tr', rowAttrs ? rowAttrs(r) : {}, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell ? c.cell(r) : text(c.value(r))))),
      ),
    );
    if (!list.length) tbody.append(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, 'Nothing yet.')));
  }
  draw();
  return h('table', { id, class: 'data' }, caption ? h('caption', {}, caption) : null, h('thead', {}, h('tr', {}, ths)), tbody);
}

/** A titled section. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { 'aria-labelledby': id }, h('h2', { id }, title), children);
}

/** A message in the page (role=alert for errors). */
export function notice(message, kind = 'error') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
}

/**
 * A Chart.js chart in a fixed-height box. Animation is off: the live page
 * redraws often, and a test screenshot should show the final frame.
 */
export function chart(label, config, height = 260) {
  const canvas = h('canvas', { role: 'img', 'aria-label': label });
  const box = h('div', { class: 'chart' }, canvas);
  box.style.height = `${height}px`;
  const opts = config.options || (config.options = {});
  opts.animation = false;
  opts.responsive = true;
  opts.maintainAspectRatio = false;
  // Chart.js waits for the canvas to be attached before it measures it.
  // eslint-disable-next-line no-undef
  box.chart = new Chart(canvas, config);
  return box;
}
