// One run: its graph coloured by node state, a timeline of attempts per worker, node details, a
// Cancel button, and for each node waiting for a signal its prompt, one button per action and a payload box. Live: it long-polls the run's events (GET /runs/{id}/events?after=&wait=) and re-reads
// the run after each batch, so nothing reloads.
import { api, ApiError } from '../api.js';
import { attemptsFrom, drawGantt, GANTT_LEGEND } from '../gantt.js';
import { drawGraph, setProgress, setStatuses } from '../graph.js';
import {
  announce, delay, formatDuration, formatFullTime, formatNumber, formatTime, formatTokens, h, isTerminalRunStatus, prettyJson, replace, shortId, statusBadge, totalTokens,
} from '../util.js';
import { errorState } from './runs.js';

const POLL_WAIT_SECONDS = 20;
const TICK_MS = 500;
const NODE_STATES = ['pending', 'queued', 'running', 'waiting', 'sleeping', 'done', 'skipped', 'failed', 'cancelled'];

export function renderRun({ main, runId, isCurrent }) {
  const controller = new AbortController();
  const { signal } = controller;
  const state = { view: undefined, blueprint: undefined, events: [], cursor: undefined, skew: 0, selected: undefined, ended: false };
  let ticker;
  let resizeObserver;

  const serverNow = () => Date.now() + state.skew;
  const noteServerTime = (now) => {
    if (typeof now === 'number') state.skew = now - Date.now();
  };

  // The page's parts, filled in by update().
  const statusBadgeEl = h('span', { id: 'run-status', class: 'badge', 'data-run-status': '' });
  const cancelButton = h('button', { type: 'button', id: 'cancel-run', class: 'button danger', hidden: true, onclick: () => cancel() }, 'Cancel run');
  const redriveButton = h('button', { type: 'button', id: 'redrive-run', class: 'button', hidden: true, title: 'Run the failed and cancelled nodes again; done nodes keep their outputs', onclick: () => redrive() }, 'Redrive');
  const liveEl = h('span', { class: 'live', hidden: true }, h('span', { class: 'live-dot', 'aria-hidden': 'true' }), 'Live');
  const facts = h('dl', { class: 'facts' });
  const lineage = h('p', { class: 'lineage', hidden: true });
  const messages = h('div', { class: 'run-messages' });
  const signalsHost = h('section', { class: 'card signals-card', id: 'signals', 'aria-labelledby': 'signals-heading', hidden: true });
  const graphHost = h('div', { class: 'graph-host' });
  const ganttHost = h('div', { class: 'gantt-host' });
  const contextHost = h('div', { class: 'context-host' });
  const breadcrumbTitle = h('span', {}, `run ${shortId(runId)}`);
  const breadcrumbBlueprint = h('a', { href: '#/' }, 'Runs');

  replace(main,
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Runs'), h('span', { 'aria-hidden': 'true' }, ' / '), breadcrumbBlueprint, h('span', { 'aria-hidden': 'true' }, ' / '), breadcrumbTitle),
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', { class: 'run-title' }, 'Run ', h('span', { class: 'mono', title: runId }, shortId(runId)), ' ', statusBadgeEl), lineage),
      h('div', { class: 'toolbar' }, liveEl, redriveButton, cancelButton)),
    h('section', { class: 'card facts-card', 'aria-label': 'Summary' }, facts),
    messages,
    signalsHost,
    h('div', { class: 'run-grid' },
      h('section', { class: 'card', 'aria-labelledby': 'graph-heading' },
        h('div', { class: 'card-head' }, h('h2', { id: 'graph-heading' }, 'Graph'), legend()),
        graphHost),
      h('section', { class: 'card', 'aria-labelledby': 'timeline-heading' },
        h('div', { class: 'card-head' }, h('h2', { id: 'timeline-heading' }, 'Timeline'),
          h('ul', { class: 'legend gantt-legend', 'aria-label': 'Bars: node attempts by worker' }, GANTT_LEGEND.map(([kind, text]) => h('li', {}, h('span', { class: `swatch swatch-bar-${kind}`, 'aria-hidden': 'true' }), text)))),
        ganttHost)),
    h('section', { class: 'card', 'aria-labelledby': 'context-heading' },
      h('div', { class: 'card-head' }, h('h2', { id: 'context-heading' }, 'Run context'), h('p', { class: 'subtle small' }, 'The run\u2019s input and the keys its nodes wrote.')),
      contextHost));

  const openNode = (nodeId) => {
    state.selected = nodeId;
    const dialog = document.getElementById('node-dialog');
    renderNodeDialog(dialog, state, nodeId, serverNow());
    if (!dialog.open) dialog.showModal();
  };

  const update = () => {
    const { view } = state;
    if (!view || !isCurrent()) return;
    const previous = statusBadgeEl.dataset.runStatus;
    statusBadgeEl.textContent = view.status;
    statusBadgeEl.className = `badge badge-${view.status}`;
    statusBadgeEl.dataset.runStatus = view.status;
    if (previous && previous !== view.status) announce(`Run ${view.status}`);
    cancelButton.hidden = view.status !== 'running';
    redriveButton.hidden = view.status !== 'failed' && view.status !== 'cancelled';
    liveEl.hidden = state.ended;
    breadcrumbBlueprint.textContent = view.blueprintId;
    breadcrumbBlueprint.href = `#/?blueprint=${encodeURIComponent(view.blueprintId)}`;
    renderFacts(facts, view, serverNow());
    if (view.parent) {
      replace(lineage, 'Child run of ', h('a', { href: `#/runs/${encodeURIComponent(view.parent.runId)}`, class: 'mono', id: 'parent-link' }, `run ${shortId(view.parent.runId)}`), ', node ', h('code', {}, view.parent.nodeId), view.parent.index === undefined ? '' : `, child #${view.parent.index}`);
      lineage.hidden = false;
    }
    replace(messages, view.error ? h('div', { class: 'callout error', role: 'note' },
      h('strong', {}, view.error.nodeId ? `Node ${view.error.nodeId} failed: ` : 'Failed: '), view.error.message ?? view.error.code ?? 'unknown error') : null);
    const statuses = Object.fromEntries(Object.entries(view.nodes).map(([id, n]) => [id, n.status]));
    const svg = graphHost.querySelector('svg.graph');
    if (svg) {
      setStatuses(svg, statuses);
      setProgress(svg, progressLabels(view, state.blueprint));
    }
    renderTimeline();
    renderSignals();
    renderContext(contextHost, view.context);
    const dialog = document.getElementById('node-dialog');
    if (dialog.open && state.selected) renderNodeDialog(dialog, state, state.selected, serverNow());
  };

  const renderTimeline = () => {
    const width = Math.max(320, Math.floor(ganttHost.clientWidth || 600));
    const gantt = drawGantt(state.events, { width, now: state.ended && state.view?.endedAt ? state.view.endedAt : serverNow(), onSelect: openNode });
    ganttHost.replaceChildren(gantt);
  };

  /** The waiting nodes: re-drawn only when which nodes wait changes, so a payload being typed stays. */
  const renderSignals = () => {
    const waiting = state.view?.status === 'running' ? state.view.waiting ?? [] : [];
    const signature = JSON.stringify(waiting.map((w) => [w.nodeId, w.since]));
    if (signalsHost.dataset.signature === signature) return;
    signalsHost.dataset.signature = signature;
    signalsHost.hidden = waiting.length === 0;
    if (waiting.length === 0) {
      replace(signalsHost);
      return;
    }
    replace(signalsHost,
      h('div', { class: 'card-head' }, h('h2', { id: 'signals-heading' }, 'Waiting for a signal'),
        h('p', { class: 'subtle small' }, 'Answer with an action; the payload (JSON, optional) becomes the node\u2019s output.')),
      waiting.map((w) => signalForm(w)));
  };

  const signalForm = (w) => {
    const payloadId = `signal-payload-${w.nodeId}`;
    const payload = h('textarea', { id: payloadId, 'data-signal-payload': w.nodeId, placeholder: '{"comment": "optional JSON"}', spellcheck: 'false' });
    const error = h('p', { class: 'callout error small', role: 'alert', hidden: true });
    const send = async (action, button) => {
      let body = {};
      if (action !== undefined) body.action = action;
      const text = payload.value.trim();
      if (text) {
        try {
          body.payload = JSON.parse(text);
        } catch (err) {
          error.textContent = `The payload is not valid JSON: ${err.message}`;
          error.hidden = false;
          return;
        }
      }
      error.hidden = true;
      button.disabled = true;
      try {
        await api(`/runs/${encodeURIComponent(runId)}/signals/${encodeURIComponent(w.nodeId)}`, { method: 'POST', body, signal });
        announce(`Signalled ${w.nodeId}${action ? ` with ${action}` : ''}`);
        state.view = await api(`/runs/${encodeURIComponent(runId)}`, { signal });
        update();
      } catch (err) {
        if (err?.name === 'AbortError') return;
        error.textContent = `Could not signal: ${err.message}`;
        error.hidden = false;
        button.disabled = false;
      }
    };
    const actions = w.actions.length > 0 ? w.actions : [undefined];
    return h('div', { class: 'signal', 'data-signal-node': w.nodeId },
      h('h3', {}, h('code', {}, w.nodeId), ' ', statusBadge('waiting')),
      w.prompt ? h('p', { class: 'signal-prompt', 'data-signal-prompt': w.nodeId }, w.prompt) : null,
      h('p', { class: 'subtle small' }, `Waiting since ${formatTime(w.since)}`, w.timeoutAt ? ` \u00b7 times out at ${formatTime(w.timeoutAt)}` : ''),
      h('label', { for: payloadId, class: 'small' }, 'Payload (JSON)'),
      payload,
      h('div', { class: 'signal-actions' }, actions.map((action) => {
        const button = h('button', { type: 'button', class: 'button', 'data-signal-action': action ?? '', onclick: () => send(action, button) }, action ?? 'Send signal');
        return button;
      })),
      error);
  };

  const cancel = async () => {
    cancelButton.disabled = true;
    try {
      await api(`/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST', signal });
      state.view = await api(`/runs/${encodeURIComponent(runId)}`, { signal });
      update();
    } catch (err) {
      if (err?.name === 'AbortError') return;
      replace(messages, h('div', { class: 'callout error', role: 'alert' }, `Could not cancel: ${err.message}`));
    } finally {
      cancelButton.disabled = false;
    }
  };

  // A redriven run is running again: the page follows it live once more.
  const redrive = async () => {
    redriveButton.disabled = true;
    try {
      await api(`/runs/${encodeURIComponent(runId)}/redrive`, { method: 'POST', signal });
      state.view = await api(`/runs/${encodeURIComponent(runId)}`, { signal });
      const wasEnded = state.ended;
      state.ended = isTerminalRunStatus(state.view.status);
      update();
      if (wasEnded && !state.ended) follow();
    } catch (err) {
      if (err?.name === 'AbortError') return;
      replace(messages, h('div', { class: 'callout error', role: 'alert' }, `Could not redrive: ${err.message}`));
    } finally {
      redriveButton.disabled = false;
    }
  };

  /** Follows the run live until it has ended and every event is in. */
  const follow = async () => {
    let failures = 0;
    while (!signal.aborted && !state.ended) {
      const started = Date.now();
      try {
        const query = new URLSearchParams({ wait: String(POLL_WAIT_SECONDS) });
        if (state.cursor) query.set('after', state.cursor);
        const batch = await api(`/runs/${encodeURIComponent(runId)}/events?${query}`, { signal });
        failures = 0;
        noteServerTime(batch.now);
        if (batch.cursor) state.cursor = batch.cursor;
        state.events.push(...batch.events);
        const sawEnd = batch.events.some((e) => e.type === 'run.completed' || e.type === 'run.failed' || e.type === 'run.cancelled');
        if (batch.events.length > 0 || isTerminalRunStatus(batch.status)) {
          state.view = await api(`/runs/${encodeURIComponent(runId)}`, { signal });
        }
        if (sawEnd || (batch.events.length === 0 && isTerminalRunStatus(batch.status))) state.ended = true;
        update();
        // An empty answer that came back at once (the server had no connection free): do not spin.
        if (batch.events.length === 0 && Date.now() - started < 1000) await delay(1000, signal);
      } catch (err) {
        if (err?.name === 'AbortError' || signal.aborted) return;
        if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) return;
        failures++;
        liveEl.hidden = true;
        await delay(Math.min(10_000, 1000 * 2 ** failures), signal);
      }
    }
    update();
  };

  (async () => {
    try {
      const id = encodeURIComponent(runId);
      // The blueprint version may be gone (then: no graph, the rest still works).
      const blueprintOrNone = api(`/runs/${id}/blueprint`, { signal }).catch((err) => {
        if (err instanceof ApiError && err.code === 'BLUEPRINT_NOT_FOUND') return undefined;
        throw err;
      });
      // The events first, then the view: read together, the view could predate an event already behind the
      // cursor, and the page would show that stale view until the run's next event (a map waiting on gates
      // showed no progress at all).
      const timeline = await api(`/runs/${id}/events`, { signal });
      const [view, blueprint] = await Promise.all([api(`/runs/${id}`, { signal }), blueprintOrNone]);
      if (!isCurrent()) return;
      noteServerTime(timeline.now);
      Object.assign(state, { view, blueprint, events: timeline.events, cursor: timeline.cursor, ended: isTerminalRunStatus(view.status) && isTerminalRunStatus(timeline.status) });
      document.title = `Run ${shortId(runId)} · ${view.blueprintId} · Switchyard`;
      const statuses = Object.fromEntries(Object.entries(view.nodes).map(([nodeId, n]) => [nodeId, n.status]));
      graphHost.replaceChildren(blueprint
        ? drawGraph(blueprint.layout, { statuses, onSelect: openNode, label: `Graph of ${view.blueprintId}` })
        : h('p', { class: 'subtle' }, 'The blueprint of this run is no longer stored, so its graph cannot be drawn.'));
      update();
      ticker = setInterval(() => {
        if (state.ended) return;
        renderFacts(facts, state.view, serverNow());
        renderTimeline();
      }, TICK_MS);
      resizeObserver = new ResizeObserver(() => renderTimeline());
      resizeObserver.observe(ganttHost);
      follow();
    } catch (err) {
      if (err?.name === 'AbortError' || !isCurrent()) return;
      if (err instanceof ApiError && err.status === 404) {
        replace(main, h('div', { class: 'card empty-state' }, h('h1', {}, 'Run not found'), h('p', { class: 'subtle' }, 'There is no run ', h('code', {}, runId), ' for this key (runs expire some time after they end).'), h('p', {}, h('a', { href: '#/' }, 'Back to runs'))));
      } else {
        replace(main, h('div', { class: 'card' }, errorState(err)));
      }
    }
  })();

  return () => {
    controller.abort();
    clearInterval(ticker);
    resizeObserver?.disconnect();
    const dialog = document.getElementById('node-dialog');
    if (dialog.open) dialog.close();
    document.title = 'Switchyard';
  };
}

function legend() {
  return h('ul', { class: 'legend', 'aria-label': 'Node states' },
    NODE_STATES.map((s) => h('li', {}, h('span', { class: `swatch swatch-${s}`, 'aria-hidden': 'true' }), s)));
}

/**
 * How many of its children a map node has done (and how many failed), and which iteration a loop node is
 * on: `{ text, short }` (short: what fits on the node in the graph), or undefined.
 */
function childProgress(node, uses) {
  if (node.fanOut) {
    const { total, completed, failed } = node.fanOut;
    return { text: `${completed + failed} of ${total} done${failed ? `, ${failed} failed` : ''}`, short: `${completed + failed}/${total}${failed ? ` · ${failed} failed` : ''}` };
  }
  const iterations = node.children?.length ?? (node.childRunId ? 1 : 0);
  if (uses !== 'loop' || iterations === 0) return undefined;
  const text = node.status === 'running' ? `iteration ${iterations}` : `${iterations} iteration${iterations === 1 ? '' : 's'}`;
  return { text, short: text };
}

function progressLabels(view, blueprint) {
  const uses = new Map((blueprint?.blueprint?.nodes ?? []).map((n) => [n.id, n.uses]));
  const labels = {};
  for (const [id, node] of Object.entries(view.nodes)) {
    const label = childProgress(node, uses.get(id));
    if (label) labels[id] = label;
  }
  return labels;
}

function renderFacts(facts, view, now) {
  if (!view) return;
  const counts = {};
  for (const node of Object.values(view.nodes)) counts[node.status] = (counts[node.status] ?? 0) + 1;
  const total = Object.keys(view.nodes).length;
  const finished = (counts.done ?? 0) + (counts.skipped ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0);
  const duration = (view.endedAt ?? now) - view.createdAt;
  const fact = (label, ...value) => [h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value))];
  // Time the run's LLM nodes spent waiting for fleet-wide LLM limits (only nodes under one report it).
  const waits = Object.values(view.nodes).map((n) => n.meta?.llmWaitMs).filter((ms) => typeof ms === 'number');
  replace(facts,
    fact('Blueprint', h('a', { href: `#/blueprints/${encodeURIComponent(view.blueprintId)}` }, view.blueprintId)),
    fact('Started', h('span', { title: formatFullTime(view.createdAt) }, formatTime(view.createdAt))),
    fact(view.endedAt ? 'Duration' : 'Running for', formatDuration(duration)),
    fact('Nodes', `${finished} of ${total} finished`),
    view.redrives ? fact('Redrives', h('span', { id: 'run-redrives' }, String(view.redrives))) : [],
    fact('Tokens', h('span', { title: view.usage ? `${formatNumber(view.usage.promptTokens)} prompt + ${formatNumber(view.usage.completionTokens)} completion` : 'no LLM tokens used' }, formatTokens(view.usage))),
    waits.length > 0 ? fact('LLM slot wait', h('span', { id: 'run-llm-wait', title: `summed over ${waits.length} LLM node${waits.length === 1 ? '' : 's'} under a fleet-wide limit` }, formatDuration(waits.reduce((a, b) => a + b, 0)))) : [],
    fact('Run id', h('span', { class: 'mono small' }, view.runId)));
}

function renderContext(host, context) {
  const entries = Object.entries(context ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (entries.length === 0) {
    replace(host, h('p', { class: 'subtle' }, 'Empty.'));
    return;
  }
  const open = new Set([...host.querySelectorAll('details[open]')].map((d) => d.dataset.key));
  replace(host, h('div', { class: 'kv' }, entries.map(([key, value]) =>
    h('details', { 'data-key': key, open: open.has(key) || (typeof value !== 'object' && String(value).length < 160) },
      h('summary', {}, h('code', {}, key), h('span', { class: 'subtle small' }, ` ${preview(value)}`)),
      h('pre', { class: 'json' }, prettyJson(value))))));
}

function preview(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** Provider and model, without the prompt (which has its own section) or the wait for a limit (its own field). */
function metaSummary(meta) {
  return Object.entries(meta).filter(([k]) => k !== 'prompt' && k !== 'llmWaitMs').map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ');
}

/** The node's details, from the run view, the blueprint (params) and the events (attempts). */
function renderNodeDialog(dialog, state, nodeId, now) {
  const node = state.view?.nodes[nodeId] ?? { status: 'pending', attempts: 0 };
  const definition = state.blueprint?.blueprint?.nodes?.find((n) => n.id === nodeId);
  const output = state.view?.outputs?.[nodeId];
  const attempts = attemptsFrom(state.events).attempts.filter((a) => a.node === nodeId);
  const field = (label, ...value) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
  const ended = node.endedAt ?? (node.status === 'running' ? undefined : attempts.at(-1)?.end);
  // Re-rendered on every update while open: only when something changed, so focus and scrolling stay.
  const signature = JSON.stringify([nodeId, node, output === undefined ? null : output, attempts, node.status === 'running' ? Math.floor(now / 1000) : 0]);
  if (dialog.open && dialog.dataset.signature === signature) return;
  dialog.dataset.signature = signature;

  const body = h('div', { class: 'dialog-body' },
    h('dl', { class: 'facts compact' },
      field('Kind', h('code', {}, definition?.uses ?? '?')),
      field('Attempts', String(node.attempts)),
      field('Worker', node.worker ?? '–'),
      field('Started', node.startedAt ? formatTime(node.startedAt) : '–'),
      field('Duration', node.startedAt ? formatDuration((ended ?? now) - node.startedAt) : '–'),
      field('Tokens', node.usage ? `${formatNumber(totalTokens(node.usage))} (${formatNumber(node.usage.promptTokens)} prompt + ${formatNumber(node.usage.completionTokens)} completion)` : '–'),
      node.meta && metaSummary(node.meta) ? field('Answered by', metaSummary(node.meta)) : null,
      // Only under a fleet-wide LLM limit: the time the node waited for a slot (or a provider's pause).
      typeof node.meta?.llmWaitMs === 'number' ? field('Waited for an LLM slot', h('span', { id: 'node-llm-wait' }, formatDuration(node.meta.llmWaitMs))) : null),
    node.fanOut ? h('p', { class: 'callout info', id: 'fan-out-progress' }, `Child runs: ${childProgress(node, definition?.uses).text}${node.fanOut.running ? `, ${node.fanOut.running} running` : ''}.`) : null,
    definition?.uses === 'loop' && (node.children ?? (node.childRunId ? [node.childRunId] : [])).length > 0
      ? h('section', {}, h('h3', {}, 'Iterations'), h('ol', { class: 'iterations', id: 'iteration-links' }, (node.children ?? [node.childRunId]).map((id, i) =>
        h('li', {}, h('a', { href: `#/runs/${encodeURIComponent(id)}`, title: id, onclick: () => dialog.close() }, `iteration ${i + 1}`), ' ', h('span', { class: 'mono small subtle' }, id)))))
      : node.childRunId && !node.fanOut ? h('p', { class: 'callout info' }, 'Subflow: ', h('a', { href: `#/runs/${encodeURIComponent(node.childRunId)}`, class: 'mono', id: 'child-run-link', onclick: () => dialog.close() }, `child run ${shortId(node.childRunId)}`)) : null,
    node.error ? h('section', {}, h('h3', {}, 'Error'), h('pre', { class: 'json error' }, errorText(node.error))) : null,
    attempts.length > 0 ? h('section', {}, h('h3', {}, 'Attempts'), h('ol', { class: 'attempts' }, attempts.map((a) =>
      h('li', {}, statusBadge(a.outcome === 'retrying' ? 'failed' : a.outcome), ` on ${a.worker}, ${formatDuration((a.end ?? now) - a.start)}`, a.error ? h('span', { class: 'subtle' }, ` – ${errorText(a.error)}`) : '')))) : null,
    typeof node.meta?.prompt === 'string'
      ? h('section', {}, h('h3', {}, 'Input: the prompt sent'), h('pre', { class: 'json', id: 'node-prompt' }, node.meta.prompt))
      : null,
    h('section', {}, h('h3', {}, 'Parameters'),
      h('pre', { class: 'json' }, definition?.params ? prettyJson(definition.params) : '(no parameters)')),
    h('section', {}, h('h3', {}, 'Output'), output === undefined ? h('p', { class: 'subtle' }, node.status === 'done' ? '(no output)' : 'Not yet.') : h('pre', { class: 'json', id: 'node-output' }, prettyJson(output))));

  let head = dialog.querySelector('.dialog-head');
  if (!head) {
    const close = h('button', { type: 'button', class: 'button ghost icon', 'aria-label': 'Close details', onclick: () => dialog.close() }, '✕');
    head = h('div', { class: 'dialog-head' }, h('h2', { id: 'node-dialog-title' }), close);
    replace(dialog, head, h('div', { class: 'dialog-body' }));
  }
  replace(head.querySelector('h2'), nodeId, ' ', statusBadge(node.status, { 'data-node-status': node.status }));
  const old = dialog.querySelector('.dialog-body');
  // Keep focus if it was inside the part being replaced.
  const hadFocus = old.contains(document.activeElement);
  body.scrollTop = old.scrollTop;
  old.replaceWith(body);
  body.scrollTop = old.scrollTop;
  if (hadFocus) head.querySelector('button').focus();
  dialog.dataset.nodeId = nodeId;
}

function errorText(error) {
  if (typeof error === 'string') {
    try {
      return errorText(JSON.parse(error));
    } catch {
      return error;
    }
  }
  if (!error || typeof error !== 'object') return String(error);
  return [error.code ? `[${error.code}]` : '', error.message ?? JSON.stringify(error)].filter(Boolean).join(' ');
}
