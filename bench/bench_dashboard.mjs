// bench_dashboard.mjs: the dashboard in headless Chromium: events per second the page takes, and
// what an open page costs a `kscope run`, each next to its baseline, alternating in one run.
//
// Usage: node bench/bench_dashboard.mjs KSCOPE KERNEL [RUNS]   (RUNS: 11 by default)
//
// 1. Magic messages per second: the demo kernel's example_magic.many_messages (1000 magic
//    messages from one site as fast as it can) on a VM started paused, followed by
//    `kscope watch` with the page open and counted inside the page (its first to its last
//    magic event), in a plain Chromium and in one driven by playwright-core, next to
//    `kscope events NAME --trace magic --json` on the same kind of VM, counted as its lines
//    arrive.
// 2. `kscope run` on the demo kernel's default suites with `--dashboard --dashboard-wait` and
//    the page open (see runElapsed), next to the same run without a dashboard: the run's own
//    elapsed time (from its JSON report: boot to the end, the wait for the page excluded).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

const [KSCOPE_ARG, KERNEL_ARG, RUNS_ARG] = process.argv.slice(2);
const RUNS = Number(RUNS_ARG || 11);
const MESSAGES = 'kt.filter=example_magic.many_messages';

if (!KSCOPE_ARG || !KERNEL_ARG) {
  console.error('usage: node bench/bench_dashboard.mjs KSCOPE KERNEL [RUNS]');
  process.exit(2);
}
/* kscope runs in a scratch directory: give it whole paths. */
const KSCOPE = resolve(KSCOPE_ARG), KERNEL = resolve(KERNEL_ARG);
/* The shared helpers take the kscope binary from the environment when they load. */
process.env.KSCOPE_BIN = KSCOPE;
const { CHROMIUM, kscope, kscopeDashboard, launch, rundirCleanup, rundirNew, skipReason, stop, until } =
  await import('../tests/e2e/lib.mjs');
if (skipReason) {
  console.log(`bench_dashboard: skipped: ${skipReason}`);
  process.exit(0);
}
const { chromium } = await import('../tests/e2e/node_modules/playwright-core/index.mjs');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (x, d = 1) => x.toFixed(d);

async function kscopeOk(args, rundir) {
  const r = await kscope(args, rundir);
  if (r.status !== 0) throw new Error(`kscope ${args.join(' ')}: status ${r.status}: ${r.err}${r.out}`);
  return r;
}

function startPaused(name, rundir) {
  return kscopeOk(['vm', 'start', name, '--kernel', KERNEL, '--accel', 'tcg', '--cpus', '2', '--paused',
    '--append', MESSAGES], rundir);
}

/* Magic events per second through the page: {n, rate, dropped}. */
async function pageRate(browser, rundir, i) {
  const name = `bd-page-${process.pid}-${i}`;
  await startPaused(name, rundir);
  const watch = kscopeDashboard(['watch', name, '--port', '0'], rundir);
  const page = await browser.newPage();
  try {
    await page.goto(await watch.url);
    await page.waitForSelector('[data-testid="vm-1"][data-state="paused"]', { state: 'attached', timeout: 30000 });
    await page.click('[data-testid="btn-resume"]');
    await page.waitForSelector('[data-testid="vm-1"][data-state="ended"]', { state: 'attached', timeout: 120000 });
    /* Events still in flight when the VM ended arrive just after. */
    await page.waitForTimeout(300);
    const s = await page.evaluate(() => ({ magic: window.kscope.stats.kinds.magic || null,
      dropped: Number(document.querySelector('[data-testid="dropped"]').textContent) }));
    if (!s.magic) throw new Error('the page saw no magic event');
    return { n: s.magic.n, rate: (s.magic.n - 1) / ((s.magic.last - s.magic.first) / 1000), dropped: s.dropped };
  } finally {
    await page.close();
    await stop(watch);
    await kscope(['vm', 'destroy', name], rundir);
  }
}

/*
 * The same in a plain Chromium: nothing follows the page while the messages come; once the VM
 * ended, the DevTools protocol is attached to read the page's counters.
 */
