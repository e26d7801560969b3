// Drives the Runnel portal in headless Chromium as a user would. The
// first line on stdin is the setup, {"base","chromium","shots"}; every
// further line is a batch of steps, {"steps":[{"do":…},…]}, run in one
// browser page kept open between batches (the test runs its own checks,
// kcat, in between). Each step prints one JSON line with what the page
// showed; a batch ends with {"step":"end"}. Any console error, uncaught
// exception, failed request or HTTP error answer in the page, a control
// without a label or text, or a step whose expectation is not met ends
// the run with exit status 1 (and a screenshot "failure.png").

import puppeteer from 'puppeteer-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
const first = await lines.next();
if (first.done) process.exit(0);
const plan = JSON.parse(first.value);
const base = plan.base.replace(/\/$/, '');
const timeout = plan.timeout || 20000;
const problems = [];

function fail(msg) {
  throw new Error(msg);
}

async function text(page, selector) {
  return page.$eval(selector, (el) => el.innerText);
}

// settled waits until no part of the page is still loading.
async function settled(page) {
  await page.waitForFunction(() => ![...document.querySelectorAll('main p.muted')].some((p) => /^(Loading|Searching|Comparing)…$/.test(p.textContent)), { timeout });
}

async function shot(page, name) {
  if (!plan.shots) return;
  await page.screenshot({ path: join(plan.shots, `${name}.png`), fullPage: true });
}

async function goto(page, path) {
  await page.goto(base + path, { waitUntil: 'load' });
  await page.waitForFunction(() => !document.querySelector('main > p.muted') || document.querySelector('main > p.muted').textContent !== 'Loading…', { timeout });
  await settled(page);
}

// cardWith returns the first element matching selector whose text has every one of words.
async function cardWith(page, selector, words) {
  await page.waitForFunction((sel, ws) => [...document.querySelectorAll(sel)].some((el) => ws.every((w) => el.innerText.includes(w))), { timeout }, selector, words);
  for (const el of await page.$$(selector)) {
    const t = await el.evaluate((e) => e.innerText);
    if (words.every((w) => t.includes(w))) return el;
  }
  return fail(`no ${selector} with ${words.join(', ')}`);
}

async function clickButton(scope, label) {
  for (const b of await scope.$$('button')) {
    if ((await b.evaluate((e) => e.textContent.trim())) === label) {
      await b.click();
      return;
    }
  }
  fail(`no button ${label}`);
}

async function tableRows(page, selector) {
  return page.$$eval(`${selector} tbody tr`, (rows) => rows.map((r) => [...r.cells].map((c) => c.innerText.trim())));
}

// unlabelled lists the page's controls a screen reader could not name:
// form fields without a label, buttons and links without text, images
// without alt text.
async function unlabelled(page) {
  return page.evaluate(() => {
    const bad = [];
    const name = (el) => (el.getAttribute('aria-label') || el.textContent || '').trim();
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label')) bad.push(`${el.tagName.toLowerCase()}#${el.id || '?'} has no label`);
    }
    for (const el of document.querySelectorAll('button, a[href]')) {
      if (!el.closest('[hidden]') && !name(el)) bad.push(`${el.tagName.toLowerCase()} ${el.outerHTML.slice(0, 80)} has no text`);
    }
    for (const el of document.querySelectorAll('img')) {
      if (!el.hasAttribute('alt')) bad.push(`img ${el.getAttribute('src')} has no alt`);
    }
    return bad;
  });
}

