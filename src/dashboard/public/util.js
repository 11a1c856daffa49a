// Small DOM and formatting helpers. Text always goes in as text (never as HTML), so nothing from a run
// (node ids, outputs, error messages) can inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * Creates an HTML element: `h('a', { href: '#/', class: 'x' }, 'text', child)`. Attributes named `on…`
 * with a function become event listeners; `false`, `null` and `undefined` attributes are left out.
 */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** As {@link h}, for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** "850 ms", "4.2 s", "3 min 5 s", "2 h 4 min". */
export function formatDuration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ${Math.floor((ms % 60_000) / 1000)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A time of day for today, with the date otherwise. */
export function formatTime(epochMs) {
  if (!epochMs) return '–';
  const date = new Date(epochMs);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? timeFormat.format(date) : dateTimeFormat.format(date);
}

export function formatFullTime(epochMs) {
  return epochMs ? fullFormat.format(new Date(epochMs)) : '';
}

/** "just now", "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(epochMs, now = Date.now()) {
  const seconds = Math.round((now - epochMs) / 1000);
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86_400)} d ago`;
}

/** "1,234 tokens" style numbers. */
export function formatNumber(n) {
  return new Intl.NumberFormat().format(n);
}

export function totalTokens(usage) {
  return usage ? usage.promptTokens + usage.completionTokens : 0;
}

export function formatTokens(usage) {
  return usage ? formatNumber(totalTokens(usage)) : '–';
}

/** The first block of a UUID-like id, enough to tell runs apart in a list. */
export function shortId(id) {
  return id.length > 12 ? id.slice(0, 8) : id;
}

export function isTerminalRunStatus(status) {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** A JSON value as readable text (strings as they are). */
export function prettyJson(value) {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
}

/** A status pill: `<span class="badge badge-running">running</span>`. */
export function statusBadge(status, attrs = {}) {
  return h('span', { class: `badge badge-${status}`, ...attrs }, status);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function delay(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** Says something to screen readers (a polite live region). */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A new text node after a tick makes readers announce a repeated message too.
  setTimeout(() => (region.textContent = text), 50);
}
