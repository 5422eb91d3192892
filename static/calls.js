/*
 * calls.js - the call list (/api/v1/unopened): who to phone, a CSV of the
 * same rows, and a dialog per row that logs a call (POST /api/v1/calls)
 * and updates the row in place.
 */

import {h, formatCount, formatDateTime, formatAgo, timeElement,
        showError} from './dom.js';

/* The largest list the API gives in one go; the CSV asks for all of it. */
const CSV_ROWS_MAX = 100000;

const REASONS = {
  never_fetched: 'Never fetched',
  machine_only: 'Reached, never opened',
  opened_nothing_recent: 'Stopped opening',
};

const OUTCOMES = {
  reached: 'Reached',
  voicemail: 'Voicemail',
  no_answer: 'No answer',
  wrong_number: 'Wrong number',
};

export class CallList {
  /*
   * els: {form, minValue, olderThan, csv, summary, error, table, dialog,
   * dialogForm, who, note, dialogError, cancel}.  run(fn, errorEl) calls
   * fn(api) with the session's API and shows a failure in errorEl.
   */
  constructor(els, run) {
    this.els = els;
    this.run = run;
    this.customers = [];
    this.total = 0;
    this.calling = null;        /* the row the dialog is logging */
    this.wire();
  }

  wire() {
    const els = this.els;

    els.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.run((api) => this.refresh(api), els.error);
    });
    els.csv.addEventListener('click', () => {
      this.run((api) => this.download(api), els.error);
    });
    els.dialogForm.addEventListener('submit', (ev) => {
      const outcome = new FormData(els.dialogForm).get('outcome');

      ev.preventDefault();
      if (!outcome) {
        showError(els.dialogError, 'Choose what happened on the call.');
        return;
      }
      this.run((api) => this.save(api, outcome), els.dialogError);
    });
    els.cancel.addEventListener('click', () => els.dialog.close());
  }

  params() {
    return {
      min_value: this.els.minValue.value,
      older_than: this.els.olderThan.value,
    };
  }

  async refresh(api) {
    const body = await api.getJson('/api/v1/unopened', this.params());

    this.customers = body.customers;
    this.total = body.total ?? body.customers.length;
    this.render();
  }

  render() {
    const n = this.customers.length;

    this.els.summary.textContent = n === this.total
      ? `${formatCount(n)} to call.`
      : `Showing ${formatCount(n)} of ${formatCount(this.total)} to call.`;
    this.els.table.tBodies[0].replaceChildren(
      ...this.customers.map((c) => this.rowFor(c)));
  }

  rowFor(c) {
    const log = h('button', {type: 'button'}, 'Log call');

    log.addEventListener('click', () => this.openDialog(c));
    return h('tr', {'data-recipient': c.recipient},
      h('td', {class: 'num'}, formatCount(c.value)),
      h('td', {},
        h('span', {class: 'name'}, c.name || c.recipient),
        c.name ? h('span', {class: 'sub'}, c.recipient) : null),
      h('td', {}, c.phone ? h('a', {href: `tel:${c.phone}`}, c.phone) : '–'),
      h('td', {}, REASONS[c.reason] || c.reason),
      h('td', {},
        timeElement(c.oldest_unopened_at),
        h('span', {class: 'sub'}, formatAgo(c.oldest_unopened_at))),
      h('td', {}, c.ticket_ids.join(', ')),
      h('td', {class: 'last-call'}, lastCallCell(c.last_call)),
      h('td', {}, log));
  }

  openDialog(customer) {
    const els = this.els;
    const who = [customer.name, customer.recipient, customer.phone]
      .filter(Boolean).join(' · ');

    this.calling = customer;
    els.dialogForm.reset();
    showError(els.dialogError, '');
    els.who.textContent = who;
    els.dialog.showModal();
  }

  async save(api, outcome) {
    const note = this.els.note.value.trim();
    const customer = this.calling;
    const call = await api.postJson('/api/v1/calls', {
      recipient: customer.recipient, outcome, ...(note ? {note} : {}),
    });

    this.els.dialog.close();
    this.applyCall(customer.recipient, customer.name, call);
  }

  /*
   * Updates the list with a logged call: a customer the call hides
   * leaves it, anyone else shows the call as their last one.  Rows are
   * matched by recipient: a poll may have replaced them meanwhile.
   */
  applyCall(recipient, name, call) {
    const row = this.customers.find((c) => c.recipient === recipient);

    if (call.hidden_until) {
      this.customers = this.customers.filter((c) => c !== row);
      this.total = Math.max(0, this.total - (row ? 1 : 0));
      this.render();
      this.els.summary.textContent += ` ${name || recipient}: `
        + `${OUTCOMES[call.outcome]}, off the list until `
        + `${formatDateTime(call.hidden_until)}.`;
      return;
    }
    if (row) {
      row.last_call = {at: call.at, outcome: call.outcome,
                       note: call.note ?? null};
    }
    this.render();
  }

  async download(api) {
    const params = {...this.params(), format: 'csv', limit: CSV_ROWS_MAX};
    const blob = await api.getBlob('/api/v1/unopened', params);
    const day = new Date().toISOString().slice(0, 10);

    saveBlob(blob, `beacon-call-list-${day}.csv`);
  }
}

function lastCallCell(call) {
  if (!call) {
    return '–';
  }
  return [
    h('span', {class: `outcome outcome-${call.outcome}`},
      OUTCOMES[call.outcome] || call.outcome),
    ' ',
    timeElement(call.at),
    call.note ? h('span', {class: 'sub note'}, call.note) : null,
  ];
}

/* Saves blob as a file.  A plain link cannot send the Bearer header, so
 * the page fetches the file itself and hands it over as an object URL. */
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', {href: url, download: filename, hidden: true});

  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