const steps = {
  async login(page, s) {
    await goto(page, s.path || '/');
    await page.waitForSelector('#username', { timeout });
    await shot(page, s.shot || 'login');
    await page.type('#username', s.user);
    await page.type('#password', s.password);
    await page.click('form.login button[type=submit]');
    await page.waitForFunction((u) => document.getElementById('who').innerText.includes(`User:${u}`), { timeout }, s.user);
    await settled(page);
    return { who: await text(page, '#who') };
  },

  async logout(page) {
    await page.click('#logout');
    await page.waitForSelector('#username', { timeout });
    return {};
  },

  async search(page, s) {
    await goto(page, '/');
    await page.waitForSelector('#q', { timeout });
    await page.type('#q', s.q);
    await page.keyboard.press('Enter');
    await page.waitForFunction((q) => new URLSearchParams(location.search).get('q') === q, { timeout }, s.q);
    await settled(page);
    const results = await page.$$eval('.product-list li.product', (items) => items.map((li) => ({
      topic: li.querySelector('h3 a').textContent,
      matched: [...li.querySelectorAll('.matched code')].map((c) => c.textContent),
      tags: [...li.querySelectorAll('.tag')].map((c) => c.textContent),
    })));
    const facets = await page.$$eval('.facet-group', (gs) => Object.fromEntries(gs.map((g) => [g.querySelector('h2').textContent,
      [...g.querySelectorAll('.facet')].map((a) => a.querySelector('span').textContent)])));
    await shot(page, s.shot || 'search');
    if (s.expect && !results.some((r) => r.topic === s.expect)) fail(`search ${s.q}: ${s.expect} not among ${JSON.stringify(results)}`);
    if (s.open) {
      await page.click(`.product-list a[href="/products/${encodeURIComponent(s.open)}"]`);
      await page.waitForFunction((t) => document.querySelector('main h1')?.textContent === t, { timeout }, s.open);
      await settled(page);
    }
    return { results, facets };
  },

  async product(page, s) {
    if (!s.here) await goto(page, `/products/${encodeURIComponent(s.topic)}`);
    await page.waitForFunction((t) => document.querySelector('main h1')?.textContent === t, { timeout }, s.topic);
    await settled(page);
    const out = {
      head: await text(page, 'header.product-head'),
      schema: await text(page, '#schema'),
      piiFields: await page.$$eval('#schema table.fields tbody tr', (rows) => rows.filter((r) => [...r.querySelectorAll('.tag')].some((t) => t.textContent === 'PII')).map((r) => r.cells[0].textContent)),
      contract: await text(page, '#contract'),
      sample: await text(page, '#sample'),
      activity: await text(page, '#activity'),
      lineageNodes: await page.$$eval('#lineage svg.lineage g.node', (ns) => ns.length),
      lineage: await text(page, '#lineage'),
    };
    await shot(page, s.shot || 'product');
    if (s.fullLineage) {
      await clickButton(await page.$('#lineage'), 'Full graph');
      await page.waitForFunction(() => document.querySelector('#lineage [aria-pressed="true"]')?.textContent === 'Full graph', { timeout });
      await settled(page);
      out.fullLineageNodes = await page.$$eval('#lineage svg.lineage g.node', (ns) => ns.length);
      await shot(page, `${s.shot || 'product'}-lineage-full`);
    }
    if (s.diff) {
      await page.select('#diff-from', String(s.diff[0]));
      await page.select('#diff-to', String(s.diff[1]));
      await clickButton(await page.$('#schema'), 'Compare');
      // The answer replaces the "Comparing…" placeholder with the table,
      // a sentence that nothing changed, or an alert.
      await page.waitForFunction(() => {
        const out = document.querySelector('#schema div[aria-live]');
        return out && out.firstElementChild && !/^Comparing…$/.test(out.textContent.trim());
      }, { timeout });
      out.diff = await tableRows(page, '#schema table.diff');
    }
    return out;
  },

  async requestAccess(page, s) {
    await page.select('#req-op', s.operation);
    await page.type('#req-reason', s.reason);
    if (s.duration) await page.select('#req-expiry', s.duration);
    await page.click('form.request button[type=submit]');
    await page.waitForFunction(() => /Request sent|request failed/.test(document.querySelector('form.request').innerText), { timeout });
    const answer = await page.$eval('form.request div[aria-live]', (el) => el.innerText);
    if (!answer.includes('Request sent')) fail(`requesting access: ${answer}`);
    return { answer };
  },

  async requests(page, s) {
    await goto(page, '/requests');
    await shot(page, s.shot || 'requests');
    return { rows: await tableRows(page, 'table.requests') };
  },

  async cancelRequest(page, s) {
    await goto(page, '/requests');
    const row = await cardWith(page, 'table.requests tbody tr', [s.operation, 'PENDING']);
    await clickButton(row, 'Cancel');
    await page.waitForFunction(() => document.getElementById('toast').innerText.includes('cancelled'), { timeout });
    await settled(page);
    return { rows: await tableRows(page, 'table.requests') };
  },

  async approve(page, s) {
    await goto(page, '/approvals');
    const card = await cardWith(page, 'article.approval', [s.requester, s.topic]);
    await shot(page, s.shot || 'approvals');
    const reason = await card.$('textarea');
    await reason.type(s.reason);
    await clickButton(card, s.decline ? 'Decline' : 'Approve');
    await page.waitForFunction((want) => document.getElementById('toast').innerText.includes(want), { timeout }, s.decline ? 'declined' : 'approved');
    await settled(page);
    return { after: await text(page, 'main') };
  },

  async share(page, s) {
    await goto(page, `/shares?topic=${encodeURIComponent(s.topic)}`);
    await page.type('#share-recipient', s.recipient);
    await page.click('form.share-form button[type=submit]');
    await page.waitForSelector('.credentials', { timeout });
    const credentials = await text(page, '.credentials');
    await settled(page);
    await shot(page, s.shot || 'shares');
    return { credentials, rows: await tableRows(page, 'table.shares') };
  },

  async revokeShare(page, s) {
    await goto(page, '/shares');
    const row = await cardWith(page, 'table.shares tbody tr', [s.recipient, 'ACTIVE']);
    await clickButton(row, 'Revoke');
    await clickButton(row, 'Confirm revoke');
    await page.waitForFunction(() => document.getElementById('toast').innerText.includes('revoked'), { timeout });
    await settled(page);
    return { rows: await tableRows(page, 'table.shares') };
  },

  async audit(page, s) {
    await goto(page, `/audit${s.query || ''}`);
    await page.waitForSelector('table.audit, main p', { timeout });
    await shot(page, s.shot || 'audit');
    return { rows: await tableRows(page, 'table.audit') };
  },
};

const browser = await puppeteer.launch({
  executablePath: plan.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
});
let code = 0;
let page;
try {
  if (plan.shots) mkdirSync(plan.shots, { recursive: true });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()} (${m.location()?.url || ''})`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught exception: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    if (!next.value.trim()) continue;
    for (const s of JSON.parse(next.value).steps) {
      const fn = steps[s.do];
      if (!fn) fail(`unknown step ${s.do}`);
      const out = await fn(page, s);
      for (const issue of await unlabelled(page)) problems.push(`after ${s.name || s.do}: ${issue}`);
      console.log(JSON.stringify({ step: s.do, name: s.name || s.do, ...out }));
    }
    if (problems.length) break;
    console.log(JSON.stringify({ step: 'end' }));
  }
} catch (err) {
  console.error(`step failed: ${err.stack || err}`);
  if (page && plan.shots) await page.screenshot({ path: join(plan.shots, 'failure.png'), fullPage: true }).catch(() => {});
  code = 1;
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`the page had problems:\n${problems.join('\n')}`);
  code = 1;
}
process.exit(code);
