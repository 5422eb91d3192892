/*
 * dom.js - small DOM and formatting helpers.  Text always goes in through
 * textContent (h() never parses HTML), so data from the API can never
 * become markup.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/*
 * h('td', {class: 'num', title: 'x'}, 'text', child, ...) builds one
 * element.  Attributes are set with setAttribute; false/null/undefined
 * ones are left out.  Children are nodes or strings (as text).
 */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/* Like h() for SVG elements. */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

export function byId(id) {
  const el = document.getElementById(id);
  if (el === null) {
    throw new Error(`dashboard: no element #${id}`);
  }
  return el;
}

/* Shows msg in an error element, or clears and hides it when msg is ''. */
export function showError(el, msg) {
  el.textContent = msg;
  el.hidden = msg === '';
}

const numberFormat = new Intl.NumberFormat();

export function formatCount(n) {
  return n === null || n === undefined ? '–' : numberFormat.format(n);
}

/* A rate in [0,1] as a percentage with one decimal, or '–' for null. */
export function formatRate(rate) {
  if (rate === null || rate === undefined) {
    return '–';
  }
  return `${(rate * 100).toFixed(1)}%`;
}

const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: 'medium', timeStyle: 'short',
});
const timeFormat = new Intl.DateTimeFormat(undefined, {timeStyle: 'medium'});
const relativeFormat = new Intl.RelativeTimeFormat(undefined, {
  numeric: 'auto',
});

export function formatDateTime(iso) {
  return iso ? dateTimeFormat.format(new Date(iso)) : '–';
}

export function formatTime(date) {
  return timeFormat.format(date);
}

/* "3 days ago", "yesterday", "in 2 hours": the largest unit that fits. */
export function formatAgo(iso, now = Date.now()) {
  const secs = (new Date(iso).getTime() - now) / 1000;
  const units = [['day', 86400], ['hour', 3600], ['minute', 60]];

  for (const [unit, size] of units) {
    if (Math.abs(secs) >= size) {
      return relativeFormat.format(Math.trunc(secs / size), unit);
    }
  }
  return relativeFormat.format(0, 'minute');
}

/* A <time> element: the formatted text, the exact instant in datetime. */
export function timeElement(iso, text = formatDateTime(iso)) {
  return h('time', {datetime: iso}, text);
}
