/*
 * harness.mjs - runs the real `beacon serve` for a browser test, the way
 * tests/integration/beacon_harness.py does: a free loopback port, a fresh
 * database and key files in a temporary directory, the URL read from the
 * first stdout line.  It only ever signals the one process it started.
 */

import {spawn} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {isDeepStrictEqual, inspect} from 'node:util';

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 10000;

export class Failure extends Error {}

export function check(cond, what) {
  if (!cond) {
    throw new Failure(what);
  }
}

export function checkEq(got, want, what) {
  if (!isDeepStrictEqual(got, want)) {
    throw new Failure(`${what}: got ${inspect(got, {depth: 4})}, `
      + `want ${inspect(want, {depth: 4})}`);
  }
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/* ms since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
export function rfc3339(ms) {
  return new Date(ms).toISOString();
}

export class Beacon {
  constructor(binary, args = []) {
    this.binary = binary;
    this.args = args;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'beacon-dash-'));
    this.proc = null;
    this.exited = null;
    this.url = null;
    this.apiKey = null;
  }

  async start() {
    const out = fs.openSync(path.join(this.dir, 'stdout.log'), 'a');
    const err = fs.openSync(path.join(this.dir, 'stderr.log'), 'a');
    const env = Object.fromEntries(Object.entries(process.env)
      .filter(([name]) => !name.startsWith('BEACON_')));

    /* Output goes to files: a pipe nobody drains would block the server. */
    this.proc = spawn(this.binary, [
      'serve', '--listen', '127.0.0.1:0',
      '--db', path.join(this.dir, 'beacon.db'),
      '--key-file', path.join(this.dir, 'signing.key'),
      '--api-key-file', path.join(this.dir, 'api.key'),
      ...this.args,
    ], {cwd: this.dir, env, stdio: ['ignore', out, err]});
    fs.closeSync(out);
    fs.closeSync(err);
    this.exited = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => resolve({code, signal}));
    });
    await this.waitServing();
    this.apiKey = fs.readFileSync(path.join(this.dir, 'api.key'), 'utf8')
      .trim();
    check(this.apiKey !== '', 'the API key file is empty');
    return this;
  }

  log(name) {
    return fs.readFileSync(path.join(this.dir, name), 'utf8');
  }

  /* Waits for "beacon VERSION serving http://HOST:PORT". */
  async waitServing() {
    const deadline = Date.now() + START_TIMEOUT_MS;

    for (;;) {
      for (const line of this.log('stdout.log').split('\n')) {
        const words = line.trim().split(/\s+/);
        if (words.length === 4 && words[0] === 'beacon'
            && words[2] === 'serving') {
          this.url = words[3].replace(/\/$/, '');
          return;
        }
      }
      if (this.proc.exitCode !== null) {
        throw new Failure(`beacon exited with ${this.proc.exitCode} before `
          + `serving; stderr:\n${this.log('stderr.log')}`);
      }
      if (Date.now() > deadline) {
        throw new Failure('no "serving" line in time; stdout:\n'
          + this.log('stdout.log'));
      }
      await sleep(10);
    }
  }

  /* SIGTERM, then checks the server exited 0 in time. */
  async stop() {
    if (this.proc === null || this.proc.exitCode !== null) {
      return;
    }
    this.proc.kill('SIGTERM');
    const timeout = sleep(STOP_TIMEOUT_MS).then(() => null);
    const result = await Promise.race([this.exited, timeout]);
    if (result === null) {
      this.kill();
      throw new Failure('beacon did not stop after SIGTERM');
    }
    checkEq(result.code, 0, 'beacon exit status after SIGTERM');
  }

  kill() {
    if (this.proc !== null && this.proc.exitCode === null
        && this.proc.signalCode === null) {
      this.proc.kill('SIGKILL');
    }
  }

  cleanup() {
    this.kill();
    fs.rmSync(this.dir, {recursive: true, force: true});
  }

  /* One request; returns {status, headers, text, json}. */
  async request(method, urlPath, {body, auth = true, headers = {}} = {}) {
    const hdrs = {...headers};
    if (auth) {
      hdrs.Authorization = `Bearer ${this.apiKey}`;
    }
    if (body !== undefined) {
      hdrs['Content-Type'] = 'application/json';
    }
    const res = await fetch(this.url + urlPath, {
      method, headers: hdrs,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch (e) {
      /* Not JSON (a GIF, CSV, HTML): text holds it. */
    }
    return {status: res.status, headers: res.headers, text, json};
  }

  /* GET of an API path that must answer 200; the parsed body. */
  async get(urlPath) {
    const r = await this.request('GET', urlPath);
    checkEq(r.status, 200, `status of GET ${urlPath} (${r.text})`);
    return r.json;
  }

  /* POST /api/v1/messages, which must answer 201. */
  async register(fields) {
    const r = await this.request('POST', '/api/v1/messages', {body: fields});
    checkEq(r.status, 201, `register ${JSON.stringify(fields)} (${r.text})`);
    return r.json;
  }

  /* A pixel GET as a mail client would send it. */
  async openPixel(pixelUrl, userAgent) {
    const res = await fetch(this.url + new URL(pixelUrl).pathname, {
      headers: {'User-Agent': userAgent},
    });
    await res.arrayBuffer();
    checkEq(res.status, 200, `pixel GET ${pixelUrl}`);
  }
}

/* Runs each test in order, prints "ok" or "FAIL" and the tally; returns
 * the exit status. */
export async function runTests(tests) {
  let passed = 0;
  let failed = 0;

  for (const fn of tests) {
    const start = Date.now();
    try {
      const note = await fn();
      passed++;
      console.log(`ok   ${fn.name} (${Date.now() - start} ms)`
        + (note ? `: ${note}` : ''));
    } catch (e) {
      failed++;
      console.log(`FAIL ${fn.name}: ${e instanceof Failure ? e.message
        : e.stack}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}
