// The run's timeline: one bar per node attempt, in a lane per worker, built from the run's events
// (node.started / node.done / node.failed / node.retrying / node.waiting / nodes.cancelled / run.*).
import { formatDuration, s } from './util.js';

const ROW_HEIGHT = 26;
const BAR_HEIGHT = 18;
const LABEL_WIDTH = 120;
const AXIS_HEIGHT = 26;
const PAD_RIGHT = 16;
let hatchSeq = 0;

/**
 * Attempts from the events: `{ node, attempt, worker, start, end?, outcome, waitingFrom? }`, where
 * outcome is running, done, failed, retrying (failed, to be retried) or cancelled. Attempts still open
 * when the run ended are closed at its end.
 */
export function attemptsFrom(events) {
  const attempts = [];
  const open = new Map();
  let runStart;
  let runEnd;
  const close = (node, at, outcome, fields = {}) => {
    let attempt = open.get(node);
    if (!attempt && fields.startedAt) {
      // Its start was not seen (an event trimmed away): rebuild it from the end event.
      attempt = { node, attempt: Number(fields.attempt) || 1, worker: fields.worker || '?', start: Number(fields.startedAt) };
      attempts.push(attempt);
    }
    if (!attempt) return;
    attempt.end = at;
    attempt.outcome = outcome;
    if (fields.error) attempt.error = fields.error;
    open.delete(node);
  };
  for (const event of events) {
    const at = Number(event.at);
    switch (event.type) {
      case 'run.started':
        runStart = at;
        break;
      case 'node.started': {
        const attempt = { node: event.node, attempt: Number(event.attempt) || 1, worker: event.worker || '?', start: at, outcome: 'running' };
        attempts.push(attempt);
        open.set(event.node, attempt);
        break;
      }
      case 'node.waiting': {
        const attempt = open.get(event.node);
        if (attempt) {
          attempt.waitingFrom = at;
          attempt.child = event.child;
        }
        break;
      }
      case 'node.done':
        close(event.node, at, 'done', event);
        break;
      case 'node.failed':
        close(event.node, at, 'failed', event);
        break;
      case 'node.retrying':
        close(event.node, at, 'retrying', event);
        break;
      case 'nodes.cancelled':
        for (const node of (event.nodes ?? '').split(',').filter(Boolean)) close(node, at, 'cancelled');
        break;
      default:
        if (event.type?.startsWith('run.')) {
          runEnd = at;
          for (const node of [...open.keys()]) close(node, at, event.type === 'run.completed' ? 'done' : 'cancelled');
        }
    }
  }
  return { attempts, runStart, runEnd };
}

/** Tick spacing that gives about `target` ticks over `span` ms. */
function tickStep(span, target) {
  const steps = [100, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000];
  return steps.find((step) => span / step <= target) ?? steps.at(-1);
}

function tickLabel(ms, step) {
  if (step < 1000) return `${(ms / 1000).toFixed(step < 500 ? 2 : 1)} s`;
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds === 0 ? `${minutes} min` : `${minutes}:${String(seconds).padStart(2, '0')}`;
}

/**
 * The timeline as an `<svg>` `width` px wide. `now` is the server's current time (running bars end
 * there); `onSelect(nodeId)` is called when a bar is clicked or activated with the keyboard.
 */
