// The dashboard's shell: the API key form, the notice bar and a hash router (#/, #/runs/<id>,
// #/blueprints). Each view renders into <main> and returns a function that stops its polling.
import { getApiKey, setApiKey } from './api.js';
import { h, replace } from './util.js';
import { renderBlueprints } from './views/blueprints.js';
import { renderRun } from './views/run.js';
import { renderRuns } from './views/runs.js';

const main = document.getElementById('main');
const notice = document.getElementById('notice');
let stopView = () => {};
let renderSeq = 0;

function showNotice(...content) {
  replace(notice, ...content);
  notice.hidden = false;
}

function clearNotice() {
  notice.hidden = true;
  notice.replaceChildren();
}

function refreshKeyArea() {
  const hasKey = Boolean(getApiKey());
  document.getElementById('key-form').hidden = hasKey;
  document.getElementById('key-set').hidden = !hasKey;
}

document.getElementById('key-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('api-key');
  const key = input.value.trim();
  if (!key) {
    input.focus();
    return;
  }
  input.value = '';
  setApiKey(key);
});

document.getElementById('forget-key').addEventListener('click', () => {
  setApiKey('');
  document.getElementById('api-key').focus();
});

window.addEventListener('switchyard:key-changed', () => {
  refreshKeyArea();
  clearNotice();
  route();
});

window.addEventListener('switchyard:open-access', () => {
  document.querySelector('.key-area').replaceChildren(h('span', { class: 'key-chip open', title: 'This server accepts requests without an API key' }, 'No authentication'));
});

window.addEventListener('switchyard:unauthorized', (event) => {
  const hadKey = event.detail?.hadKey;
  showNotice(
    h('strong', {}, hadKey ? 'That API key was not accepted.' : 'This server needs an API key.'),
    ' ',
    hadKey ? 'It may be revoked or mistyped: enter another one above.' : 'Enter one above (create one with ',
    hadKey ? '' : h('code', {}, 'switchyard keys create'),
    hadKey ? '' : '). It is kept in this browser tab only.',
  );
  if (hadKey) setApiKey('', { quiet: true });
  refreshKeyArea();
  const input = document.getElementById('api-key');
  if (!document.getElementById('key-form').hidden && document.activeElement !== input) input.focus({ preventScroll: true });
});

function currentRoute() {
  const hash = decodeURIComponent(window.location.hash.replace(/^#/, '')) || '/';
  const parts = hash.split('?')[0].split('/').filter(Boolean);
  const params = new URLSearchParams(hash.split('?')[1] ?? '');
  if (parts[0] === 'runs' && parts[1]) return { name: 'run', runId: parts[1], params };
  if (parts[0] === 'blueprints') return { name: 'blueprints', blueprintId: parts[1], params };
  return { name: 'runs', params };
}

function route() {
  stopView();
  const seq = ++renderSeq;
  const target = currentRoute();
  for (const link of document.querySelectorAll('[data-nav]')) {
    const active = link.dataset.nav === (target.name === 'run' ? 'runs' : target.name);
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const context = { main, params: target.params, isCurrent: () => seq === renderSeq };
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  if (target.name === 'run') stopView = renderRun({ ...context, runId: target.runId });
  else if (target.name === 'blueprints') stopView = renderBlueprints({ ...context, blueprintId: target.blueprintId });
  else stopView = renderRuns(context);
}

window.addEventListener('hashchange', () => {
  route();
  // Move focus to the new page's heading, as a page load would.
  requestAnimationFrame(() => main.focus({ preventScroll: false }));
});

refreshKeyArea();
route();
