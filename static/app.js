/*
 * app.js - the dashboard: asks for the API key once per tab, then polls
 * every section (alerts, domains, chart, call list) every `?poll=N`
 * seconds (30 by default), says when it last refreshed, and shows a
 * banner while the server cannot be reached.
 */

import {byId, showError, formatTime, timeElement} from './dom.js';
import {Api, ApiError, Unreachable} from './api.js';
import {AlertStrip} from './alerts.js';
import {DomainsTable} from './domains.js';
import {TrendChart, browserTimeZone} from './trend.js';
import {CallList} from './calls.js';

const KEY_STORAGE = 'beacon.apiKey';
const POLL_DEFAULT_S = 30;
const POLL_MIN_S = 2;
const POLL_MAX_S = 3600;

/* The poll interval from the page's query string, clamped. */
export function pollSeconds(search) {
  const raw = new URLSearchParams(search).get('poll');
  const s = Number(raw);

  if (raw === null || raw === '' || !Number.isFinite(s) || s <= 0) {
    return POLL_DEFAULT_S;
  }
  return Math.min(POLL_MAX_S, Math.max(POLL_MIN_S, s));
}

/* How a section's request ended. */
const OK = 'ok';
const FAILED = 'failed';
const UNREACHABLE = 'unreachable';
const UNAUTHORIZED = 'unauthorized';

class Dashboard {
  constructor() {
    const run = (fn, errorEl) => this.run(fn, errorEl);
    const chooseDomain = (domain) => this.chart.choose(domain);

    this.api = null;
    this.timer = null;
    this.refreshing = null;
    this.pollS = pollSeconds(window.location.search);
    this.lastRefresh = null;
    this.offlineSince = null;
    this.alerts = new AlertStrip({
      section: byId('alerts'), list: byId('alert-list'),
      summary: byId('alert-summary'), thin: byId('alert-thin'),
    }, chooseDomain);
    this.domains = new DomainsTable(byId('domains'), chooseDomain);
    this.chart = new TrendChart({
      card: byId('chart-card'), form: byId('chart-form'),
      domain: byId('chart-domain'), bucket: byId('chart-bucket'),
      tz: byId('chart-tz'), zones: byId('time-zones'),
      summary: byId('chart-summary'), error: byId('chart-error'),
      chart: byId('chart'), table: byId('chart-data').querySelector('table'),
    }, run);
    this.calls = new CallList({
      form: byId('calls-form'), minValue: byId('calls-min-value'),
      olderThan: byId('calls-older-than'), csv: byId('calls-csv'),
      summary: byId('calls-summary'), error: byId('calls-error'),
      table: byId('calls'), dialog: byId('call-dialog'),
      dialogForm: byId('call-form'), who: byId('call-who'),
      note: byId('call-note'), dialogError: byId('call-error'),
      cancel: byId('call-cancel'),
    }, run);
    this.wire();
  }

