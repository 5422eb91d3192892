/*
 * alerts.js - the strip on top: domains whose open rate fell, in the
 * server's own words (/api/v1/alerts "message"), and the domains with too
 * few messages to judge.
 */

import {h} from './dom.js';

const THIN_NAMES_MAX = 8;

export class AlertStrip {
  /* els: {section, list, summary, thin}; onChoose(domain) opens a chart. */
  constructor(els, onChoose) {
    this.els = els;
    this.onChoose = onChoose;
  }

  async refresh(api) {
    this.render(await api.getJson('/api/v1/alerts'));
  }

  render(body) {
    const {section, list, summary, thin} = this.els;
    const flagged = body.alerts;

    section.classList.toggle('alerting', flagged.length > 0);
    list.replaceChildren(...flagged.map((a) => this.itemFor(a)));
    summary.textContent = summaryText(flagged.length, body.checked);
    thin.textContent = thinText(body.not_enough_data, body.params);
  }

  itemFor(alert) {
    const show = h('button', {type: 'button', class: 'link'}, 'Show chart',
                   h('span', {class: 'visually-hidden'},
                     ` of ${alert.domain}`));

    show.addEventListener('click', () => this.onChoose(alert.domain));
    return h('li', {'data-domain': alert.domain},
      h('span', {class: 'alert-message'}, alert.message), ' ', show);
  }
}

function summaryText(nFlagged, checked) {
  const domains = checked === 1 ? '1 domain' : `${checked} domains`;

  if (nFlagged === 0) {
    return `No drop in open rate among the ${domains} with enough data.`;
  }
  return `${nFlagged} of ${domains} with enough data dropped.`;
}

/* "Not enough data to judge: a.example, b.example and 3 more." */
function thinText(thin, params) {
  if (thin.length === 0) {
    return '';
  }
  const names = thin.slice(0, THIN_NAMES_MAX).map((d) => d.domain);
  const more = thin.length - names.length;
  const list = more > 0 ? `${names.join(', ')} and ${more} more`
    : names.join(', ');
  const min = params && params.min_sent ? ` (fewer than ${params.min_sent}`
    + ' replies in a window)' : '';

  return `Not enough data to judge${min}: ${list}.`;
}
