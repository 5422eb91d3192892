/*
 * sparkline.js - a tiny inline SVG line of open rates, one point per
 * bucket.  Buckets without messages (open_rate null) break the line.
 */

import {h, svg, formatRate} from './dom.js';

const WIDTH = 96;
const HEIGHT = 24;
const PAD = 2;

/* points: the "points" of /api/v1/domains/trend. */
export function sparkline(points) {
  const known = points.filter((p) => p.open_rate !== null);

  if (known.length === 0) {
    return h('span', {class: 'muted'}, 'no data');
  }
  const first = known[0];
  const last = known[known.length - 1];
  const label = `Open rate from ${first.date} (${formatRate(first.open_rate)})`
    + ` to ${last.date} (${formatRate(last.open_rate)})`;

  return svg('svg', {
    class: 'spark', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH,
    height: HEIGHT, role: 'img', 'aria-label': label,
  }, svg('title', {}, label), svg('path', {d: linePath(points)}));
}

/*
 * The path: "M x y h0" starts every run (a dot, with round caps, when the
 * run is a single point), "L x y" continues it.
 */
function linePath(points) {
  const step = points.length > 1 ? (WIDTH - 2 * PAD) / (points.length - 1)
    : 0;
  let d = '';
  let drawing = false;

  points.forEach((p, i) => {
    if (p.open_rate === null) {
      drawing = false;
      return;
    }
    const x = (PAD + i * step).toFixed(1);
    const y = (HEIGHT - PAD - p.open_rate * (HEIGHT - 2 * PAD)).toFixed(1);
    d += drawing ? `L${x} ${y}` : `M${x} ${y}h0`;
    drawing = true;
  });
  return d;
}
