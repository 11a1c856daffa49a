// The dashboard's only way to the server: the same HTTP API every other client uses, with the API key
// the user typed (kept in this tab's sessionStorage), or none when the server runs without keys.

const KEY_STORAGE = 'switchyard.apiKey';

/** The API lives one level above the dashboard (`…/dashboard/` → `…/`), whatever prefix is in front. */
const API_BASE = new URL('../', window.location.href.split('#')[0]);

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let openAccess = false;

/** Where the key lives when sessionStorage is unavailable (until the page is reloaded). */
let fallbackKey = '';

export function getApiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return fallbackKey;
  }
}

/** Keeps (or with '' forgets) the key; the page re-renders unless `quiet`. */
export function setApiKey(key, { quiet = false } = {}) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    fallbackKey = key;
  }
  if (!quiet) window.dispatchEvent(new CustomEvent('switchyard:key-changed'));
}

/**
 * Calls the API: `api('/runs?limit=20')`, `api('/runs', { method: 'POST', body: {...} })`. Resolves with
 * the parsed JSON; throws an {@link ApiError} for an error answer (and announces a 401 to the page).
 */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { accept: 'application/json' };
  const key = getApiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(new URL(path.replace(/^\//, ''), API_BASE), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal, cache: 'no-store' });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'the server cannot be reached');
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.ok) {
    // Answered without a key: this server runs without authentication (local development).
    if (!key && !openAccess) {
      openAccess = true;
      window.dispatchEvent(new CustomEvent('switchyard:open-access'));
    }
    return json;
  }
  const error = json?.error ?? {};
  if (res.status === 401) window.dispatchEvent(new CustomEvent('switchyard:unauthorized', { detail: { hadKey: Boolean(key), message: error.message } }));
  throw new ApiError(res.status, error.code ?? 'HTTP', error.message ?? `HTTP ${res.status}`, error.details);
}
