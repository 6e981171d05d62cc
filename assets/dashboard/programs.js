// Programs: the registered programs, and one program's page — its versions
// as a lineage tree, its aliases and their history, promote and roll back
// (through the API; the evidence gate's refusal is shown as the server gives
// it), a side-by-side diff of two versions, and its stored comparisons with
// their confidence intervals.

import { api } from './api.js';
import { h, put, num, int, when, text, facts, sortableTable, section, notice, chart } from './ui.js';

export async function render(main) {
  const rows = await api('/api/v1/programs');
  main.append(
    h('h1', {}, 'Programs'),
    sortableTable({
      id: 'programs-table',
      columns: [
        { label: 'Program', value: (p) => p.name, cell: (p) => h('a', { href: `#/programs/${encodeURIComponent(p.name)}` }, p.name) },
        { label: 'Versions', value: (p) => p.versions, num: true },
        { label: 'Newest version', value: (p) => p.latest_version, cell: (p) => (p.latest_version ? `v${p.latest_version}` : '–'), num: true },
      ],
      rows,
      rowAttrs: (p) => ({ 'data-program': p.name }),
    }),
  );
}

/** Versions as nested lists under their parents (roots: no parent here). */
function lineageTree(versions) {
  const byId = new Map(versions.map((v) => [v.id, v]));
  const children = new Map();
  const roots = [];
  for (const v of [...versions].sort((a, b) => a.version - b.version)) {
    if (v.parent_id && byId.has(v.parent_id)) {
      if (!children.has(v.parent_id)) children.set(v.parent_id, []);
      children.get(v.parent_id).push(v);
    } else roots.push(v);
  }
  const item = (v) =>
    h('li', { 'data-version': v.version },
      h('span', { class: 'node' },
        h('strong', {}, `v${v.version}`),
        ` score ${num(v.score)}`,
        v.run_id ? [' · ', h('a', { href: `#/runs/${v.run_id}` }, `run #${v.run_id}`)] : null,
        ` · ${when(v.created_at)}`,
        v.aliases.map((a) => h('span', { class: 'alias', 'data-alias': a }, a))),
      children.has(v.id) ? h('ul', {}, children.get(v.id).map(item)) : null);
  return h('ul', { class: 'tree', id: 'lineage', 'aria-label': 'Versions by lineage' }, roots.map(item));
}

function versionSelect(id, label, versions, selected) {
  return [
    h('label', { for: id }, label),
    h('select', { id, name: id }, versions.map((v) => h('option', { value: v.version, selected: v.version === selected }, `v${v.version}`))),
  ];
}

