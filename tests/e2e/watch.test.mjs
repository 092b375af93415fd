// watch.test.mjs: `kscope watch` on a VM of `kscope vm start`, driven from headless Chromium.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { KERNEL, apiFailures, kscope, kscopeDashboard, launch, peekBytes, rundirCleanup, rundirNew, screenshot, skipReason, stop, until } from './lib.mjs';

const NAME = `e2e-${process.pid}`;
/* One case that spins on vCPU 0: the VM stays up for as long as the tests need it. */
const HANG = 'kt.filter=example_crash.hang';

const fx = { rundir: null, watch: null, browser: null, page: null, url: null, failures: [] };

async function vmState(page) {
  return page.getAttribute('[data-testid="vm-1"]', 'data-state');
}

/* The machine card may sit in a view not shown: wait for its state, not for it to be seen. */
function waitState(page, state) {
  return page.waitForSelector(`[data-testid="vm-1"][data-state="${state}"]`, { state: 'attached', timeout: 30000 });
}

async function failed(name, e) {
  if (fx.page) await screenshot(fx.page, `${name}-failed`).catch(() => {});
  const err = fx.watch ? `\nkscope watch stderr:\n${fx.watch.err()}` : '';
  return new Error(`${e.message}${err}`, { cause: e });
}

before(async () => {
  if (skipReason) return;
  fx.rundir = rundirNew('kse2e-watch');
  const r = await kscope(['vm', 'start', NAME, '--kernel', KERNEL, '--accel', 'tcg', '--paused',
    '--cpus', '2', '--append', HANG], fx.rundir);
  assert.equal(r.status, 0, `kscope vm start: ${r.err}`);
  fx.watch = kscopeDashboard(['watch', NAME, '--port', '0'], fx.rundir);
  fx.url = await fx.watch.url;
  fx.browser = await launch();
  fx.page = await fx.browser.newPage({ viewport: { width: 1280, height: 1000 } });
  fx.failures = apiFailures(fx.page);
  await fx.page.goto(fx.url);
  await waitState(fx.page, 'paused');
});

after(async () => {
  if (skipReason) return;
  if (fx.browser) await fx.browser.close();
  if (fx.watch) await stop(fx.watch);
  if (fx.rundir) {
    const r = await kscope(['vm', 'destroy', NAME], fx.rundir);
    if (r.status !== 0 && !/no VM named/.test(r.err)) console.error(`# kscope vm destroy: ${r.err}`);
    rundirCleanup(fx.rundir);
  }
});

test('watch-pause-regs: pause shows a register table with rip for each of the 2 vCPUs', { skip: skipReason || false, timeout: 120000 }, async () => {
  const { page } = fx;
  try {
    assert.equal(await page.isEnabled('[data-testid="btn-pause"]'), true, 'controls are on in watch mode');
    /* Clicked from the Machines view: the tables come from the pause, not from opening a tab. */
    await page.click('[data-testid="btn-pause"]');
    for (const cpu of [0, 1])
      await page.waitForSelector(`[data-testid="regs-cpu-${cpu}"] tr[data-reg="rip"]`, { state: 'attached', timeout: 30000 });
    await page.click('nav.tabs button[data-view="regs"]');
    for (const cpu of [0, 1]) {
      const rip = await page.textContent(`[data-testid="regs-cpu-${cpu}"] tr[data-reg="rip"] td.val`);
      assert.match(rip.trim(), /^0x[0-9a-f]+$/, `vCPU ${cpu} rip`);
    }
    assert.equal(await page.$('[data-testid="regs-cpu-2"]'), null, 'only 2 vCPUs');
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), '');
    assert.deepEqual(fx.failures, [], 'requests of the page that failed');
    await screenshot(page, 'watch-pause-regs');
  } catch (e) {
    throw await failed('watch-pause-regs', e);
  }
});

test('watch-memory: kt_state in the memory view matches kscope peek', { skip: skipReason || false, timeout: 120000 }, async () => {
  const { page, rundir } = fx;
  try {
    /* kt_state is a virtual address: let the kernel turn paging on first. */
    await page.click('[data-testid="btn-resume"]');
    await waitState(page, 'running');
    await until(async () => (await kscope(['peek', NAME, 'kt_state', '64'], rundir)).status === 0, 30000, 'kt_state to be mapped');
    /* Paused, the two reads see the same bytes. */
    await page.click('[data-testid="btn-pause"]');
    await waitState(page, 'paused');
    await page.click('nav.tabs button[data-view="memory"]');
    await page.fill('[data-testid="mem-addr"]', 'kt_state');
    await page.click('[data-testid="mem-go"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="mem-hex"]').textContent.length > 0, null, { timeout: 30000 });
    const [pageAddr, pageBytes] = peekBytes(await page.textContent('[data-testid="mem-hex"]'));
    const peek = await kscope(['peek', NAME, 'kt_state', '64'], rundir);
    assert.equal(peek.status, 0, `kscope peek: ${peek.err}`);
    const [peekAddr, peekBytes_] = peekBytes(peek.out);
    assert.equal(peekBytes_.length, 64, `kscope peek printed 64 bytes:\n${peek.out}`);
    assert.equal(pageAddr, peekAddr, 'the same address');
    assert.deepEqual(pageBytes.slice(0, 64), peekBytes_);
    assert.match(await page.textContent('#mem-hex'), /\|KSCOPEKT/, 'the ASCII column shows the magic');
    assert.deepEqual(fx.failures, [], 'requests of the page that failed');
    await screenshot(page, 'watch-memory');
  } catch (e) {
    throw await failed('watch-memory', e);
  }
});

