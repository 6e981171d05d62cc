// Start a job: a form generated from the optimizers' own description
// (GET /api/v1/optimization/optimizers: each setting's type, range and
// default). Settings the start request can change become inputs with those
// bounds; the rest are listed with their defaults. Submitting posts
// /api/v1/optimization/start and opens the run once the job has one.

import { api } from './api.js';
import { h, put, section, notice, text } from './ui.js';

/** Optimizer settings the start request sets, by its field name. */
const SETTABLE = {
  k: 'max_labeled_demos',
  max_labeled_demos: 'max_labeled_demos',
  max_bootstrapped_demos: 'max_bootstrapped_demos',
  metric_threshold: 'metric_threshold',
  num_candidates: 'num_candidates',
  num_trials: 'num_trials',
  max_metric_calls: 'max_metric_calls',
  auto: 'auto',
  retriever: 'retriever',
};

/** A nested settings object is described as `oneOf` its one schema. */
function unwrap(prop) {
  return prop.oneOf && prop.oneOf.length === 1 && prop.oneOf[0].properties ? prop.oneOf[0] : prop;
}

/** Every leaf property of a JSON schema, with its default from `defaults`. */
function leaves(schema, defaults, prefix = '') {
  const out = [];
  for (const [key, raw] of Object.entries((schema && schema.properties) || {})) {
    const prop = unwrap(raw);
    const value = defaults ? defaults[key] : undefined;
    if (prop.type === 'object' || (prop.properties && !prop.enum)) out.push(...leaves(prop, value, `${prefix}${key}.`));
    else out.push({ key, path: `${prefix}${key}`, prop, value });
  }
  return out;
}

function typeOf(prop) {
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== 'null') : prop.type;
  if (prop.enum || (prop.oneOf && prop.oneOf.every((o) => o.enum))) return 'enum';
  return t || 'string';
}

function enumValues(prop) {
  if (prop.enum) return prop.enum.filter((x) => x !== null);
  return prop.oneOf.flatMap((o) => o.enum);
}

function input(field, leaf) {
  const id = `opt-${field}`;
  const { prop, value } = leaf;
  const kind = typeOf(prop);
  let control;
  if (kind === 'enum') {
    control = h('select', { id, name: field }, h('option', { value: '' }, '(default)'), enumValues(prop).map((v) => h('option', { value: v, selected: v === value }, v)));
  } else if (kind === 'integer' || kind === 'number') {
    control = h('input', {
      id, name: field, type: 'number',
      min: prop.minimum ?? prop.exclusiveMinimum, max: prop.maximum ?? prop.exclusiveMaximum,
      step: kind === 'integer' ? '1' : 'any',
      value: value ?? '', placeholder: value === null || value === undefined ? 'default' : null,
    });
    control.dataset.kind = kind;
  } else {
    control = h('input', { id, name: field, value: value ?? '' });
  }
  const range = prop.minimum !== undefined || prop.maximum !== undefined ? ` (${prop.minimum ?? '…'} to ${prop.maximum ?? '…'})` : '';
  return h('div', { class: 'field' }, h('label', { for: id }, `${leaf.path}${range}`), control, prop.description ? h('small', {}, prop.description) : null);
}

