// One run: its facts and scores, the score over trials (each candidate and
// the best so far), the candidate leaderboard, per-example wins and losses of
// the best program against the baseline, the best program's instructions and
// demos, and its traces (open one for its request and response). All of it
// from the run report (GET /api/v1/runs/{id}/report) and the trace routes.
// While the run's job is live the page follows its event stream: progress,
// budget used, ETA, LM calls per second, and new points as they are scored.

import { api, followEvents } from './api.js';
import { h, put, num, int, usd, duration, elapsed, when, text, facts, sortableTable, section, notice, chart } from './ui.js';

const TRACE_PAGE = 50;

export async function render(main, id) {
  const runId = Number(id);
  let report = await api(`/api/v1/runs/${runId}/report`);
  const jobs = await api('/api/v1/optimization/jobs?limit=1000');
  const job = jobs.find((j) => j.run_id === runId && (j.status === 'pending' || j.status === 'running'));

  const title = h('h1', {}, `Run #${runId} `, h('span', { class: `status ${report.run.status}`, id: 'run-status' }, report.run.status));
  const factBox = h('div', { id: 'run-facts' });
  const live = h('section', { id: 'live', 'aria-labelledby': 'live-title', hidden: !job });
  const board = h('div', { id: 'leaderboard' });
  const examples = h('div', { id: 'examples' });
  const best = h('div', { id: 'best-program' });
  const traces = h('div', { id: 'traces' });
  const detail = h('div', { id: 'trace-detail', 'aria-live': 'polite' });

  // The chart's points: every stored validation evaluation in the order
  // scored, then those the event stream announced that the last read of the
  // report did not hold yet. An event for a candidate and kind already shown
  // adds nothing: a reused evaluation is announced again but stored once.
  const pointOf = (t) => ({ candidate: t.candidate_id, kind: t.kind, score: t.score });
  const keyOf = (p) => `${p.candidate}/${p.kind}`;
  let stored = report.trials.map(pointOf);
  const announced = new Map();
  const allPoints = () => {
    const keys = new Set(stored.map(keyOf));
    return [...stored, ...[...announced.values()].filter((p) => !keys.has(keyOf(p)))];
  };
  const trialsChart = chart('Validation score over trials: each candidate and the best so far', {
    type: 'line',
    data: { labels: [], datasets: [
      { label: 'Best so far', data: [], borderColor: '#2563eb', backgroundColor: '#2563eb', stepped: true, pointRadius: 0 },
      { label: 'Each candidate', data: [], showLine: false, borderColor: '#f97316', backgroundColor: '#f97316', pointRadius: 4 },
    ] },
    options: { scales: { y: { title: { display: true, text: 'validation score' } }, x: { title: { display: true, text: 'evaluation' } } } },
  });
  trialsChart.id = 'trials-chart';
  const drawChart = () => {
    const points = allPoints();
    let bestSoFar = null;
    const bests = points.map((p) => {
      if (p.kind === 'full') bestSoFar = bestSoFar === null ? p.score : Math.max(bestSoFar, p.score);
      return bestSoFar;
    });
    const c = trialsChart.chart;
    if (!c) return;
    c.data.labels = points.map((_, i) => i + 1);
    c.data.datasets[0].data = bests;
    c.data.datasets[1].data = points.map((p) => p.score);
    c.update('none');
    trialsChart.dataset.points = String(points.length);
  };

  const fill = () => {
    const r = report;
    const wall = elapsed(r.run.started_at, r.run.finished_at);
    const calls = r.lm.calls;
    put(factBox, 
      facts([
        ['Kind', r.run.kind, 'kind'],
        ['Optimizer', r.run.optimizer || '–', 'optimizer'],
        ['Program', r.program ? h('a', { href: `#/programs/${encodeURIComponent(r.program.name)}` }, r.program.name) : '–', 'program'],
        ['Versions', r.program ? `v${r.program.base_version ?? '?'} → ${r.program.result_version ? `v${r.program.result_version}` : '–'}` : '–', 'versions'],
        ['Trainset', r.trainset ? `${r.trainset.name} (${r.trainset.n_examples} examples)` : '–', 'trainset'],
        ['Split', r.trainset && r.trainset.split ? `${r.trainset.split.train} train / ${r.trainset.split.val} val / ${r.trainset.split.test} test` : '–', 'split'],
        ['Metric', r.run.metric || '–', 'metric'],
        ['Baseline (val / test)', `${num(r.scores.baseline_val)} / ${num(r.scores.baseline_test)}`, 'baseline'],
        ['Best (val / test)', `${num(r.scores.best_val)} / ${num(r.scores.best_test)}`, 'best'],
        ['LM calls', int(calls), 'lm_calls'],
        ['Tokens (prompt / completion)', `${int(r.lm.prompt_tokens)} / ${int(r.lm.completion_tokens)}`, 'tokens'],
        ['Cost', usd(r.lm.cost_usd), 'cost'],
        ['Latency p50 / p90', `${num(r.lm.latency_p50_ms, 0)} / ${num(r.lm.latency_p90_ms, 0)} ms`, 'latency'],
        ['Started', when(r.run.started_at), 'started'],
        ['Wall time', duration(wall), 'wall'],
        ['LM calls per second', wall > 0 ? num(calls / (wall / 1000), 2) : '–', 'calls_per_s'],
      ]),
      r.run.error ? notice(`Error: ${r.run.error}`) : null,
    );
    put(board, 
      sortableTable({
        id: 'leaderboard-table',
        caption: 'Candidates ranked by their best full validation score',
        columns: [
          { label: 'Rank', value: (c) => c.rank, num: true },
          { label: 'Candidate', value: (c) => c.candidate_id, num: true },
          { label: 'Origin', value: (c) => c.origin },
          { label: 'Trial', value: (c) => c.trial, cell: (c) => int(c.trial), num: true },
          { label: 'Validation score', value: (c) => c.val_score, cell: (c) => num(c.val_score), num: true },
          { label: 'Examples scored', value: (c) => c.n_scored, num: true },
        ],
        rows: r.leaderboard,
        rowAttrs: (c) => ({ 'data-candidate-id': c.candidate_id }),
      }),
    );
    fillExamples(r);
    fillBest(r);
  };

  const fillExamples = (r) => {
    const cmp = r.comparison;
    if (cmp) {
      put(examples, 
        h('p', { id: 'wins-summary' }, `Best against baseline on ${cmp.split}: `, h('strong', { 'data-wins': cmp.wins }, `${cmp.wins} wins`), ', ', h('strong', { 'data-losses': cmp.losses }, `${cmp.losses} losses`), `, ${cmp.ties} ties.`),
        sortableTable({
          id: 'examples-table',
          columns: [
            { label: 'Example', value: (e) => e.idx, num: true },
            { label: 'Input', value: (e) => e.input || '', cell: (e) => h('span', { class: 'clip' }, e.input || '') },
            { label: 'Outcome', value: (e) => e.outcome, cell: (e) => h('span', { class: `outcome ${e.outcome}` }, e.outcome) },
            { label: 'Baseline score', value: (e) => e.baseline_score, cell: (e) => num(e.baseline_score), num: true },
            { label: 'Best score', value: (e) => e.best_score, cell: (e) => num(e.best_score), num: true },
            { label: 'Change', value: (e) => e.best_score - e.baseline_score, cell: (e) => num(e.best_score - e.baseline_score), num: true },
            { label: 'Best prediction', value: (e) => text(e.best_prediction), cell: (e) => h('code', { class: 'clip' }, e.best_error ? `error: ${e.best_error}` : text(e.best_prediction)) },
            { label: 'Metric feedback', value: (e) => e.best_feedback || '', cell: (e) => h('span', { class: 'clip' }, e.best_feedback || '') },
          ],
          rows: cmp.examples,
          rowAttrs: (e) => ({ 'data-example-id': e.example_id, 'data-outcome': e.outcome }),
        }),
      );
    } else if (r.example_scores.length) {
      put(examples, 
        sortableTable({
          id: 'examples-table',
          columns: [
            { label: 'Example', value: (e) => e.idx, num: true },
            { label: 'Input', value: (e) => e.input || '', cell: (e) => h('span', { class: 'clip' }, e.input || '') },
            { label: 'Score', value: (e) => e.score, cell: (e) => num(e.score), num: true },
            { label: 'Prediction', value: (e) => text(e.prediction), cell: (e) => h('code', { class: 'clip' }, e.error ? `error: ${e.error}` : text(e.prediction)) },
            { label: 'Metric feedback', value: (e) => e.feedback || '', cell: (e) => h('span', { class: 'clip' }, e.feedback || '') },
          ],
          rows: r.example_scores,
          rowAttrs: (e) => ({ 'data-example-id': e.example_id }),
        }),
      );
    } else {
      put(examples, h('p', {}, 'No per-example comparison yet (it needs the baseline and the best candidate scored on the same split).'));
    }
  };

  const fillBest = (r) => {
    const b = r.best_program;
    if (!b) {
      put(best, h('p', {}, 'No best program yet.'));
      return;
    }
    put(best, 
      h('p', {}, b.candidate_id ? `Candidate #${b.candidate_id}` : '', b.version_id ? ` (version id ${b.version_id})` : ''),
      b.predictors.map((p) =>
        h('article', { class: 'predictor', 'data-predictor': p.name },
          h('h3', {}, `Predictor ${p.name}`),
          h('h4', {}, 'Instructions'),
          h('pre', { class: 'instructions' }, p.instructions),
          h('h4', {}, `Demos (${p.demos.length})`),
          p.demos.length
            ? h('ol', { class: 'demos' }, p.demos.map((d) => h('li', {}, h('dl', { class: 'demo' }, Object.entries(d).map(([k, v]) => [h('dt', {}, k), h('dd', {}, text(v))])))))
            : h('p', {}, 'No demos.'),
        ),
      ),
    );
  };

  // Traces: pages of the run's LM calls; "Open" shows one call in full.
  let traceOffset = 0;
  const openTrace = async (tid) => {
    put(detail, h('p', {}, `Loading trace #${tid}…`));
    try {
      const t = await api(`/api/v1/traces/${tid}`);
      let request = t.request_json;
      try {
        request = JSON.stringify(JSON.parse(t.request_json), null, 2);
      } catch (_) {
        /* shown as stored */
      }
      put(detail, 
        h('h3', { id: 'trace-title', 'data-trace-id': t.id }, `Trace #${t.id}`),
        facts([
          ['Model', `${t.provider} / ${t.model}`],
          ['Role / predictor', `${t.role || '–'} / ${t.predictor || '–'}`],
          ['Tokens', `${t.prompt_tokens} prompt, ${t.completion_tokens} completion`],
          ['Latency', `${num(t.latency_ms, 1)} ms${t.cache_hit ? ' (cache hit)' : ''}`],
          ['At', when(t.at)],
        ]),
        t.error ? notice(`Error: ${t.error}`) : null,
        h('div', { class: 'side-by-side' },
          h('div', {}, h('h4', {}, 'Request'), h('pre', { id: 'trace-request' }, request)),
          h('div', {}, h('h4', {}, 'Response'), h('pre', { id: 'trace-response' }, t.response_text || ''))),
      );
    } catch (e) {
      put(detail, notice(e.message));
    }
  };
  const loadTraces = async () => {
    const rows = await api(`/api/v1/runs/${runId}/traces?limit=${TRACE_PAGE}&offset=${traceOffset}`);
    const prev = h('button', { type: 'button', disabled: traceOffset === 0, onclick: () => { traceOffset = Math.max(0, traceOffset - TRACE_PAGE); loadTraces(); } }, 'Previous traces');
    const next = h('button', { type: 'button', disabled: rows.length < TRACE_PAGE, onclick: () => { traceOffset += TRACE_PAGE; loadTraces(); } }, 'Next traces');
    put(traces, 
      sortableTable({
        id: 'traces-table',
        caption: `LM calls ${traceOffset + 1}–${traceOffset + rows.length}`,
        columns: [
          { label: 'Trace', value: (t) => t.id, num: true },
          { label: 'Role', value: (t) => t.role || '' },
          { label: 'Candidate', value: (t) => t.candidate_id, cell: (t) => int(t.candidate_id), num: true },
          { label: 'Example', value: (t) => t.example_id, cell: (t) => int(t.example_id), num: true },
          { label: 'Prompt tokens', value: (t) => t.prompt_tokens, num: true },
          { label: 'Completion tokens', value: (t) => t.completion_tokens, num: true },
          { label: 'Latency (ms)', value: (t) => t.latency_ms, cell: (t) => num(t.latency_ms, 1), num: true },
          { label: 'Cache', value: (t) => (t.cache_hit ? 1 : 0), cell: (t) => (t.cache_hit ? 'hit' : '') },
          { label: 'Error', value: (t) => t.error || '', cell: (t) => h('span', { class: 'clip' }, t.error || '') },
          { label: 'Open', value: (t) => t.id, cell: (t) => h('button', { type: 'button', 'aria-label': `Open trace ${t.id}`, onclick: () => openTrace(t.id) }, 'Open') },
        ],
        rows,
        rowAttrs: (t) => ({ 'data-trace-id': t.id }),
      }),
      h('div', { class: 'pager' }, prev, next),
    );
  };

  fill();
  main.append(
    title,
    factBox,
    live,
    section('Score over trials', trialsChart),
    section('Candidate leaderboard', board),
    section('Wins and losses against the baseline', examples),
    section('Best program', best),
    section('Traces', traces, detail),
  );
  drawChart();
  await loadTraces();

  if (!job) return undefined;
  return follow(job, runId, report.run.started_at, live, {
    onScored: (ev) => {
      if (ev.split !== 'val') return;
      const p = { candidate: ev.candidate_id, kind: ev.kind, score: ev.mean };
      if (!announced.has(keyOf(p))) announced.set(keyOf(p), p);
      drawChart();
    },
    refresh: async () => {
      report = await api(`/api/v1/runs/${runId}/report`);
      stored = report.trials.map(pointOf);
      fill();
      drawChart();
      return report;
    },
    done: async () => {
      report = await api(`/api/v1/runs/${runId}/report`);
      stored = report.trials.map(pointOf);
      announced.clear();
      const s = document.getElementById('run-status');
      if (s) {
        s.className = `status ${report.run.status}`;
        put(s, report.run.status);
      }
      fill();
      drawChart();
      await loadTraces();
    },
  });
}

