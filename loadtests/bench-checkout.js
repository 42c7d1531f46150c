// k6 script behind `cargo xtask bench checkout` (run it through xtask, which parses the summary):
// VUS (default 32) buyers prepared in setup(), each looping add-to-cart + POST /orders (tok_visa)
// for DURATION against BASE_URL (xtask points it straight at the core) on one product stocked with
// plenty of units (PRODUCTS=n spreads the buyers over n products). Reports the POST /orders latency as `checkout_duration` and 201s as
// `orders_confirmed`.
import http from 'k6/http';
import { check, fail } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import exec from 'k6/execution';
import { TREND_STATS, addAndCheckout, createStockedProduct, login, prepareBuyers, summarize } from './lib/common.js';

const VUS = Number(__ENV.VUS || 32);
const checkoutMs = new Trend('checkout_duration', true);
const confirmed = new Counter('orders_confirmed');
const failedOrders = new Counter('orders_failed');

export const options = {
  setupTimeout: '5m',
  scenarios: {
    checkout: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '10s', gracefulStop: '10s' },
  },
  thresholds: { orders_failed: ['count==0'] },
  summaryTrendStats: TREND_STATS,
};

export function setup() {
  if (!__ENV.ADMIN_EMAIL || !__ENV.ADMIN_PASSWORD) fail('ADMIN_EMAIL and ADMIN_PASSWORD are required');
  const admin = login(__ENV.ADMIN_EMAIL, __ENV.ADMIN_PASSWORD);
  // PRODUCTS (default 1: every order reserves the same stock row), 1_000_000 units each (the API's maximum).
  const productIds = [];
  for (let i = 0; i < Number(__ENV.PRODUCTS || 1); i++) {
    productIds.push(createStockedProduct(admin.token, `Checkout benchmark ${i + 1}`, 1000000, 500));
  }
  return { productIds, buyers: prepareBuyers(VUS, 'bench') };
}

export default function (data) {
  const buyer = data.buyers[exec.vu.idInTest - 1];
  const productId = data.productIds[(exec.vu.idInTest - 1) % data.productIds.length];
  const order = addAndCheckout(buyer, productId, 1);
  if (check(order, { 'checkout: 201': (r) => r.status === 201 })) {
    checkoutMs.add(order.timings.duration);
    confirmed.add(1);
  } else {
    failedOrders.add(1);
    if (Math.random() < 0.05) console.warn(`checkout answered ${order.status}: ${order.body}`);
  }
}

export function handleSummary(data) {
  return summarize('bench-checkout', data);
}
