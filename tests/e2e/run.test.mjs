// run.test.mjs: `kscope run --dashboard` watched in headless Chromium: test rows follow the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { KERNEL, apiFailures, kscopeDashboard, launch, rundirCleanup, rundirNew, screenshot, skipReason, stop, until } from './lib.mjs';

const FINAL = new Set(['PASS', 'FAIL', 'SKIP', 'TIMEOUT', 'CRASHED', 'NOTRUN']);

/* Runs in the page before its own script: keeps every test row's data-status values in order,
 * so that a row's whole history is known however fast it changed. */
function recordStatuses() {
  window.__statuses = {};
  const note = (el, old) => {
    const id = el.getAttribute && el.getAttribute('data-testid');
    if (!id || !id.startsWith('test-')) return;
    const seen = (window.__statuses[id.slice(5)] ||= []);
    for (const s of [old, el.getAttribute('data-status')])
      if (s && seen[seen.length - 1] !== s) seen.push(s);
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type === 'attributes') { note(r.target, r.oldValue); continue; }
      for (const n of r.addedNodes) {
        if (n.nodeType !== 1) continue;
        note(n, null);
        n.querySelectorAll('[data-testid^="test-"]').forEach((e) => note(e, null));
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true,
    attributeOldValue: true, attributeFilter: ['data-status'] });
}

/* kscope run's per-suite lines ("[  2.09 s] ok      string    12 passed, 1 skipped") and its
 * total ("...: 57 tests in 7 suites"). */
function summary(out) {
  const suites = {};
  let total = null;
  for (const line of out.split('\n')) {
    const t = /: (\d+) tests in \d+ suites?$/.exec(line);
    if (t) total = Number(t[1]);
    const m = /^\[\s*[\d.]+ s\]\s+(ok|not ok|\S+)\s+(\S+)\s+(\d+ \w+(?:, \d+ \w+)*)\s*$/.exec(line);
    if (!m) continue;
    const n = {};
    for (const [, k, w] of m[3].matchAll(/(\d+) (\w+)/g)) n[w] = Number(k);
    suites[m[2]] = { passed: n.passed || 0, skipped: n.skipped || 0, other: Object.keys(n).filter((w) => w !== 'passed' && w !== 'skipped') };
  }
  return { suites, total };
}

test('run-dashboard: rows go RUNNING then PASS and end as kscope run says', { skip: skipReason || false, timeout: 240000 }, async () => {
  const rundir = rundirNew('kse2e-run');
  const run = kscopeDashboard(['run', KERNEL, '--dashboard=0', '--dashboard-wait'], rundir);
  let browser = null, page = null;
  try {
    const url = await run.url;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+$/);
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const failures = apiFailures(page);
    await page.addInitScript(recordStatuses);
    await page.goto(url + '#tests');

    /* The run goes on once the page is there; its summary says how each suite went. */
    await until(() => /^kscope run: \w+ in /m.test(run.out()), 180000, 'the run\'s summary');
    const want = summary(run.out());
    assert.ok(want.total > 0, `no test count in kscope run's output:\n${run.out()}`);

    /* Every case the run had reaches its final status on the page. */
    await page.waitForFunction((n) => {
      const rows = document.querySelectorAll('[data-testid^="test-"]');
      return rows.length >= n && [...rows].every((r) => !['PENDING', 'RUNNING'].includes(r.dataset.status));
    }, want.total, { timeout: 30000 });
    const rows = await page.$$eval('[data-testid^="test-"]', (rs) => rs.map((r) => [r.dataset.testid.slice(5), r.dataset.status]));
    assert.equal(rows.length, want.total, 'one row per case');
    const got = {};
    for (const [id, st] of rows) {
      assert.ok(st === 'PASS' || st === 'SKIP', `${id} ended ${st}`);
      const suite = id.slice(0, id.indexOf('.'));
      got[suite] ||= { passed: 0, skipped: 0 };
      got[suite][st === 'PASS' ? 'passed' : 'skipped']++;
    }
    for (const [suite, n] of Object.entries(want.suites))
      assert.deepEqual(got[suite], { passed: n.passed, skipped: n.skipped }, `suite ${suite}`);

    /* Rows were seen running, then passing. */
    const hist = await page.evaluate(() => window.__statuses);
    const ran = Object.entries(hist).filter(([, h]) => {
      const r = h.indexOf('RUNNING');
      return r >= 0 && h.indexOf('PASS', r) > r;
    });
    assert.ok(ran.length > 0, `no row went RUNNING then PASS: ${JSON.stringify(hist)}`);
    for (const [id, h] of Object.entries(hist))
      assert.ok(FINAL.has(h[h.length - 1]), `${id}: ${h.join(' -> ')}`);

    /* A run drives its VMs: the controls are off and the page says why. */
    assert.equal(await page.isDisabled('[data-testid="btn-pause"]'), true);
    assert.equal(await page.isDisabled('[data-testid="btn-step"]'), true);
    assert.ok((await page.textContent('#controls-why')).trim().length > 0, 'controls_why shown');
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), '');
    assert.match(await page.textContent('[data-testid="dropped"]'), /^\d+$/);
    assert.deepEqual(failures, [], 'requests of the page that failed');
    await screenshot(page, 'run-dashboard');
    await page.click('nav.tabs button[data-view="machines"]');
    await page.waitForSelector('[data-testid="vm-1"]');
    /* The last events reach the page before kscope exits: every VM is seen to end. */
    await page.waitForFunction(() => {
      const cards = document.querySelectorAll('[data-testid^="vm-"]');
      return cards.length > 0 && [...cards].every((c) => c.dataset.state === 'ended');
    }, null, { timeout: 30000 });
    await screenshot(page, 'run-dashboard-machines');
  } catch (e) {
    if (page) await screenshot(page, 'run-dashboard-failed').catch(() => {});
    throw new Error(`${e.message}\nkscope stderr:\n${run.err()}`, { cause: e });
  } finally {
    if (browser) await browser.close();
    await stop(run);
    rundirCleanup(rundir);
  }
});