  wire() {
    byId('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.login(byId('api-key').value.trim());
    });
    byId('forget-key').addEventListener('click', () => this.forget());
    byId('refresh-now').addEventListener('click', () => this.refresh());
  }

  start() {
    const key = sessionStorage.getItem(KEY_STORAGE);

    if (key) {
      this.open(new Api(key));
    } else {
      this.showLogin('');
    }
  }

  /* Tries the key on a cheap route before keeping it. */
  async login(key) {
    const api = new Api(key);
    const error = byId('login-error');
    const submit = byId('login-form').querySelector('button');

    submit.disabled = true;
    try {
      await api.getJson('/api/v1/stats');
    } catch (e) {
      showError(error, loginFailure(e));
      byId('api-key').select();
      return;
    } finally {
      submit.disabled = false;
    }
    sessionStorage.setItem(KEY_STORAGE, key);
    byId('api-key').value = '';
    showError(error, '');
    this.open(api);
  }

  open(api) {
    this.api = api;
    byId('login').hidden = true;
    byId('dashboard').hidden = false;
    byId('session-actions').hidden = false;
    this.refresh();
  }

  showLogin(message) {
    clearTimeout(this.timer);
    this.api = null;
    byId('dashboard').hidden = true;
    byId('session-actions').hidden = true;
    byId('refresh-status').textContent = '';
    this.setOffline(false);
    byId('login').hidden = false;
    showError(byId('login-error'), message);
    byId('api-key').focus();
  }

  forget() {
    sessionStorage.removeItem(KEY_STORAGE);
    this.showLogin('');
  }

  /* One poll: every section at once; one refresh at a time. */
  refresh() {
    if (this.refreshing === null) {
      this.refreshing = this.refreshAll().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async refreshAll() {
    clearTimeout(this.timer);
    const outcomes = await Promise.all([
      this.attempt((api) => this.alerts.refresh(api), byId('alerts-error')),
      this.refreshDomainsAndChart(),
      this.attempt((api) => this.calls.refresh(api), byId('calls-error')),
    ]);

    if (this.settle(outcomes.flat()) && this.api !== null) {
      this.lastRefresh = new Date();
      this.showRefreshed();
    }
    if (this.api !== null) {
      this.timer = setTimeout(() => this.refresh(), this.pollS * 1000);
    }
  }

  /* The domains first: the chart offers them (and shows the largest
   * until one is chosen); then the chart and the sparklines at once. */
  async refreshDomainsAndChart() {
    const error = byId('domains-error');
    const loaded = await this.attempt(async (api) => {
      await this.domains.load(api);
      this.chart.setDomains(this.domains.domains());
    }, error);

    if (loaded !== OK) {
      return [loaded];
    }
    return [loaded, ...await Promise.all([
      this.attempt((api) => this.chart.refresh(api), byId('chart-error')),
      this.attempt((api) => this.domains.refreshSparks(api,
                                                       browserTimeZone()),
                   error),
    ])];
  }

  /* A user's action (log a call, download, show a chart). */
  async run(fn, errorEl) {
    this.settle([await this.attempt(fn, errorEl, true)]);
  }

  /*
   * Runs fn(api); shows an API error in errorEl and returns how it went.
   * loud also puts "cannot reach" in errorEl, for actions taken in a
   * dialog that hides the banner.
   */
  async attempt(fn, errorEl, loud = false) {
    if (this.api === null) {
      return UNAUTHORIZED;
    }
    try {
      await fn(this.api);
      showError(errorEl, '');
      return OK;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        return UNAUTHORIZED;
      }
      if (e instanceof Unreachable) {
        showError(errorEl, loud ? 'Cannot reach the Beacon server.' : '');
        return UNREACHABLE;
      }
      if (!(e instanceof ApiError)) {
        console.error(e);
      }
      showError(errorEl, e instanceof ApiError ? e.message
        : `Unexpected error: ${e.message}`);
      return FAILED;
    }
  }

  /* Acts on the outcomes; true when the server answered every request. */
  settle(outcomes) {
    if (outcomes.includes(UNAUTHORIZED)) {
      sessionStorage.removeItem(KEY_STORAGE);
      this.showLogin('The server no longer accepts this API key (401). '
        + 'Enter the current one.');
      return false;
    }
    this.setOffline(outcomes.includes(UNREACHABLE));
    return !outcomes.includes(UNREACHABLE);
  }

  setOffline(offline) {
    const banner = byId('offline-banner');

    if (!offline) {
      this.offlineSince = null;
      banner.hidden = true;
      return;
    }
    this.offlineSince = this.offlineSince || new Date();
    const shown = this.lastRefresh
      ? ` The figures below are from ${formatTime(this.lastRefresh)}.` : '';
    banner.textContent = 'Cannot reach the Beacon server since '
      + `${formatTime(this.offlineSince)}; retrying every ${this.pollS} s.`
      + shown;
    banner.hidden = false;
  }

  showRefreshed() {
    const status = byId('refresh-status');
    const at = this.lastRefresh;

    status.replaceChildren('Updated ',
                           timeElement(at.toISOString(), formatTime(at)),
                           ` · every ${this.pollS} s`);
  }
}

function loginFailure(e) {
  if (e instanceof ApiError && e.status === 401) {
    return 'The server refused this key (401). Use the content of the '
      + 'API key file.';
  }
  if (e instanceof Unreachable) {
    return 'Cannot reach the Beacon server; try again when it is up.';
  }
  return e instanceof ApiError ? e.message : `Unexpected error: ${e.message}`;
}

new Dashboard().start();