async function plainPageRate(rundir, i) {
  const name = `bd-plain-${process.pid}-${i}`;
  await startPaused(name, rundir);
  const watch = kscopeDashboard(['watch', name, '--port', '0'], rundir);
  const url = await watch.url;
  const chrome = plainChromium(url, rundir, true);
  let cdp = null;
  try {
    const endpoint = await chrome.devtools;
    const api = new URL('/api/vms', url).href;
    /* The protocol only looks in while nothing happens: to see that the page follows. */
    cdp = await chromium.connectOverCDP(endpoint);
    await until(async () => {
      const pages = cdp.contexts()[0]?.pages() ?? [];
      return pages.length && pages[0].evaluate(() => window.kscope?.stats.hello > 0).catch(() => false);
    }, 30000, 'the page to connect');
    await cdp.close();
    cdp = null;
    await kscopeOk(['vm', 'resume', name], rundir);
    await until(async () => (await (await fetch(api)).json())[0].state === 'ended', 120000, 'the VM to end');
    await new Promise((resolve) => setTimeout(resolve, 300));
    cdp = await chromium.connectOverCDP(endpoint);
    const page = cdp.contexts()[0].pages()[0];
    const s = await page.evaluate(() => ({ magic: window.kscope.stats.kinds.magic || null,
      dropped: Number(document.querySelector('[data-testid="dropped"]').textContent) }));
    if (!s.magic) throw new Error('the page saw no magic event');
    return { n: s.magic.n, rate: (s.magic.n - 1) / ((s.magic.last - s.magic.first) / 1000), dropped: s.dropped };
  } finally {
    if (cdp) await cdp.close().catch(() => {});
    await chrome.stop();
    await stop(watch);
    await kscope(['vm', 'destroy', name], rundir);
  }
}

/* Magic events per second through `kscope events --json`, timed as its lines arrive. */
async function cliRate(rundir, i) {
  const name = `bd-cli-${process.pid}-${i}`;
  await startPaused(name, rundir);
  const ev = spawn(KSCOPE, ['events', name, '--trace', 'magic', '--json', '--resume'],
    { env: { ...process.env, KSCOPE_RUNDIR: rundir }, stdio: ['ignore', 'pipe', 'ignore'] });
  let n = 0, first = 0, last = 0, buf = '';
  ev.stdout.on('data', (d) => {
    const t = performance.now();
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop();
    for (const l of lines) {
      if (!l.includes('"kind":"magic"')) continue;
      if (!n++) first = t;
      last = t;
    }
  });
  const done = new Promise((resolve) => ev.on('exit', resolve));
  const timer = setTimeout(() => ev.kill('SIGKILL'), 120000);
  await done;
  clearTimeout(timer);
  await kscope(['vm', 'destroy', name], rundir);
  if (n < 2) throw new Error(`kscope events printed ${n} magic events`);
  return { n, rate: (n - 1) / ((last - first) / 1000) };
}

/* fn(), tried again (twice at most) when it fails: a loaded machine can fail one of the demo
 * kernel's timed tests; that is said on stderr, and the run is not counted. */
async function retried(fn) {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i === 2) throw e;
      console.error(`bench_dashboard: tried again: ${e.message.split('\n')[0]}`);
    }
  }
}

