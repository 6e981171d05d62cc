// A/B tests: every test (GET /api/v1/ab), and one test's status — per
// variant requests, outcomes, mean with its interval and the probability of
// being best (also as a chart), the stop rule's verdict — and conclude
// (optionally moving an alias to the winner).

import { api } from './api.js';
import { h, put, num, int, when, facts, sortableTable, section, notice, chart } from './ui.js';

export async function render(main) {
  const tests = await api('/api/v1/ab');
  main.append(
    h('h1', {}, 'A/B tests'),
    sortableTable({
      id: 'ab-table',
      columns: [
        { label: 'Test', value: (t) => t.name, cell: (t) => h('a', { href: `#/ab/${encodeURIComponent(t.name)}` }, t.name) },
        { label: 'Program', value: (t) => t.program },
        { label: 'Status', value: (t) => t.status, cell: (t) => h('span', { class: `status ${t.status}` }, t.status) },
        { label: 'Strategy', value: (t) => t.strategy },
        { label: 'Variants', value: (t) => t.variants.length, cell: (t) => t.variants.map((v) => `${v.name}=${v.weight}`).join(', ') },
        { label: 'Winner', value: (t) => t.winner || '' },
        { label: 'Created', value: (t) => t.created_at, cell: (t) => when(t.created_at) },
      ],
      rows: tests,
      rowAttrs: (t) => ({ 'data-test': t.name }),
    }),
  );
}

export async function renderTest(main, name) {
  const path = `/api/v1/ab/${encodeURIComponent(name)}`;
  const s = await api(path);
  const t = s.test;
  const interval = s.interval ? `${s.interval} interval at ${num(100 * s.confidence, 0)}%` : 'interval';
  const pChart = chart('Probability that each variant is best', {
    type: 'bar',
    data: {
      labels: s.variants.map((v) => `${v.variant} (v${v.version})`),
      datasets: [{ label: 'P(best)', data: s.variants.map((v) => v.p_best ?? 0), backgroundColor: '#2563eb' }],
    },
    options: { scales: { y: { min: 0, max: 1 } } },
  }, 200);
  pChart.id = 'pbest-chart';
  const result = h('div', { id: 'conclude-result', 'aria-live': 'polite' });
  const winner = h('select', { id: 'conclude-winner', name: 'winner' }, s.variants.map((v) => h('option', { value: v.variant, selected: v.variant === s.decision.leader }, `${v.variant} (v${v.version})`)));
  const alias = h('input', { id: 'conclude-alias', name: 'promote', placeholder: 'e.g. production', pattern: '[A-Za-z0-9_\\-]{1,64}' });
  const form = h('form', { id: 'conclude-form', 'aria-label': 'Conclude the test' },
    h('label', { for: 'conclude-winner' }, 'Winner'), winner,
    h('label', { for: 'conclude-alias' }, 'Move alias to the winner (optional)'), alias,
    h('button', { type: 'submit', disabled: t.status !== 'active' }, 'Conclude'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { winner: winner.value };
    if (alias.value.trim()) body.promote = alias.value.trim();
    try {
      const done = await api(`${path}/conclude`, { body });
      put(result, notice(`Concluded: ${done.winner} wins.`, 'ok'));
      setTimeout(() => window.dispatchEvent(new HashChangeEvent('hashchange')), 600);
    } catch (e) {
      put(result, notice(e.message));
    }
  });
  main.append(
    h('h1', {}, `A/B test ${t.name} `, h('span', { class: `status ${t.status}`, id: 'ab-status' }, t.status)),
    facts([
      ['Program', h('a', { href: `#/programs/${encodeURIComponent(t.program)}` }, t.program), 'program'],
      ['Strategy', t.strategy, 'strategy'],
      ['Measure', s.measure, 'measure'],
      ['Created', when(t.created_at), 'created'],
      ['Winner', t.winner || '–', 'winner'],
      ['Stop rule', `${s.decision.stop ? 'stop' : 'keep going'}: ${s.decision.reason}`, 'decision'],
    ]),
    section('Variants',
      sortableTable({
        id: 'variants-table',
        columns: [
          { label: 'Variant', value: (v) => v.variant },
          { label: 'Version', value: (v) => v.version, cell: (v) => `v${v.version}`, num: true },
          { label: 'Weight', value: (v) => v.weight, cell: (v) => `${v.weight} (${num(100 * v.share, 0)}%)`, num: true },
          { label: 'Requests', value: (v) => v.requests, num: true },
          { label: 'Outcomes', value: (v) => v.outcomes, num: true },
          { label: 'Successes', value: (v) => v.successes, cell: (v) => int(v.successes), num: true },
          { label: 'Mean', value: (v) => v.mean, cell: (v) => num(v.mean), num: true },
          { label: 'Interval', value: (v) => v.ci_low, cell: (v) => (v.ci_low === null ? '–' : `[${num(v.ci_low)}, ${num(v.ci_high)}]`) },
          { label: 'P(best)', value: (v) => v.p_best, cell: (v) => num(v.p_best), num: true },
        ],
        rows: s.variants,
        caption: `Per variant: requests routed, outcomes recorded, mean with its ${interval}, probability of being best`,
        rowAttrs: (v) => ({ 'data-variant': v.variant }),
      }),
      pChart),
    section('Conclude', form, result),
  );
}