test('watch-token: an action without the token is refused 403; the page sends it', { skip: skipReason || false, timeout: 120000 }, async () => {
  const { page } = fx;
  try {
    const origin = new URL(fx.url).origin;
    const token = new URL(fx.url).searchParams.get('token');
    const post = (headers) => fetch(`${origin}/api/action`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ vm: 1, action: 'resume' }),
    });
    for (const headers of [{}, { 'X-Kscope-Token': '0'.repeat(32) }]) {
      const r = await post(headers);
      assert.equal(r.status, 403, `POST /api/action with ${JSON.stringify(headers)}`);
      assert.equal(typeof (await r.json()).error, 'string');
    }
    assert.equal(await vmState(page), 'paused', 'a refused action changes nothing');

    /* The page's own button carries the token of its URL, and the VM runs. */
    await page.click('nav.tabs button[data-view="machines"]');
    const [req] = await Promise.all([
      page.waitForRequest((q) => q.url().endsWith('/api/action') && q.method() === 'POST'),
      page.click('[data-testid="btn-resume"]'),
    ]);
    assert.equal(req.headers()['x-kscope-token'], token);
    const res = await req.response();
    assert.equal(res.status(), 200);
    assert.equal((await res.json()).ok, true);
    await waitState(page, 'running');
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), '');
    assert.deepEqual(fx.failures, [], 'requests of the page that failed');
    await screenshot(page, 'watch-token');
  } catch (e) {
    throw await failed('watch-token', e);
  }
});

test('watch-controls: step vCPU 0, save and load a snapshot, then set and clear pause rules', { skip: skipReason || false, timeout: 120000 }, async () => {
  const { page } = fx;
  try {
    const action = (what) => page.waitForResponse((r) => r.url().endsWith('/api/action') &&
      r.request().postDataJSON().action === what, { timeout: 60000 });
    await page.click('[data-testid="btn-pause"]');
    await waitState(page, 'paused');
    await page.click('nav.tabs button[data-view="regs"]');
    await page.selectOption('#step-cpu', '0');
    const [stepped] = await Promise.all([action('step'), page.click('[data-testid="btn-step"]')]);
    assert.equal(stepped.status(), 200, `step: ${await stepped.text()}`);
    assert.match((await stepped.json()).rip ?? '', /^0x[0-9a-f]+$/, 'the step says where vCPU 0 is');
    await page.waitForSelector('[data-testid="regs-cpu-0"] tr[data-reg="rip"]');

    await page.fill('#snap-tag', 'e2e');
    for (const [btn, op] of [['btn-snap-save', 'save'], ['btn-snap-load', 'load']]) {
      const [r] = await Promise.all([action('snapshot'), page.click(`[data-testid="${btn}"]`)]);
      assert.equal(r.status(), 200, `snapshot ${op}: ${await r.text()}`);
      assert.deepEqual({ op: r.request().postDataJSON().op, tag: r.request().postDataJSON().tag }, { op, tag: 'e2e' });
    }

    /* Rules are set on the running VM. */
    await page.click('[data-testid="btn-resume"]');
    await waitState(page, 'running');
    await page.click('details.rules summary');
    await page.fill('#rules', 'exception:14\n# a comment\ntest:fail\n');
    const [set] = await Promise.all([action('pause_on'), page.click('#btn-rules')]);
    assert.equal(set.status(), 200, `pause_on: ${await set.text()}`);
    assert.deepEqual(set.request().postDataJSON().rules, ['exception:14', 'test:fail']);
    const [cleared] = await Promise.all([action('pause_on'), page.click('#btn-rules-clear')]);
    assert.equal(cleared.status(), 200);
    assert.deepEqual(cleared.request().postDataJSON().rules, []);

    assert.equal((await page.textContent('[data-testid="error"]')).trim(), '');
    assert.deepEqual(fx.failures, [], 'requests of the page that failed');
    await screenshot(page, 'watch-controls');
  } catch (e) {
    throw await failed('watch-controls', e);
  }
});
