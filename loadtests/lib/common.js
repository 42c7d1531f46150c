// Helpers shared by the k6 suites in loadtests/: the API calls every suite needs (JSON in and out,
// per the contract in the README), unique buyers, and the text/JSON end-of-test summary.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
// The region whose stock the suites set (the edge's home region in `cargo xtask up`).
export const REGION = __ENV.REGION || 'local';

export function json(token) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  return headers;
}

export function uuid() {
  if (typeof crypto !== 'undefined' && crypto.randomUUID) {
    return crypto.randomUUID();
  }
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    return (c === 'x' ? r : (r & 0x3) | 0x8).toString(16);
  });
}

function randomHex(length) {
  let out = '';
  while (out.length < length) {
    out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  }
  return out.slice(0, length);
}

/// Logs in and returns `{token, user}`; aborts the test on failure.
export function login(email, password) {
  const res = http.post(`${BASE_URL}/users/login`, JSON.stringify({ email, password }), {
    headers: json(),
    tags: { name: 'login' },
  });
  if (res.status !== 200) {
    fail(`login as ${email} answered ${res.status}: ${res.body}`);
  }
  const body = res.json();
  return { token: body.access_token, user: body.user };
}

function newBuyerCredentials(prefix) {
  const id = randomHex(16);
  return {
    email: `${prefix}-${id}@load.meridian.local`,
    password: `Lt-${randomHex(20)}`,
    name: `Load Buyer ${id.slice(0, 6)}`,
  };
}

function addressBody() {
  return JSON.stringify({
    name: 'Load Buyer',
    line1: '1 Benchmark Way',
    city: 'Springfield',
    postal_code: '12345',
    country: 'US',
  });
}

/// Registers `count` fresh buyers, logs them in and gives each an address, `parallel` at a time
/// (registration and login are Argon2-bound). Returns `[{token, user_id, address_id}]`.
export function prepareBuyers(count, prefix, parallel = 16) {
  const buyers = [];
  for (let start = 0; start < count; start += parallel) {
    const batch = [];
    for (let i = start; i < Math.min(count, start + parallel); i++) {
      batch.push(newBuyerCredentials(prefix));
    }
    const registered = http.batch(
      batch.map((c) => ['POST', `${BASE_URL}/users/register`, JSON.stringify(c), { headers: json(), tags: { name: 'register' } }]),
    );
    registered.forEach((res, i) => {
      if (res.status !== 201) fail(`register ${batch[i].email} answered ${res.status}: ${res.body}`);
    });
    const logins = http.batch(
      batch.map((c) => [
        'POST',
        `${BASE_URL}/users/login`,
        JSON.stringify({ email: c.email, password: c.password }),
        { headers: json(), tags: { name: 'login' } },
      ]),
    );
    const sessions = logins.map((res, i) => {
      if (res.status !== 200) fail(`login ${batch[i].email} answered ${res.status}: ${res.body}`);
      const body = res.json();
      return { token: body.access_token, user_id: body.user.id };
    });
    const addresses = http.batch(
      sessions.map((s) => [
        'POST',
        `${BASE_URL}/users/${s.user_id}/addresses`,
        addressBody(),
        { headers: json(s.token), tags: { name: 'add address' } },
      ]),
    );
    addresses.forEach((res, i) => {
      if (res.status !== 201 && res.status !== 200) fail(`add address answered ${res.status}: ${res.body}`);
      buyers.push({ ...sessions[i], address_id: res.json().id });
    });
  }
  return buyers;
}

/// One buyer, registered and signed in by the calling VU (for per-VU init).
export function prepareBuyer(prefix) {
  return prepareBuyers(1, prefix, 1)[0];
}

/// Creates an active product as the admin and sets its stock in `REGION`; returns its id.
export function createStockedProduct(adminToken, name, units, price = 999) {
  const sku = `LOAD-${Date.now()}-${randomHex(6)}`.toUpperCase();
  const res = http.post(
    `${BASE_URL}/products`,
    JSON.stringify({
      sku,
      name,
      description: 'Created by a k6 suite in loadtests/.',
      price: { amount: price, currency: 'USD' },
    }),
    { headers: json(adminToken), tags: { name: 'create product' } },
  );
  if (res.status !== 201) fail(`POST /products answered ${res.status}: ${res.body}`);
  const id = res.json().id;
  const stock = http.put(`${BASE_URL}/inventory/${id}`, JSON.stringify({ region: REGION, available: units }), {
    headers: json(adminToken),
    tags: { name: 'set stock' },
  });
  if (stock.status < 200 || stock.status > 299) fail(`PUT /inventory/${id} answered ${stock.status}: ${stock.body}`);
  return id;
}

/// Adds `quantity` of a product to the buyer's cart, then checks out with `tok_visa`. Returns the
/// POST /orders response (its timing is what the suites measure).
export function addAndCheckout(buyer, productId, quantity = 1) {
  const add = http.post(
    `${BASE_URL}/cart/items`,
    JSON.stringify({ product_id: productId, quantity }),
    { headers: json(buyer.token), tags: { name: 'add to cart' } },
  );
  check(add, { 'add to cart: 201': (r) => r.status === 201 });
  const headers = json(buyer.token);
  headers['Idempotency-Key'] = uuid();
  return http.post(
    `${BASE_URL}/orders`,
    JSON.stringify({ shipping_address_id: buyer.address_id, payment: { method: 'card', token: 'tok_visa' } }),
    { headers, tags: { name: 'checkout' } },
  );
}

export const TREND_STATS = ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max', 'count'];

function format(name, metric) {
  const v = metric.values;
  let text;
  if (metric.type === 'trend') {
    text = ['avg', 'med', 'p(95)', 'p(99)', 'max']
      .filter((k) => v[k] !== undefined)
      .map((k) => `${k}=${v[k].toFixed(2)}ms`)
      .join(' ');
  } else if (metric.type === 'counter') {
    text = `count=${v.count} rate=${v.rate.toFixed(2)}/s`;
  } else if (metric.type === 'rate') {
    text = `${(v.rate * 100).toFixed(2)}% (${v.passes} of ${v.passes + v.fails})`;
  } else {
    text = `value=${v.value} min=${v.min} max=${v.max}`;
  }
  const thresholds = Object.entries(metric.thresholds || {})
    .map(([expr, t]) => `${t.ok ? 'ok' : 'FAILED'}: ${expr}`)
    .join(', ');
  return `  ${name.padEnd(34)} ${text}${thresholds ? `   [${thresholds}]` : ''}`;
}

/// `handleSummary` body: the full JSON to `__ENV.SUMMARY` (default `.meridian/load/<suite>-summary.json`)
/// and a short text summary on stdout, with `extraLines` (the suite's verdict) at the end.
export function summarize(suite, data, extraLines = []) {
  const path = __ENV.SUMMARY || `.meridian/load/${suite}-summary.json`;
  const names = Object.keys(data.metrics).sort();
  const failed = names.filter((n) => Object.values(data.metrics[n].thresholds || {}).some((t) => !t.ok));
  const lines = [
    '',
    `k6 suite ${suite} against ${BASE_URL}`,
    ...names.map((n) => format(n, data.metrics[n])),
    ...extraLines.map((l) => `  ${l}`),
    failed.length ? `  THRESHOLDS FAILED: ${failed.join(', ')}` : '  all thresholds passed',
    `  JSON summary: ${path}`,
    '',
  ];
  return { stdout: lines.join('\n'), [path]: JSON.stringify(data, null, 2) };
}