export function drawGantt(events, { width, now, onSelect }) {
  const { attempts, runStart, runEnd } = attemptsFrom(events);
  const start = runStart ?? Math.min(...attempts.map((a) => a.start), now);
  // A finished run fills the width; a running one shows at least a few seconds, growing as it goes.
  const end = Math.max(runEnd ?? now, start + (runEnd === undefined ? 3000 : 100), ...attempts.map((a) => a.end ?? now));
  const workers = [...new Set(attempts.map((a) => a.worker))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));

  // Lanes: within a worker, an attempt goes to the first lane free at its start.
  const lanes = [];
  for (const worker of workers) {
    const mine = attempts.filter((a) => a.worker === worker).sort((a, b) => a.start - b.start);
    const ends = [];
    const firstLane = lanes.length;
    for (const attempt of mine) {
      let lane = ends.findIndex((e) => e <= attempt.start);
      if (lane === -1) {
        lane = ends.length;
        ends.push(0);
        lanes.push({ worker, first: lane === 0 });
      }
      ends[lane] = attempt.end ?? Infinity;
      attempt.row = firstLane + lane;
    }
  }

  const plotWidth = Math.max(120, width - LABEL_WIDTH - PAD_RIGHT);
  const x = (t) => LABEL_WIDTH + ((t - start) / (end - start)) * plotWidth;
  const height = AXIS_HEIGHT + Math.max(1, lanes.length) * ROW_HEIGHT + 8;
  const svg = s('svg', { class: 'gantt', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Timeline of node attempts by worker' });
  const hatchId = `hatch-${++hatchSeq}`;
  svg.append(s('defs', {}, s('pattern', { id: hatchId, width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
    s('rect', { width: 6, height: 6, class: 'hatch-bg' }), s('line', { x1: 0, y1: 0, x2: 0, y2: 6, class: 'hatch-line' }))));

  // Axis and grid.
  const step = tickStep(end - start, Math.max(2, Math.floor(plotWidth / 90)));
  const axis = s('g', { class: 'axis', 'aria-hidden': 'true' });
  for (let t = 0; start + t <= end; t += step) {
    const tx = x(start + t);
    axis.append(s('line', { x1: tx, x2: tx, y1: AXIS_HEIGHT - 6, y2: height - 4, class: 'grid' }));
    axis.append(s('text', { x: tx, y: AXIS_HEIGHT - 10, 'text-anchor': t === 0 ? 'start' : 'middle' }, tickLabel(t, step)));
  }
  svg.append(axis);

  // Worker labels and lane stripes.
  const rows = s('g', { class: 'rows', 'aria-hidden': 'true' });
  lanes.forEach((lane, i) => {
    const y = AXIS_HEIGHT + i * ROW_HEIGHT;
    if (lane.first) {
      if (i > 0) rows.append(s('line', { x1: 0, x2: width, y1: y, y2: y, class: 'lane-sep' }));
      rows.append(s('text', { x: 8, y: y + ROW_HEIGHT / 2 + 4, class: 'worker' }, lane.worker));
    }
  });
  if (lanes.length === 0) rows.append(s('text', { x: LABEL_WIDTH, y: AXIS_HEIGHT + 17, class: 'empty' }, 'No node has started yet.'));
  svg.append(rows);

  // Labels: inside a bar when they fit, else after it when nothing else is there; never on top of another.
  const labelRoom = new Map();
  const byLane = [...attempts].sort((a, b) => a.row - b.row || a.start - b.start);
  byLane.forEach((attempt, i) => {
    const name = `${attempt.node}${attempt.attempt > 1 ? ` #${attempt.attempt}` : ''}`;
    // Inside, the name is bold (wider) than outside.
    const textWidth = name.length * 7 + 8;
    const x0 = x(attempt.start);
    const x1 = Math.max(x0 + 3, x(attempt.end ?? now));
    const next = byLane[i + 1]?.row === attempt.row ? x(byLane[i + 1].start) : width;
    if (x1 - x0 >= textWidth + 4) labelRoom.set(attempt, { name, x: x0 + 6, inside: true });
    else if (x1 + 4 + textWidth <= next) labelRoom.set(attempt, { name, x: x1 + 4, inside: false });
  });

  const bars = s('g', { class: 'bars' });
  for (const attempt of attempts) {
    const y = AXIS_HEIGHT + attempt.row * ROW_HEIGHT + (ROW_HEIGHT - BAR_HEIGHT) / 2;
    const x0 = x(attempt.start);
    const x1 = Math.max(x0 + 3, x(attempt.end ?? now));
    const took = (attempt.end ?? now) - attempt.start;
    const what = `${attempt.node}, attempt ${attempt.attempt} on ${attempt.worker}: ${attempt.outcome}${attempt.end ? `, ${formatDuration(took)}` : ` for ${formatDuration(took)}`}`;
    const bar = s('g', { class: `bar bar-${attempt.outcome}`, 'data-node-id': attempt.node, 'data-attempt': attempt.attempt, role: 'button', tabindex: 0, 'aria-label': `${what}. Show details` });
    bar.append(s('title', {}, what), s('rect', { class: 'body', x: x0, y, width: x1 - x0, height: BAR_HEIGHT, rx: 3 }));
    if (attempt.waitingFrom !== undefined) {
      const wx = x(attempt.waitingFrom);
      bar.append(s('rect', { class: 'waiting', x: wx, y: y + 1, width: Math.max(0, x1 - wx - 1), height: BAR_HEIGHT - 2, fill: `url(#${hatchId})` }));
    }
    const label = labelRoom.get(attempt);
    if (label) bar.append(s('text', { x: label.x, y: y + BAR_HEIGHT / 2 + 4, class: label.inside ? 'inside' : 'outside' }, label.name));
    if (onSelect) {
      bar.addEventListener('click', () => onSelect(attempt.node));
      bar.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          onSelect(attempt.node);
        }
      });
    }
    bars.append(bar);
  }
  svg.append(bars);
  return svg;
}

/** What the bar colours mean. */
export const GANTT_LEGEND = [
  ['done', 'done'],
  ['running', 'running'],
  ['retrying', 'failed, retried'],
  ['failed', 'failed'],
  ['cancelled', 'cancelled'],
  ['waiting', 'waiting for a child run'],
];