/* A port nobody listens on now. */
function freePort() {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let profiles = 0;

/* Debian's Chromium on its own (no DevTools protocol attached, as a person's browser is), its
 * profile in dir, showing url until stopped. */
function plainChromium(url, dir, devtools = false) {
  const profile = join(dir, `chromium-profile-${++profiles}`);
  const proc = spawn(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${profile}`, ...(devtools ? ['--remote-debugging-port=0'] : []), url],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  let err = '';
  const found = new Promise((resolve) => proc.stderr.on('data', (d) => {
    err += d;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  }));
  return { devtools: found, stop: () => { proc.kill('SIGTERM'); return exited; } };
}

/*
 * One `kscope run` of the default suites: its elapsed time in ms, from its JSON report (boot
 * to the end; the wait for the page is not in it). how:
 *   none    no dashboard;
 *   open    the page kept open across runs in a plain Chromium, on one port: it reconnects to
 *           each new run, as a tab left open does;
 *   open+pw the same page in Chromium driven by playwright-core (which follows the page's
 *           network traffic through the DevTools protocol, as the tests do);
 *   fresh   a new page for each run (playwright-core): the run starts while Chromium still
 *           loads it.
 */
async function runElapsed(rundir, how, i, ctx) {
  const json = join(rundir, `run-${i}.json`);
  const args = ['run', KERNEL, '--json', json];
  if (how === 'none') {
    await kscopeOk(args, rundir);
    return JSON.parse(readFileSync(json, 'utf8')).kscope_run.elapsed_ns / 1e6;
  }
  const port = how === 'fresh' ? 0 : ctx.ports[how];
  const run = kscopeDashboard([...args, `--dashboard=${port}`, '--dashboard-wait'], rundir);
  const url = await run.url;
  let page = null;
  try {
    if (how === 'open' && !ctx.plain) ctx.plain = plainChromium(url, rundir);
    if (how === 'open+pw' && !ctx.page) {
      ctx.page = await ctx.browser.newPage();
      await ctx.page.goto(url);
    }
    if (how === 'fresh') {
      page = await ctx.browser.newPage();
      await page.goto(url);
    }
    const status = await Promise.race([run.exited,
      new Promise((resolve) => setTimeout(() => resolve('no page came'), 60000))]);
    if (status !== 0) throw new Error(`kscope run --dashboard: ${status}: ${run.err()}${run.out()}`);
  } finally {
    if (page) await page.close();
    await stop(run);
  }
  return JSON.parse(readFileSync(json, 'utf8')).kscope_run.elapsed_ns / 1e6;
}

const rundir = rundirNew('kscope-bench-dash');
const browser = await launch();
try {
  /* A first run pays for the accelerator probe; it is not counted. */
  await runElapsed(rundir, 'none', 'warm-up');

  const RATE_RUNS = Math.max(3, Math.round(RUNS / 2));
  const page = [], plain = [], cli = [];
  for (let i = 0; i < RATE_RUNS; i++) {
    cli.push(await cliRate(rundir, i));
    plain.push(await plainPageRate(rundir, i));
    page.push(await pageRate(browser, rundir, i));
  }
  const ctx = { browser, ports: { open: await freePort(), 'open+pw': await freePort() }, page: null, plain: null };
  const runs = { none: [], open: [], 'open+pw': [], fresh: [] };
  try {
    /* The pages kept open are opened here, by a round that is not counted. */
    for (const how of ['open', 'open+pw'])
      await retried(() => runElapsed(rundir, how, `${how}-warm-up`, ctx));
    for (let i = 0; i < RUNS; i++)
      for (const how of Object.keys(runs))
        runs[how].push(await retried(() => runElapsed(rundir, how, `${how}-${i}`, ctx)));
  } finally {
    if (ctx.plain) await ctx.plain.stop();
  }

  const cr = median(cli.map((x) => x.rate));
  console.log(`magic messages per second, median of ${RATE_RUNS} (1000 messages, TCG, 2 vCPUs):`);
  console.log(`  kscope events --json (CLI)        ${fmt(cr, 0)}/s  (${cli.map((x) => fmt(x.rate, 0)).join(' ')})`);
  for (const [what, xs] of [['page, plain Chromium', plain], ['page, playwright-core', page]]) {
    const r = median(xs.map((x) => x.rate));
    console.log(`  ${what.padEnd(32)}  ${fmt(r, 0)}/s  ${fmt(r / cr, 2)}x  (${xs.map((x) => fmt(x.rate, 0)).join(' ')})` +
      `  seen: ${xs.map((x) => x.n).join(' ')}, dropped: ${xs.map((x) => x.dropped).join(' ')}`);
  }
  const base = median(runs.none);
  console.log(`kscope run, default suites, elapsed (boot to end), median of ${RUNS}, alternating:`);
  const label = { none: 'without a dashboard', open: 'page open (plain Chromium)',
    'open+pw': 'page open (playwright-core)', fresh: 'page opened for each run' };
  for (const how of Object.keys(runs)) {
    const m = median(runs[how]);
    const added = how === 'none' ? '' : `  ${m >= base ? '+' : ''}${fmt(100 * (m / base - 1))}%`;
    console.log(`  ${label[how].padEnd(32)} ${fmt(m).padStart(7)} ms${added}  (${runs[how].map((x) => fmt(x, 0)).join(' ')})`);
  }
  console.log('  target: a page open costs the run under 5%');
} finally {
  await browser.close();
  rundirCleanup(rundir);
}
