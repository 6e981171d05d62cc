// Runs: every stored run (GET /api/v1/runs), sortable by any column and
// filtered by program and status; a row links to the run's page.

import { api } from './api.js';
import { h, put, num, int, usd, duration, elapsed, when, sortableTable, section } from './ui.js';

export async function render(main) {
  const rows = await api('/api/v1/runs?limit=1000');
  const programs = [...new Set(rows.map((r) => r.program).filter(Boolean))].sort();
  const statuses = [...new Set(rows.map((r) => r.status))].sort();
  const program = h('select', { id: 'filter-program', name: 'program' }, h('option', { value: '' }, 'All programs'), programs.map((p) => h('option', { value: p }, p)));
  const status = h('select', { id: 'filter-status', name: 'status' }, h('option', { value: '' }, 'All statuses'), statuses.map((s) => h('option', { value: s }, s)));
  const holder = h('div');
  const columns = [
    { label: 'Run', value: (r) => r.id, cell: (r) => h('a', { href: `#/runs/${r.id}` }, `#${r.id}`), num: true },
    { label: 'Kind', value: (r) => r.kind },
    { label: 'Optimizer', value: (r) => r.optimizer || '' },
    { label: 'Program', value: (r) => r.program || '' },
    { label: 'Status', value: (r) => r.status, cell: (r) => h('span', { class: `status ${r.status}` }, r.status) },
    { label: 'Baseline', value: (r) => r.baseline_score, cell: (r) => num(r.baseline_score), num: true },
    { label: 'Test', value: (r) => r.test_score, cell: (r) => num(r.test_score), num: true },
    { label: 'LM calls', value: (r) => r.traced_calls, cell: (r) => int(r.traced_calls), num: true },
    { label: 'Cost', value: (r) => r.cost_usd, cell: (r) => usd(r.cost_usd), num: true },
    { label: 'Wall time', value: (r) => elapsed(r.started_at, r.finished_at), cell: (r) => duration(elapsed(r.started_at, r.finished_at)), num: true },
    { label: 'Started', value: (r) => r.started_at, cell: (r) => when(r.started_at) },
  ];
  const draw = () => {
    const shown = rows.filter((r) => (!program.value || r.program === program.value) && (!status.value || r.status === status.value));
    put(holder, 
      sortableTable({
        id: 'runs-table',
        caption: `${shown.length} of ${rows.length} runs, newest first (baseline and test are the run's mean scores)`,
        columns,
        rows: shown,
        rowAttrs: (r) => ({ 'data-run-id': r.id }),
      }),
    );
  };
  program.addEventListener('change', draw);
  status.addEventListener('change', draw);
  draw();
  main.append(
    h('h1', {}, 'Runs'),
    h('div', { class: 'filters', role: 'group', 'aria-label': 'Filters' }, h('label', { for: 'filter-program' }, 'Program'), program, h('label', { for: 'filter-status' }, 'Status'), status),
    section('All runs', holder),
  );
}