export async function render(main) {
  const [optimizers, programs] = await Promise.all([api('/api/v1/optimization/optimizers'), api('/api/v1/programs')]);
  const choice = h('select', { id: 'optimizer', name: 'optimizer' }, optimizers.map((o) => h('option', { value: o.name }, o.name)));
  const program = h('select', { id: 'program', name: 'program', required: true }, programs.map((p) => h('option', { value: p.name }, p.name)));
  const trainset = h('input', { id: 'trainset', name: 'trainset', required: true, placeholder: 'stored name or id, or a data-dir file' });
  const seed = h('input', { id: 'seed', name: 'seed', type: 'number', min: '0', step: '1', value: '0' });
  const threads = h('input', { id: 'threads', name: 'threads', type: 'number', min: '1', max: '64', step: '1', value: '4' });
  const maxCalls = h('input', { id: 'max-calls', name: 'max_calls', type: 'number', min: '1', step: '1', placeholder: 'no limit' });
  const maxMinutes = h('input', { id: 'max-minutes', name: 'max_minutes', type: 'number', min: '0.1', max: '10080', step: 'any', placeholder: 'no limit' });
  const promote = h('input', { id: 'promote', name: 'promote', placeholder: 'optional, e.g. staging', pattern: '[A-Za-z0-9_\\-]{1,64}' });
  const settings = h('div', { id: 'optimizer-settings' });
  const result = h('div', { id: 'start-result', 'aria-live': 'polite' });
  const describe = () => {
    const o = optimizers.find((x) => x.name === choice.value);
    const all = leaves(o.parameters, o.defaults);
    const settable = all.filter((l) => SETTABLE[l.key]);
    const fixed = all.filter((l) => !SETTABLE[l.key]);
    put(settings, 
      h('p', { id: 'optimizer-description' }, o.description),
      settable.map((l) => input(SETTABLE[l.key], l)),
      fixed.length ? h('details', {}, h('summary', {}, `Other settings (defaults, ${fixed.length})`), h('ul', {}, fixed.map((l) => h('li', {}, `${l.path} = ${text(l.value)}`)))) : null,
    );
  };
  choice.addEventListener('change', describe);
  describe();
  const form = h('form', { id: 'start-form', 'aria-label': 'Start an optimization job' },
    h('div', { class: 'field' }, h('label', { for: 'program' }, 'Program'), program),
    h('div', { class: 'field' }, h('label', { for: 'trainset' }, 'Trainset'), trainset),
    h('div', { class: 'field' }, h('label', { for: 'optimizer' }, 'Optimizer'), choice),
    settings,
    h('div', { class: 'field' }, h('label', { for: 'seed' }, 'Seed'), seed),
    h('div', { class: 'field' }, h('label', { for: 'threads' }, 'Threads (1 to 64)'), threads),
    h('div', { class: 'field' }, h('label', { for: 'max-calls' }, 'Budget: LM calls at most'), maxCalls),
    h('div', { class: 'field' }, h('label', { for: 'max-minutes' }, 'Budget: minutes at most'), maxMinutes),
    h('div', { class: 'field' }, h('label', { for: 'promote' }, 'Promote to alias'), promote),
    h('button', { type: 'submit' }, 'Start job'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { program: program.value, optimizer: choice.value, seed: Number(seed.value), threads: Number(threads.value) };
    const ts = trainset.value.trim();
    if (/\.(json|jsonl|csv)$/i.test(ts) || ts.includes('/')) body.trainset_file = ts;
    else body.trainset_id = /^\d+$/.test(ts) ? Number(ts) : ts;
    for (const el of settings.querySelectorAll('input, select')) {
      if (el.value === '') continue;
      body[el.name] = el.dataset.kind ? Number(el.value) : el.value;
    }
    const budget = {};
    if (maxCalls.value) budget.max_calls = Number(maxCalls.value);
    if (maxMinutes.value) budget.max_minutes = Number(maxMinutes.value);
    if (Object.keys(budget).length) body.budget = budget;
    if (promote.value.trim()) body.promote = promote.value.trim();
    try {
      const job = await api('/api/v1/optimization/start', { body });
      put(result, notice(`Job #${job.job_id} queued; opening its run…`, 'ok'));
      for (let i = 0; i < 600; i += 1) {
        const s = await api(`/api/v1/optimization/status/${job.job_id}`);
        if (s.run_id) {
          location.hash = `#/runs/${s.run_id}`;
          return;
        }
        if (!['pending', 'running'].includes(s.status)) {
          put(result, notice(`Job #${job.job_id} ${s.status}: ${s.error || ''}`));
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    } catch (e) {
      put(result, notice(e.message));
    }
  });
  main.append(h('h1', {}, 'Start a job'), section('Optimization', form, result));
}
