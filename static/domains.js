/*
 * domains.js - the per-domain table: /api/v1/domains rows, sortable by
 * any column header, with a sparkline of each domain's daily open rate
 * (/api/v1/domains/trend).
 */

import {h, formatCount, formatRate} from './dom.js';
import {ApiError} from './api.js';
import {sparkline} from './sparkline.js';

/*
 * Limitation: a sparkline costs one trend request per domain and poll, so
 * only the largest domains get one.
 */
const SPARK_DOMAINS_MAX = 25;

const NUMERIC = new Set(['sent', 'reached', 'opened', 'open_rate']);

export class DomainsTable {
  /* onChoose(domain) is called when a domain's name is clicked. */
  constructor(table, onChoose) {
    this.table = table;
    this.onChoose = onChoose;
    this.rows = [];
    this.sparks = new Map();    /* domain -> trend points, or null */
    this.sort = {key: 'sent', descending: true};
    for (const th of table.tHead.querySelectorAll('th[data-sort]')) {
      th.querySelector('button').addEventListener(
        'click', () => this.sortBy(th.dataset.sort));
    }
  }

  /* The domains, in the table's order. */
  domains() {
    return this.sorted().map((r) => r.domain);
  }

  async load(api) {
    const body = await api.getJson('/api/v1/domains');

    this.rows = body.domains;
    this.render();
  }

  /* Fetches the sparklines of the largest domains, drawing each as it
   * comes.  A failed one is left as a dash: the table stays useful. */
  async refreshSparks(api, tz) {
    const biggest = [...this.rows].sort((a, b) => b.sent - a.sent)
      .slice(0, SPARK_DOMAINS_MAX);

    await Promise.all(biggest.map(async (row) => {
      try {
        const body = await api.getJson('/api/v1/domains/trend', {
          domain: row.domain, bucket: 'day', tz,
        });
        this.sparks.set(row.domain, body.points);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status === 401) {
          throw e;
        }
        this.sparks.set(row.domain, null);
      }
      this.drawSpark(row.domain);
    }));
  }

  sortBy(key) {
    if (this.sort.key === key) {
      this.sort.descending = !this.sort.descending;
    } else {
      /* Numbers read best largest first, names from A. */
      this.sort = {key, descending: NUMERIC.has(key)};
    }
    this.render();
  }

  sorted() {
    const {key, descending} = this.sort;
    const sign = descending ? -1 : 1;

    return [...this.rows].sort((a, b) => {
      const c = compareValues(a[key], b[key]);
      return c !== 0 ? sign * c : a.domain.localeCompare(b.domain);
    });
  }

  render() {
    const tbody = this.table.tBodies[0];

    for (const th of this.table.tHead.querySelectorAll('th[data-sort]')) {
      const active = th.dataset.sort === this.sort.key;
      const dir = this.sort.descending ? 'descending' : 'ascending';
      th.setAttribute('aria-sort', active ? dir : 'none');
    }
    if (this.rows.length === 0) {
      tbody.replaceChildren(h('tr', {},
        h('td', {colspan: 6, class: 'muted'},
          'No messages were sent in the last 30 days.')));
      return;
    }
    tbody.replaceChildren(...this.sorted().map((r) => this.rowFor(r)));
  }

  rowFor(r) {
    const name = h('button', {type: 'button', class: 'link',
                              title: `Chart ${r.domain}`}, r.domain);

    name.addEventListener('click', () => this.onChoose(r.domain));
    return h('tr', {'data-domain': r.domain},
      h('th', {scope: 'row'}, name),
      h('td', {class: 'num'}, formatCount(r.sent)),
      h('td', {class: 'num'}, formatCount(r.reached)),
      h('td', {class: 'num'}, formatCount(r.opened)),
      h('td', {class: 'num'}, formatRate(r.open_rate)),
      h('td', {class: 'spark-cell'}, this.sparkFor(r.domain)));
  }

  sparkFor(domain) {
    const points = this.sparks.get(domain);

    if (points === undefined) {
      return '';
    }
    return points === null ? h('span', {class: 'muted'}, '–')
      : sparkline(points);
  }

  drawSpark(domain) {
    for (const tr of this.table.tBodies[0].rows) {
      if (tr.dataset.domain === domain) {
        tr.cells[5].replaceChildren(this.sparkFor(domain));
      }
    }
  }
}

/* Ascending order; null (no rate) sorts below every number. */
function compareValues(a, b) {
  if (a === b) {
    return 0;
  }
  if (a === null || a === undefined) {
    return -1;
  }
  if (b === null || b === undefined) {
    return 1;
  }
  return typeof a === 'string' ? a.localeCompare(b) : a - b;
}
