/*
 * seed.mjs - a month of replies, registered and opened through the real
 * API, with figures the dashboard test can predict exactly:
 *
 * - yahoo.com opens 30 of 40 replies in the 4 weeks before the last 7
 *   days and 4 of 40 in the last 7 days: the one flagged drop.
 * - gmail.com and outlook.com hold steady; gmx.de and the two small
 *   company domains have too few replies to judge.
 * - Ada Brandt (ops@acme-corp.example, value 9000) and Kai Berg
 *   (kai@berg-bau.example, 7000) never opened anything: the top of the
 *   call list.
 */

const DAY_MS = 86400000;
const OPENER_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) '
  + 'AppleWebKit/537.36 (KHTML, like Gecko) Thunderbird/128.0';

const FIRST = ['Anna', 'Ben', 'Clara', 'David', 'Elif', 'Felix', 'Greta',
  'Hugo', 'Ida', 'Jonas', 'Lena', 'Mats', 'Nora', 'Oskar', 'Paula'];
const LAST = ['Schmidt', 'Novak', 'Rossi', 'Weber', 'Jensen', 'Costa',
  'Fischer', 'Meyer', 'Dubois', 'Kowalski', 'Haas', 'Lund'];
const VALUES = [120, 250, 400, 600, 900, 1500, 2200, 3100];

/*
 * Each domain: replies in the current window (the last 7 days) and in the
 * baseline (the 28 days before), and how many of each are opened.
 */
export const DOMAINS = [
  {domain: 'yahoo.com', customers: 12, current: [40, 4], baseline: [40, 30]},
  {domain: 'gmail.com', customers: 15, current: [40, 24], baseline: [60, 36]},
  {domain: 'outlook.com', customers: 10, current: [35, 17],
   baseline: [50, 25]},
  {domain: 'gmx.de', customers: 4, current: [5, 3], baseline: [8, 5]},
  {domain: 'tiny-shop.example', customers: 2, current: [2, 0],
   baseline: [0, 0]},
];

/* The two customers the call test logs calls for. */
export const VIP = [
  {recipient: 'ops@acme-corp.example', name: 'Ada Brandt',
   phone: '+49 30 5550100', value: 9000, daysAgo: [2.5, 4.5]},
  {recipient: 'kai@berg-bau.example', name: 'Kai Berg',
   phone: '+49 40 5550111', value: 7000, daysAgo: [3.5]},
];

export const EXPECTED_ALERT =
  'yahoo.com: 10% opened this week, 75% before; 40 replies';
export const THIN_DOMAINS = ['gmx.de', 'acme-corp.example',
  'berg-bau.example', 'tiny-shop.example'];

/* A fixed pseudo-random sequence (mulberry32): the same seed every run. */
function random(seedValue) {
  let a = seedValue;

  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = random(20261203);

/* Exactly k of n indices, chosen at random: which replies get opened. */
function pick(k, n) {
  const order = Array.from({length: n}, (_, i) => i);

  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return new Set(order.slice(0, k));
}

/* n send times spread over [fromDays, toDays) days before now. */
function sendTimes(now, n, fromDays, toDays) {
  const span = (toDays - fromDays) * DAY_MS;
  return Array.from({length: n},
    (_, i) => now - fromDays * DAY_MS - Math.floor(((i + 0.5) * span) / n));
}

function customer(d, i) {
  const k = [...d.domain].reduce((n, c) => n + c.charCodeAt(0), 0) + i;
  const first = FIRST[k % FIRST.length];
  const last = LAST[(k * 7) % LAST.length];

  return {
    recipient: `${first}.${last}${i}@${d.domain}`.toLowerCase(),
    customer: {name: `${first} ${last}`, value: VALUES[k % VALUES.length]},
  };
}

let ticketSeq = 5000;

async function send(beacon, who, sentAt, opened) {
  const reg = await beacon.register({
    ticket_id: String(ticketSeq++), recipient: who.recipient,
    sent_at: new Date(sentAt).toISOString(), customer: who.customer,
  });
  if (opened) {
    await beacon.openPixel(reg.pixel_url, OPENER_UA);
  }
}

async function seedCohort(beacon, d, times, nOpened) {
  const opened = pick(nOpened, times.length);

  for (let i = 0; i < times.length; i++) {
    const who = customer(d, i % d.customers);
    await send(beacon, who, times[i], opened.has(i));
  }
}

export async function seed(beacon, now = Date.now()) {
  for (const d of DOMAINS) {
    await seedCohort(beacon, d, sendTimes(now, d.baseline[0], 8, 29),
                     d.baseline[1]);
    await seedCohort(beacon, d, sendTimes(now, d.current[0], 1.1, 6.9),
                     d.current[1]);
  }
  for (const v of VIP) {
    const who = {recipient: v.recipient,
                 customer: {name: v.name, phone: v.phone, value: v.value}};
    for (const days of v.daysAgo) {
      await send(beacon, who, now - days * DAY_MS, false);
    }
  }
}
