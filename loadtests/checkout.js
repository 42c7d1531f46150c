// k6 suite `checkout`: browse → sign in → cart → checkout, through the edge.
//
//   cargo xtask load checkout                      # starts its own platform (release, dev seed)
//   BASE_URL=http://127.0.0.1:8080 cargo xtask load checkout   # against a running `cargo xtask up`
//
// Environment: BASE_URL (default the edge, http://127.0.0.1:8080), VUS (default 10), DURATION
// (default 30s), SUMMARY (JSON summary path, default .meridian/load/checkout-summary.json).
// Each VU registers and signs in its own buyer once (its first iteration), then loops:
// GET /products?limit=20, GET /products/{random}, POST /cart/items, POST /orders (tok_visa).
// Demo products carry 5..200 units per region, so 409 (sold out) is expected late in long runs.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { BASE_URL, TREND_STATS, addAndCheckout, json, prepareBuyer, summarize } from './lib/common.js';

const checkoutMs = new Trend('checkout_duration', true);
const confirmed = new Counter('orders_confirmed');
const soldOut = new Counter('orders_sold_out');

// 409 (insufficient stock) is an expected answer, not a failed request.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 399 }, 409));

export const options = {
  scenarios: {
    checkout: {
      executor: 'constant-vus',
      vus: Number(__ENV.VUS || 10),
      duration: __ENV.DURATION || '30s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    checkout_duration: ['p(99)<1500'],
    checks: ['rate>0.99'],
  },
  summaryTrendStats: TREND_STATS,
};

let buyer = null; // per VU, module scope: registered on the VU's first iteration

export default function () {
  if (buyer === null) {
    buyer = prepareBuyer(`checkout-vu${exec.vu.idInTest}`);
  }
  const page = http.get(`${BASE_URL}/products?limit=20`, { headers: json(), tags: { name: 'list products' } });
  check(page, { 'list products: 200': (r) => r.status === 200 });
  const items = page.status === 200 ? page.json().items || [] : [];
  if (items.length === 0) {
    sleep(1);
    return;
  }
  const product = items[Math.floor(Math.random() * items.length)];
  const detail = http.get(`${BASE_URL}/products/${product.id}`, {
    headers: json(),
    tags: { name: 'get product' },
  });
  check(detail, { 'get product: 200': (r) => r.status === 200 });

  const order = addAndCheckout(buyer, product.id, 1);
  checkoutMs.add(order.timings.duration);
  check(order, { 'checkout: 201 or 409': (r) => r.status === 201 || r.status === 409 });
  if (order.status === 201) {
    confirmed.add(1);
  } else if (order.status === 409) {
    soldOut.add(1);
    // A sold-out checkout leaves the line in the cart: empty it for the next iteration.
    http.del(`${BASE_URL}/cart`, null, { headers: json(buyer.token), tags: { name: 'empty cart' } });
  }
}

export function handleSummary(data) {
  const count = (name) => (data.metrics[name] ? data.metrics[name].values.count : 0);
  return summarize('checkout', data, [
    `orders confirmed: ${count('orders_confirmed')}, sold out (409): ${count('orders_sold_out')}`,
  ]);
}