export async function renderProgram(main, name) {
  const base = `/api/v1/programs/${encodeURIComponent(name)}`;
  const [versions, history, comparisons] = await Promise.all([
    api(`${base}/versions`),
    api(`${base}/aliases`),
    api(`${base}/comparisons`),
  ]);
  const numberOf = new Map(versions.map((v) => [v.id, v.version]));
  const aliases = new Map();
  for (const v of versions) for (const a of v.aliases) aliases.set(a, v.version);
  const newest = versions[0] ? versions[0].version : null;
  const oldest = versions.length ? versions[versions.length - 1].version : null;

  // Promote and roll back.
  const result = h('div', { id: 'alias-result', 'aria-live': 'polite' });
  const aliasInput = h('input', { id: 'promote-alias', name: 'alias', list: 'alias-names', value: aliases.keys().next().value || 'production', required: true, pattern: '[A-Za-z0-9_\\-]{1,64}' });
  const gate = h('input', { id: 'promote-gate', type: 'checkbox', name: 'require_better' });
  const split = h('select', { id: 'promote-split', name: 'split' }, ['test', 'val', 'train'].map((s) => h('option', { value: s }, s)));
  const margin = h('input', { id: 'promote-margin', type: 'number', name: 'margin', min: '0', step: '0.01', value: '0' });
  const moved = async (promise) => {
    try {
      const m = await promise;
      put(result, notice(`${m.alias} moved from ${m.from_version ? `v${m.from_version}` : 'nowhere'} to v${m.to_version} (${m.action}).`, 'ok'));
      setTimeout(() => window.dispatchEvent(new HashChangeEvent('hashchange')), 600);
    } catch (e) {
      const why = e.status === 409 ? 'Refused by the evidence gate: ' : `Refused (${e.status}): `;
      put(result, h('p', { class: 'notice error', role: 'alert', id: 'alias-refusal', 'data-status': e.status }, why, e.message));
    }
  };
  const promoteForm = h('form', { id: 'promote-form', 'aria-label': 'Promote a version' },
    h('h3', {}, 'Promote'),
    h('label', { for: 'promote-alias' }, 'Alias'), aliasInput,
    h('datalist', { id: 'alias-names' }, [...aliases.keys()].map((a) => h('option', { value: a }))),
    versionSelect('promote-version', 'Version', versions, newest),
    h('label', { class: 'check' }, gate, ' Require evidence (a stored comparison no worse than the current version)'),
    h('label', { for: 'promote-split' }, 'Comparison split'), split,
    h('label', { for: 'promote-margin' }, 'Margin'), margin,
    h('button', { type: 'submit' }, 'Promote'));
  promoteForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const body = { version: Number(document.getElementById('promote-version').value), reason: 'from the dashboard', require_better: gate.checked };
    if (gate.checked) {
      body.split = split.value;
      body.margin = Number(margin.value) || 0;
    }
    moved(api(`${base}/aliases/${encodeURIComponent(aliasInput.value)}/promote`, { body }));
  });
  const rollbackAlias = h('select', { id: 'rollback-alias', name: 'alias' }, [...aliases.keys()].map((a) => h('option', { value: a }, `${a} (now v${aliases.get(a)})`)));
  const rollbackForm = h('form', { id: 'rollback-form', 'aria-label': 'Roll back an alias' },
    h('h3', {}, 'Roll back'),
    h('label', { for: 'rollback-alias' }, 'Alias'), rollbackAlias,
    h('button', { type: 'submit', disabled: aliases.size === 0 }, 'Roll back'),
    h('p', { class: 'hint' }, 'Points the alias back at the version it named before its latest move.'));
  rollbackForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    moved(api(`${base}/aliases/${encodeURIComponent(rollbackAlias.value)}/rollback`, { body: { reason: 'from the dashboard' } }));
  });

  // Diff of two versions.
  const diffOut = h('div', { id: 'diff' });
  const diffForm = h('form', { id: 'diff-form', 'aria-label': 'Diff two versions' },
    versionSelect('diff-a', 'From', versions, oldest === newest ? oldest : versions[1]?.version ?? oldest),
    versionSelect('diff-b', 'To', versions, newest),
    h('button', { type: 'submit' }, 'Show diff'));
  const showDiff = async () => {
    const a = document.getElementById('diff-a').value;
    const b = document.getElementById('diff-b').value;
    try {
      const d = await api(`${base}/diff/${a}/${b}`);
      put(diffOut, 
        d.predictors.map((p) =>
          h('article', { class: 'predictor-diff', 'data-predictor': p.name },
            h('h3', {}, `Predictor ${p.name}${p.only_in ? ` (only in ${p.only_in.toUpperCase()})` : ''}${p.instructions_changed ? ' — instructions changed' : ''}`),
            h('div', { class: 'side-by-side' },
              h('div', {}, h('h4', {}, `v${d.a.version}`), h('pre', { class: p.instructions_changed ? 'changed' : null }, p.a_instructions)),
              h('div', {}, h('h4', {}, `v${d.b.version}`), h('pre', { class: p.instructions_changed ? 'changed' : null }, p.b_instructions))),
            h('p', {}, `Demos: ${p.demos_added.length} added, ${p.demos_removed.length} removed, ${p.demos_kept} kept.`),
            p.demos_added.length ? h('details', {}, h('summary', {}, 'Added demos'), h('ol', {}, p.demos_added.map((x) => h('li', {}, h('code', {}, text(x)))))) : null,
            p.demos_removed.length ? h('details', {}, h('summary', {}, 'Removed demos'), h('ol', {}, p.demos_removed.map((x) => h('li', {}, h('code', {}, text(x)))))) : null)),
        d.other_changes.length ? h('ul', {}, d.other_changes.map((c) => h('li', {}, c))) : h('p', {}, 'No other spec changes.'),
        h('p', {}, `Common ancestor: ${d.lineage.common_ancestor ? `v${d.lineage.common_ancestor}` : 'none'}.`),
      );
    } catch (e) {
      put(diffOut, notice(e.message));
    }
  };
  diffForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    showDiff();
  });

  // Stored comparisons: the table and the intervals as floating bars.
  const label = (c) => `v${numberOf.get(c.b_version_id) ?? '?'} vs v${numberOf.get(c.a_version_id) ?? '?'} (${c.split}, #${c.id})`;
  const cmpChart = comparisons.length
    ? chart('Mean score difference of each stored comparison with its confidence interval', {
        type: 'bar',
        data: {
          labels: comparisons.map(label),
          datasets: [
            { label: 'Confidence interval of B − A', data: comparisons.map((c) => [c.ci_low, c.ci_high]), backgroundColor: 'rgba(37,99,235,0.35)', borderColor: '#2563eb', borderWidth: 1 },
            { type: 'line', label: 'Mean difference', data: comparisons.map((c) => c.mean_diff), showLine: false, pointRadius: 6, borderColor: '#111827', backgroundColor: '#111827' },
          ],
        },
        options: { indexAxis: 'y', scales: { x: { title: { display: true, text: 'B − A' } } } },
      }, Math.max(140, 50 * comparisons.length + 60))
    : null;
  if (cmpChart) cmpChart.id = 'comparisons-chart';

  main.append(
    h('h1', {}, `Program ${name}`),
    facts([
      ['Versions', String(versions.length), 'versions'],
      ['Aliases', aliases.size ? [...aliases].map(([a, v]) => `${a} → v${v}`).join(', ') : 'none', 'aliases'],
    ]),
    section('Versions and lineage', lineageTree(versions)),
    section('Aliases', h('div', { class: 'forms' }, promoteForm, rollbackForm), result,
      sortableTable({
        id: 'alias-history',
        caption: 'Every alias move, newest first',
        columns: [
          { label: 'When', value: (m) => m.at, cell: (m) => when(m.at) },
          { label: 'Alias', value: (m) => m.alias },
          { label: 'Action', value: (m) => m.action },
          { label: 'From', value: (m) => m.from_version, cell: (m) => (m.from_version ? `v${m.from_version}` : '–'), num: true },
          { label: 'To', value: (m) => m.to_version, cell: (m) => `v${m.to_version}`, num: true },
          { label: 'Reason', value: (m) => m.reason || '' },
          { label: 'Evidence', value: (m) => m.comparison_id, cell: (m) => (m.comparison_id ? `comparison #${m.comparison_id}` : '') },
        ],
        rows: history,
        rowAttrs: (m) => ({ 'data-move-id': m.id }),
      })),
    section('Diff', diffForm, diffOut),
    section('Comparisons',
      cmpChart,
      sortableTable({
        id: 'comparisons-table',
        caption: 'Stored comparisons, newest first: B − A with the paired bootstrap interval and the sign test',
        columns: [
          { label: 'Comparison', value: (c) => c.id, num: true },
          { label: 'A', value: (c) => numberOf.get(c.a_version_id), cell: (c) => `v${numberOf.get(c.a_version_id) ?? '?'}`, num: true },
          { label: 'B', value: (c) => numberOf.get(c.b_version_id), cell: (c) => `v${numberOf.get(c.b_version_id) ?? '?'}`, num: true },
          { label: 'Split', value: (c) => c.split },
          { label: 'Examples', value: (c) => c.n, num: true },
          { label: 'Mean A', value: (c) => c.a_mean, cell: (c) => num(c.a_mean), num: true },
          { label: 'Mean B', value: (c) => c.b_mean, cell: (c) => num(c.b_mean), num: true },
          { label: 'B − A', value: (c) => c.mean_diff, cell: (c) => num(c.mean_diff), num: true },
          { label: 'Interval', value: (c) => c.ci_low, cell: (c) => `[${num(c.ci_low)}, ${num(c.ci_high)}] at ${num(100 * c.confidence, 0)}%` },
          { label: 'Wins / losses / ties', value: (c) => c.wins - c.losses, cell: (c) => `${int(c.wins)} / ${int(c.losses)} / ${int(c.ties)}` },
          { label: 'p (sign test)', value: (c) => c.p_value, cell: (c) => num(c.p_value), num: true },
        ],
        rows: comparisons,
        rowAttrs: (c) => ({ 'data-comparison-id': c.id }),
      })),
  );
  if (versions.length > 1) await showDiff();
}
