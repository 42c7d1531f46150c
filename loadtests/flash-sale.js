// k6 suite `flash-sale`: many buyers race for few units of one product; nothing may be oversold.
//
//   cargo xtask load flash-sale                    # VUS=200 UNITS=50 by default
//   VUS=50 UNITS=10 cargo xtask load flash-sale
//
// setup(): the admin (ADMIN_EMAIL / ADMIN_PASSWORD, passed by xtask) creates one product with UNITS
// units in REGION (default `local`), and VUS buyers are registered, signed in and given an address
// (Argon2-bound: ~60 registrations/s on 2 cores, so setup takes VUS/30 s or so). Then every VU buys
// one unit at once. Answers must be 201 or 409; at most UNITS orders may be confirmed (threshold),
// exactly UNITS when VUS >= UNITS; teardown() checks the product's stock shows available 0.
import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import {
  BASE_URL,
  TREND_STATS,
  addAndCheckout,
  createStockedProduct,
  json,
  login,
  prepareBuyers,
  summarize,
} from './lib/common.js';

const VUS = Number(__ENV.VUS || 200);
const UNITS = Number(__ENV.UNITS || 50);

const checkoutMs = new Trend('checkout_duration', true);
const confirmed = new Counter('orders_confirmed');
const soldOut = new Counter('orders_sold_out');
const unexpected = new Counter('orders_unexpected_status');

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 409));

const confirmedThresholds = [`count<=${UNITS}`];
if (VUS >= UNITS) {
  confirmedThresholds.push(`count>=${UNITS}`);
}

export const options = {
  setupTimeout: '10m',
  scenarios: {
    rush: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '2m' },
  },
  thresholds: {
    orders_confirmed: confirmedThresholds, // more than UNITS: oversold
    orders_unexpected_status: ['count==0'],
    checks: ['rate==1'],
    checkout_duration: ['p(99)<1500'],
  },
  summaryTrendStats: TREND_STATS,
};

export function setup() {
  const email = __ENV.ADMIN_EMAIL;
  const password = __ENV.ADMIN_PASSWORD;
  if (!email || !password) fail('ADMIN_EMAIL and ADMIN_PASSWORD are required (cargo xtask load sets them)');
  const admin = login(email, password);
  const productId = createStockedProduct(admin.token, `Flash sale ${new Date().toISOString()}`, UNITS);
  const buyers = prepareBuyers(VUS, 'flash');
  console.log(`flash-sale: product ${productId} with ${UNITS} units, ${buyers.length} buyers ready`);
  return { productId, buyers, adminToken: admin.token };
}

export default function (data) {
  const buyer = data.buyers[exec.vu.idInTest - 1];
  const order = addAndCheckout(buyer, data.productId, 1);
  checkoutMs.add(order.timings.duration);
  const ok = check(order, { 'checkout: 201 or 409': (r) => r.status === 201 || r.status === 409 });
  if (order.status === 201) {
    confirmed.add(1);
  } else if (order.status === 409) {
    soldOut.add(1);
  } else if (!ok) {
    unexpected.add(1);
    console.warn(`checkout answered ${order.status}: ${order.body}`);
  }
}

export function teardown(data) {
  const res = http.get(`${BASE_URL}/inventory/${data.productId}`, {
    headers: json(data.adminToken),
    tags: { name: 'get stock' },
  });
  const stock = res.status === 200 ? res.json() : {};
  const expectZero = VUS >= UNITS;
  check(res, {
    'teardown: stock readable': (r) => r.status === 200,
    'teardown: available 0 (or UNITS - VUS when VUS < UNITS)': () =>
      stock.available === (expectZero ? 0 : UNITS - VUS),
    'teardown: nothing left reserved': () => stock.reserved === 0,
  });
  console.log(`flash-sale: product ${data.productId} stock after the rush: ${JSON.stringify(stock)}`);
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  const sold = count('orders_confirmed');
  const verdict = sold > UNITS ? `OVERSOLD by ${sold - UNITS}` : sold === Math.min(UNITS, VUS) ? 'exact' : 'UNDERSOLD';
  return summarize('flash-sale', data, [
    `units ${UNITS}, buyers ${VUS}: confirmed ${sold} (${verdict}), sold out (409) ${count('orders_sold_out')}, ` +
      `other ${count('orders_unexpected_status')}`,
  ]);
}