/**
 * Follows a live job: its events move the progress bar and add chart
 * points; every second the report is read again for the leaderboard,
 * LM calls (and calls per second) and budget. Returns the cleanup.
 */
function follow(job, runId, startedAt, live, { onScored, refresh, done }) {
  const abort = new AbortController();
  const bar = h('progress', { id: 'live-progress', max: '1', value: '0', 'aria-label': 'Work done' });
  const work = h('span', { id: 'live-work' }, 'waiting for the first event');
  const budget = h('span', { id: 'live-budget' }, '–');
  const eta = h('span', { id: 'live-eta' }, '–');
  const rate = h('span', { id: 'live-rate' }, '–');
  const message = h('span', { id: 'live-message' }, '');
  const events = h('span', { id: 'live-events' }, '0');
  put(live, 
    h('h2', { id: 'live-title' }, `Live: job #${job.job_id}`),
    bar,
    facts([
      ['Examples scored', work, 'work'],
      ['Budget used', budget, 'budget'],
      ['ETA', eta, 'eta'],
      ['LM calls per second', rate, 'rate'],
      ['Now', message, 'message'],
      ['Events received', events, 'events'],
    ]),
  );
  live.hidden = false;
  let fraction = 0;
  let count = 0;
  let last = null;
  const tick = async () => {
    try {
      const r = await refresh();
      const now = Date.now();
      const calls = r.lm.calls;
      if (last && now > last.t) rate.textContent = num(((calls - last.calls) * 1000) / (now - last.t), 2);
      last = { t: now, calls };
      // Each limit the run was given, used so far; without any, the calls
      // made and the share of the planned work.
      const limits = (r.config && r.config.limits) || {};
      const used = [];
      if (limits.max_calls) used.push(`${calls} of ${limits.max_calls} LM calls`);
      if (limits.max_tokens) used.push(`${r.lm.prompt_tokens + r.lm.completion_tokens} of ${limits.max_tokens} tokens`);
      if (limits.max_cost_usd) used.push(`${usd(r.lm.cost_usd)} of ${usd(limits.max_cost_usd)}`);
      if (r.config && r.config.max_minutes) used.push(`${num(elapsed(r.run.started_at) / 60000, 1)} of ${r.config.max_minutes} minutes`);
      budget.textContent = used.length ? used.join('; ') : `${calls} LM calls; ${num(100 * fraction, 0)}% of the planned work`;
      budget.dataset.calls = String(calls);
    } catch (e) {
      message.textContent = e.message;
    }
  };
  const timer = setInterval(tick, 1000);
  tick();
  followEvents(`/api/v1/optimization/status/${job.job_id}/events`, (ev) => {
    count += 1;
    events.textContent = String(count);
    if (ev.event === 'progress' && ev.run_id === runId) {
      fraction = ev.fraction;
      bar.value = ev.fraction;
      work.textContent = `${ev.done} of ${ev.planned}`;
      work.dataset.done = String(ev.done);
      message.textContent = ev.message;
      // The remaining share at the pace so far since the run started.
      const spent = Math.max(elapsed(startedAt), 1);
      eta.textContent = ev.fraction > 0 && ev.fraction < 1 ? duration((spent * (1 - ev.fraction)) / ev.fraction) : '–';
    } else if (ev.event === 'status' && ev.job) {
      fraction = ev.job.progress || 0;
      bar.value = fraction;
    } else if (ev.event === 'scored' && ev.run_id === runId) {
      onScored(ev);
    } else if (ev.event === 'new_best') {
      message.textContent = `new best: candidate #${ev.candidate_id} at ${num(ev.score)}`;
    } else if (ev.event === 'job_finished') {
      message.textContent = `job ${ev.status}`;
      live.dataset.finished = ev.status;
    }
  }, abort.signal)
    .catch((e) => {
      if (e.name !== 'AbortError') message.textContent = e.message;
    })
    .finally(async () => {
      clearInterval(timer);
      if (!abort.signal.aborted) await done();
    });
  return () => {
    abort.abort();
    clearInterval(timer);
  };
}
