// The runs list: the tenant's recent top-level runs, newest first, refreshed while any is in flight.
import { api, ApiError } from '../api.js';
import { delay, formatAgo, formatDuration, formatFullTime, formatTime, formatTokens, h, replace, shortId, statusBadge } from '../util.js';

const STATUSES = ['running', 'completed', 'failed', 'cancelled'];
const REFRESH_MS = 2000;

export function renderRuns({ main, params, isCurrent }) {
  const controller = new AbortController();
  const status = STATUSES.includes(params.get('status')) ? params.get('status') : '';
  const blueprintId = params.get('blueprint') ?? '';

  const filter = h('select', { id: 'status-filter', onchange: () => navigate({ status: filter.value, blueprint: blueprintId }) },
    h('option', { value: '' }, 'All statuses'),
    STATUSES.map((s) => h('option', { value: s, selected: s === status }, s[0].toUpperCase() + s.slice(1))));
  const live = h('span', { class: 'live', hidden: true }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), 'Live');
  const refresh = h('button', { type: 'button', class: 'button ghost', onclick: () => load() }, 'Refresh');
  const body = h('div', { class: 'card table-card' }, h('p', { class: 'loading' }, 'Loading runs…'));
  const heading = h('h1', {}, 'Runs');
  const chips = blueprintId
    ? h('p', { class: 'filter-chip' }, 'Blueprint ', h('code', {}, blueprintId), ' ', h('a', { href: status ? `#/?status=${status}` : '#/' }, 'show all'))
    : null;

  replace(main,
    h('div', { class: 'page-head' },
      h('div', {}, heading, h('p', { class: 'subtle' }, 'Recent runs started through this API, newest first.')),
      h('div', { class: 'toolbar' }, live, h('label', { for: 'status-filter', class: 'inline-label' }, 'Status'), filter, refresh)),
    chips,
    body);

  let timer;
  const load = async () => {
    clearTimeout(timer);
    const query = new URLSearchParams({ limit: '100' });
    if (status) query.set('status', status);
    if (blueprintId) query.set('blueprintId', blueprintId);
    try {
      const { runs, now } = await api(`/runs?${query}`, { signal: controller.signal });
      if (!isCurrent()) return;
      const skew = now - Date.now();
      replace(body, runs.length === 0 ? emptyState(status || blueprintId) : table(runs, now));
      const inFlight = runs.some((r) => r.status === 'running');
      live.hidden = !inFlight;
      if (inFlight) timer = setTimeout(load, REFRESH_MS);
      body.dataset.skew = String(skew);
    } catch (err) {
      if (err?.name === 'AbortError' || !isCurrent()) return;
      replace(body, errorState(err));
      if (!(err instanceof ApiError) || err.status === 0 || err.status >= 500) {
        await delay(REFRESH_MS * 2, controller.signal);
        if (!controller.signal.aborted) load();
      }
    }
  };
  load();
  return () => {
    controller.abort();
    clearTimeout(timer);
  };
}

function navigate({ status, blueprint }) {
  const query = new URLSearchParams();
  if (status) query.set('status', status);
  if (blueprint) query.set('blueprint', blueprint);
  const text = query.toString();
  window.location.hash = text ? `#/?${text}` : '#/';
}

function table(runs, now) {
  return h('table', { class: 'runs-table' },
    h('caption', { class: 'visually-hidden' }, 'Runs'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col' }, 'Run'),
      h('th', { scope: 'col' }, 'Blueprint'),
      h('th', { scope: 'col' }, 'Started'),
      h('th', { scope: 'col', class: 'num' }, 'Duration'),
      h('th', { scope: 'col', class: 'num' }, 'Tokens'),
      h('th', { scope: 'col' }, 'Nodes'))),
    h('tbody', {}, runs.map((run) => row(run, now))));
}

function row(run, now) {
  const duration = run.durationMs ?? (run.status === 'running' ? now - run.createdAt : undefined);
  return h('tr', { 'data-run-id': run.runId, 'data-status': run.status },
    h('td', {}, statusBadge(run.status)),
    h('td', {}, h('a', { href: `#/runs/${encodeURIComponent(run.runId)}`, class: 'mono', title: run.runId }, shortId(run.runId))),
    h('td', {}, h('a', { href: `#/?blueprint=${encodeURIComponent(run.blueprintId)}`, class: 'quiet-link', title: `Only runs of ${run.blueprintId}` }, run.blueprintId)),
    h('td', { title: formatFullTime(run.createdAt) }, formatTime(run.createdAt), h('span', { class: 'subtle small' }, ` · ${formatAgo(run.createdAt, now)}`)),
    h('td', { class: 'num' }, formatDuration(duration)),
    h('td', { class: 'num', title: run.usage ? `${run.usage.promptTokens} prompt + ${run.usage.completionTokens} completion` : undefined }, formatTokens(run.usage)),
    h('td', {}, progress(run.nodes)));
}

/** A small bar of node states: done, running, failed, skipped … */
function progress(counts) {
  const order = ['done', 'running', 'queued', 'failed', 'cancelled', 'skipped', 'pending'];
  const total = order.reduce((sum, s) => sum + (counts[s] ?? 0), 0);
  if (total === 0) return '–';
  const finished = (counts.done ?? 0) + (counts.skipped ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
  const label = order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(', ');
  return h('div', { class: 'progress-cell', title: label },
    h('div', { class: 'progress', role: 'img', 'aria-label': label },
      order.filter((s) => counts[s]).map((s) => {
        const seg = h('span', { class: `seg seg-${s}` });
        // CSSOM, not a style attribute: the page's CSP allows no inline styles.
        seg.style.flexGrow = String(counts[s]);
        return seg;
      })),
    h('span', { class: 'subtle small' }, `${finished}/${total}`));
}

function emptyState(filtered) {
  return h('div', { class: 'empty-state' },
    h('p', { class: 'empty-title' }, filtered ? 'No runs match this filter.' : 'No runs yet.'),
    h('p', { class: 'subtle' }, 'Start one from the ', h('a', { href: '#/blueprints' }, 'Blueprints'), ' page, or with ', h('code', {}, 'switchyard run <blueprint> --wait'), '.'));
}

export function errorState(err) {
  if (err instanceof ApiError && err.status === 401) {
    return h('div', { class: 'empty-state' }, h('p', { class: 'empty-title' }, 'Sign in with an API key'), h('p', { class: 'subtle' }, 'Enter a key in the field at the top right to see runs.'));
  }
  if (err instanceof ApiError && err.status === 403) {
    return h('div', { class: 'empty-state' }, h('p', { class: 'empty-title' }, 'Not allowed'), h('p', { class: 'subtle' }, err.message));
  }
  return h('div', { class: 'empty-state error' }, h('p', { class: 'empty-title' }, 'Could not load'), h('p', { class: 'subtle' }, err?.message ?? String(err)));
}
