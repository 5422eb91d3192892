/*
 * trend.js - the chart of one domain's open rate over time
 * (/api/v1/domains/trend) drawn with uPlot, with the same numbers in a
 * table below it.  uPlot is loaded on first use from static/vendor/,
 * where the build copies it from npm; without it the table still works.
 */

import {h, formatCount, formatRate, showError} from './dom.js';
import {ApiError} from './api.js';

const CHART_HEIGHT = 260;
const RATE_COLOUR = '#1f5fbf';
const SENT_COLOUR = 'rgba(110, 118, 129, 0.35)';

let uPlotLoading = null;

function loadUPlot() {
  if (uPlotLoading === null) {
    uPlotLoading = import('./vendor/uPlot.esm.js').then((m) => m.default);
  }
  return uPlotLoading;
}

/* The browser's own IANA zone, "UTC" if it has none. */
export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export class TrendChart {
  /*
   * els: {card, form, domain, bucket, tz, zones, summary, error, chart,
   * table}.  run(fn) calls fn(api) with the session's API and handles its
   * failures the way every section does.
   */
  constructor(els, run) {
    this.els = els;
    this.run = run;
    this.plot = null;
    this.plotKey = '';
    els.tz.value = browserTimeZone();
    fillZones(els.zones);
    els.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.run((api) => this.refresh(api), els.error);
    });
    new ResizeObserver(() => this.fitWidth()).observe(els.chart);
  }

  /* Offers the domains in the select, keeping the current choice; until
   * there is one, the first domain is shown. */
  setDomains(domains) {
    const select = this.els.domain;
    const chosen = select.value || (domains.length > 0 ? domains[0] : '');
    const options = domains.map((d) => h('option', {value: d}, d));

    select.replaceChildren(h('option', {value: ''}, 'Choose a domain'),
                           ...options);
    if (chosen !== '' && !domains.includes(chosen)) {
      select.append(h('option', {value: chosen}, chosen));
    }
    select.value = chosen;
  }

  /* Shows domain's chart now and brings the chart into view. */
  choose(domain) {
    const select = this.els.domain;

    if (![...select.options].some((o) => o.value === domain)) {
      select.append(h('option', {value: domain}, domain));
    }
    select.value = domain;
    this.els.card.scrollIntoView({behavior: 'smooth', block: 'start'});
    this.run((api) => this.refresh(api), this.els.error);
  }

  async refresh(api) {
    const domain = this.els.domain.value;
    const bucket = this.els.bucket.value;
    const tz = this.els.tz.value.trim() || browserTimeZone();

    if (domain === '') {
      this.els.summary.textContent = 'Choose a domain to see its chart.';
      return;
    }
    let body;

    try {
      body = await api.getJson('/api/v1/domains/trend',
                               {domain, bucket, tz});
    } catch (e) {
      if (e instanceof ApiError && e.status !== 401) {
        this.clear();     /* no stale chart under the error */
      }
      throw e;
    }
    this.els.summary.textContent = summaryText(body);
    this.fillTable(body.points);
    await this.draw(body);
  }

  fillTable(points) {
    const rows = points.map((p) => h('tr', {},
      h('td', {}, h('time', {datetime: p.start}, p.date)),
      h('td', {class: 'num'}, formatCount(p.sent)),
      h('td', {class: 'num'}, formatCount(p.reached)),
      h('td', {class: 'num'}, formatCount(p.opened)),
      h('td', {class: 'num'}, formatRate(p.open_rate))));

    this.els.table.tBodies[0].replaceChildren(...rows);
  }

  async draw(body) {
    let uPlot;

    try {
      uPlot = await loadUPlot();
    } catch (e) {
      showError(this.els.error, 'The chart library is missing from '
        + 'static/vendor/ (the build copies it from npm); the numbers are '
        + 'in the table below.');
      return;
    }
    const key = `${body.domain}|${body.bucket}|${body.tz}`;
    const data = chartData(body.points);

    if (this.plot !== null && this.plotKey === key) {
      this.plot.setData(data);
      return;
    }
    this.destroy();
    this.plotKey = key;
    this.plot = new uPlot(chartOptions(uPlot, body, this.width()), data,
                          this.els.chart);
  }

  clear() {
    this.destroy();
    this.els.summary.textContent = '';
    this.els.table.tBodies[0].replaceChildren();
  }

  destroy() {
    if (this.plot !== null) {
      this.plot.destroy();
      this.plot = null;
    }
  }

  width() {
    return Math.max(280, this.els.chart.clientWidth);
  }

  fitWidth() {
    if (this.plot !== null && this.plot.width !== this.width()) {
      this.plot.setSize({width: this.width(), height: CHART_HEIGHT});
    }
  }
}

/* uPlot's columns: bucket starts (s), sent, open rate in percent. */
function chartData(points) {
  return [
    points.map((p) => Date.parse(p.start) / 1000),
    points.map((p) => p.sent),
    points.map((p) => (p.open_rate === null ? null : p.open_rate * 100)),
  ];
}

function chartOptions(uPlot, body, width) {
  const pct = (v) => (v === null ? '–' : `${v.toFixed(1)}%`);

  return {
    width,
    height: CHART_HEIGHT,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), body.tz),
    scales: {
      x: {time: true},
      rate: {range: [0, 100]},
      sent: {range: (u, min, max) => [0, Math.max(1, max) * 1.1]},
    },
    series: [
      {label: body.bucket === 'week' ? 'Week of' : 'Day'},
      {
        label: 'Sent', scale: 'sent', fill: SENT_COLOUR, stroke: SENT_COLOUR,
        paths: uPlot.paths.bars({size: [0.7, 48]}),
        points: {show: false},
        value: (u, v) => formatCount(v),
      },
      {
        label: 'Open rate', scale: 'rate', stroke: RATE_COLOUR, width: 2,
        points: {show: true, size: 5}, spanGaps: false,
        value: (u, v) => pct(v),
      },
    ],
    axes: [
      {},
      {scale: 'rate', values: (u, ticks) => ticks.map((t) => `${t}%`)},
      {scale: 'sent', side: 1, grid: {show: false}, label: 'sent'},
    ],
  };
}

/* "yahoo.com by day in Europe/Berlin from 2026-11-04 to 2026-12-03:
 * 80 sent, 34 opened (42.5%)." */
function summaryText(body) {
  const pts = body.points;
  const sent = pts.reduce((n, p) => n + p.sent, 0);
  const opened = pts.reduce((n, p) => n + p.opened, 0);
  const rate = sent > 0 ? formatRate(opened / sent) : 'no rate';
  const span = pts.length > 0
    ? ` from ${pts[0].date} to ${pts[pts.length - 1].date}` : '';

  return `${body.domain} by ${body.bucket} in ${body.tz}${span}: `
    + `${formatCount(sent)} sent, ${formatCount(opened)} opened (${rate}).`;
}

function fillZones(datalist) {
  const zones = typeof Intl.supportedValuesOf === 'function'
    ? Intl.supportedValuesOf('timeZone') : [];

  datalist.replaceChildren(...zones.map((z) => h('option', {value: z})));
}
