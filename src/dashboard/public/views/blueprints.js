// Every blueprint a run can start (stored, else bundled), drawn, with its analysis, version and push time; each can be started from here.
import { api, ApiError } from '../api.js';
import { drawGraph } from '../graph.js';
import { h, replace } from '../util.js';
import { errorState } from './runs.js';

export function renderBlueprints({ main, blueprintId, isCurrent }) {
  const controller = new AbortController();
  const { signal } = controller;
  const list = h('div', { class: 'blueprint-list' }, h('p', { class: 'loading' }, 'Loading blueprints…'));
  replace(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Blueprints'), h('p', { class: 'subtle' }, 'The workflows this server can run, as the engine sees them.'))),
    list);

  (async () => {
    try {
      const { blueprints } = await api('/blueprints', { signal });
      if (!isCurrent()) return;
      if (blueprints.length === 0) {
        replace(list, h('div', { class: 'card empty-state' }, h('p', { class: 'empty-title' }, 'No blueprints registered.')));
        return;
      }
      const details = await Promise.all(blueprints.map((b) => api(`/blueprints/${encodeURIComponent(b.id)}`, { signal })));
      if (!isCurrent()) return;
      replace(list,
        h('nav', { class: 'toc', 'aria-label': 'Blueprints' }, h('ul', {}, details.map((d) => h('li', {}, h('a', { href: `#/blueprints/${encodeURIComponent(d.id)}` }, d.title ?? d.id))))),
        details.map((d) => card(d)));
      if (blueprintId) {
        const target = document.getElementById(`blueprint-${blueprintId}`);
        if (target) {
          target.scrollIntoView({ block: 'start' });
          target.querySelector('h2')?.focus();
        }
      }
    } catch (err) {
      if (err?.name === 'AbortError' || !isCurrent()) return;
      replace(list, h('div', { class: 'card' }, errorState(err)));
    }
  })();
  return () => controller.abort();
}

function card(detail) {
  const { analysis } = detail;
  const nodes = (ids) => (ids.length === 0 ? '–' : h('span', { class: 'chips' }, ids.map((id) => h('code', {}, id))));
  const fact = (label, ...value) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
  const headingId = `blueprint-heading-${detail.id}`;
  return h('section', { class: 'card blueprint-card', id: `blueprint-${detail.id}`, 'data-blueprint-id': detail.id, 'aria-labelledby': headingId },
    h('div', { class: 'card-head' },
      h('div', {},
        h('h2', { id: headingId, tabindex: -1 }, detail.title ?? detail.id),
        h('p', { class: 'subtle small' }, h('code', {}, detail.id), ' · version ', h('code', { class: 'blueprint-version', title: detail.version }, detail.version.slice(0, 12)), pushed(detail))),
      h('div', { class: 'toolbar' },
        h('a', { class: 'button ghost', href: `#/?blueprint=${encodeURIComponent(detail.id)}` }, 'Runs'),
        h('button', { type: 'button', class: 'button', onclick: () => openStart(detail) }, 'Start run'))),
    detail.description ? h('p', { class: 'description' }, detail.description) : null,
    h('div', { class: 'blueprint-body' },
      h('dl', { class: 'facts compact analysis' },
        fact('Nodes', String(detail.nodeCount)),
        fact('Start nodes', nodes(analysis.startNodes)),
        fact('Terminal nodes', nodes(analysis.terminalNodes)),
        analysis.subflows.length > 0 ? fact('Calls', analysis.subflows.map((id, i) => [i > 0 ? ', ' : '', h('a', { href: `#/blueprints/${encodeURIComponent(id)}` }, id)])) : null,
        analysis.fallbackOnly.length > 0 ? fact('Fallback only', nodes(analysis.fallbackOnly)) : null),
      h('div', { class: 'graph-host' }, drawGraph(detail.layout, { label: `Graph of ${detail.id}` }))));
}

/** When the version shown was pushed (stored blueprints only; bundled ones have no push time), and how many there are. */
function pushed(detail) {
  if (detail.pushedAt === undefined) return ' · bundled';
  const at = new Date(detail.pushedAt);
  const count = detail.versions?.length ?? 1;
  return [
    ' · pushed ', h('time', { class: 'blueprint-pushed', datetime: at.toISOString(), title: at.toISOString() }, at.toLocaleString()),
    count > 1 ? ` · ${count} versions` : null,
  ];
}

/** A dialog to start a run with a JSON input (the blueprint's sample input, when it has one). */
function openStart(detail) {
  const dialog = document.getElementById('start-dialog');
  const sample = detail.blueprint?.metadata?.sampleInput ?? {};
  const input = h('textarea', { id: 'start-input', class: 'json-input', rows: 10, spellcheck: 'false', 'aria-describedby': 'start-help' }, JSON.stringify(sample, null, 2));
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const submit = h('button', { type: 'submit', class: 'button' }, 'Start run');
  const form = h('form', { method: 'dialog', class: 'dialog-body' },
    h('label', { for: 'start-input' }, 'Input (a JSON object: the run\u2019s initial context)'),
    input,
    h('p', { id: 'start-help', class: 'subtle small' }, 'With the offline provider, LLM nodes answer by simple rules, so no key or network is needed.'),
    error,
    h('div', { class: 'dialog-actions' }, h('button', { type: 'button', class: 'button ghost', onclick: () => dialog.close() }, 'Close'), submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    let body;
    try {
      body = JSON.parse(input.value || '{}');
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('the input must be a JSON object');
    } catch (err) {
      error.textContent = `Invalid input: ${err.message}`;
      error.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const started = await api('/runs', { method: 'POST', body: { blueprintId: detail.id, input: body } });
      dialog.close();
      window.location.hash = `#/runs/${encodeURIComponent(started.runId)}`;
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 403 ? 'This API key may not start runs (it lacks the runs:write scope).' : `Could not start: ${err.message}`;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  replace(dialog,
    h('div', { class: 'dialog-head' },
      h('h2', { id: 'start-dialog-title' }, 'Start ', h('code', {}, detail.id)),
      h('button', { type: 'button', class: 'button ghost icon', 'aria-label': 'Close', onclick: () => dialog.close() }, '✕')),
    form);
  dialog.showModal();
  input.focus();
}
