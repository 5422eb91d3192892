/*
 * api.js - the Beacon JSON API as seen from the dashboard: every request
 * carries the Bearer key; failures come back as one of two errors so the
 * caller can say what went wrong.
 */

/* The server answered with an error status; message is its "error". */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/* The server could not be reached at all (network error, no answer). */
export class Unreachable extends Error {
  constructor(cause) {
    super('cannot reach the Beacon server');
    this.name = 'Unreachable';
    this.cause = cause;
  }
}

const TIMEOUT_MS = 15000;

/* path plus the query string of params; empty and null values left out. */
export function withQuery(path, params = {}) {
  const q = new URLSearchParams();

  for (const [name, value] of Object.entries(params)) {
    if (value !== '' && value !== null && value !== undefined) {
      q.set(name, String(value));
    }
  }
  const s = q.toString();
  return s === '' ? path : `${path}?${s}`;
}

export class Api {
  constructor(key) {
    this.key = key;
  }

  async getJson(path, params) {
    return (await this.send('GET', withQuery(path, params))).json();
  }

  async postJson(path, body) {
    const res = await this.send('POST', path, JSON.stringify(body),
                                'application/json');
    return res.json();
  }

  /* The response body as a Blob (used for the CSV download). */
  async getBlob(path, params) {
    return (await this.send('GET', withQuery(path, params))).blob();
  }

  async send(method, url, body, contentType) {
    const headers = {Authorization: `Bearer ${this.key}`};
    let res;

    if (contentType) {
      headers['Content-Type'] = contentType;
    }
    try {
      res = await fetch(url, {
        method, headers, body, cache: 'no-store',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw new Unreachable(e);
    }
    if (res.status === 502 || res.status === 504) {
      /* A reverse proxy in front answering for a Beacon that is down. */
      throw new Unreachable(new Error(`HTTP ${res.status}`));
    }
    if (!res.ok) {
      throw new ApiError(res.status, await errorText(res, url));
    }
    return res;
  }
}

/* The "error" member of an error reply, else the status line. */
async function errorText(res, url) {
  try {
    const body = await res.json();
    if (res.status === 404 && body && body.error === 'no such route') {
      return `This server does not offer ${url.split('?')[0]} `
        + '(an older Beacon?).';
    }
    if (body && typeof body.error === 'string') {
      return body.error;
    }
  } catch (e) {
    /* Not JSON (a proxy's error page): the status says enough. */
  }
  return `HTTP ${res.status} ${res.statusText}`.trim();
}
