// The one way the dashboard talks to the server: fetch on the JSON API with
// the bearer token (asked for when the server answers 401, kept in
// sessionStorage for this tab, sent as `Authorization: Bearer ...`), and the
// job event stream read through fetch (EventSource cannot send a header).

const TOKEN_KEY = 'skill-fleet-token';

/** An API answer that is not 2xx: its status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

let pendingAsk = null;

/** Shows the token dialog once, however many requests wait on it. */
function askToken() {
  if (pendingAsk) return pendingAsk;
  pendingAsk = new Promise((resolve) => {
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    input.value = '';
    const done = (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      form.removeEventListener('submit', done);
      dialog.close();
      document.getElementById('forget-token').hidden = false;
      pendingAsk = null;
      resolve();
    };
    form.addEventListener('submit', done);
    dialog.showModal();
    input.focus();
  });
  return pendingAsk;
}

/** Forgets the stored token (the next request asks again). */
export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function hasToken() {
  return sessionStorage.getItem(TOKEN_KEY) !== null;
}

/**
 * Calls the API: `path` under the server, an optional JSON `body` (POST).
 * Resolves with the parsed JSON (or text); rejects with an ApiError
 * carrying the server's `error` message.
 */
export async function api(path, { method, body } = {}) {
  const init = { method: method || (body === undefined ? 'GET' : 'POST') };
  for (;;) {
    init.headers = headers(body === undefined ? {} : { 'Content-Type': 'application/json' });
    if (body !== undefined) init.body = JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401) {
      forgetToken();
      await askToken();
      continue;
    }
    const type = r.headers.get('content-type') || '';
    const data = type.includes('json') ? await r.json() : await r.text();
    if (!r.ok) {
      const message = data && typeof data === 'object' && data.error ? data.error : String(data);
      throw new ApiError(r.status, message);
    }
    return data;
  }
}

/**
 * Follows a server-sent event stream (`/api/v1/optimization/status/{id}/events`),
 * calling `onEvent` with each `data:` JSON until the stream ends or
 * `signal` aborts. Resolves when it ends.
 */
export async function followEvents(path, onEvent, signal) {
  let r;
  for (;;) {
    r = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal });
    if (r.status !== 401) break;
    forgetToken();
    await askToken();
  }
  if (!r.ok) throw new ApiError(r.status, `event stream answered ${r.status}`);
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      try {
        onEvent(JSON.parse(data));
      } catch (e) {
        console.warn('unreadable event', data, e);
      }
    }
  }
}
