// lib.mjs: what the dashboard's browser tests share: the browser, kscope processes, VMs, screenshots.
import { spawn, execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const CHROMIUM = '/usr/bin/chromium';
export const KSCOPE = process.env.KSCOPE_BIN || join(here, '../../build/cli/kscope');
export const KERNEL = process.env.KSCOPE_DEMO_KERNEL || join(here, '../../build/kernel/kscope-demo.elf');
export const OUT = process.env.KSCOPE_E2E_OUT || join(here, '../../build/tests/e2e');
export const SHOTS = join(OUT, 'screenshots');

/* Why the tests cannot run here (a TAP skip), or null. Only a missing browser or missing node
 * modules are reasons; everything else must work. */
export const skipReason = !existsSync(CHROMIUM)
  ? `${CHROMIUM} is not installed (scripts/setup.sh installs it)`
  : !existsSync(join(here, 'node_modules/playwright-core'))
    ? 'tests/e2e/node_modules is missing (scripts/setup.sh runs npm ci there)'
    : null;

/* Headless Chromium with a fresh profile, nothing from the network. */
export async function launch() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/* Saves the page as SHOTS/name.png; returns the path. */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  if (!name.endsWith('-failed')) rmSync(join(SHOTS, `${name}-failed.png`), { force: true });
  return path;
}

/* A private runtime directory for the VMs of one test file (as tests/vm/kscope_run.c does). */
export function rundirNew(prefix) {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

function envWith(rundir) {
  return { ...process.env, KSCOPE_RUNDIR: rundir };
}

/* Runs kscope with args to its end (at most timeoutMs): {status, out, err}. */
export function kscope(args, rundir, timeoutMs = 60000) {
  return new Promise((resolve) => {
    execFile(KSCOPE, args, { env: envWith(rundir), cwd: rundir, timeout: timeoutMs, maxBuffer: 16 << 20 },
      (e, out, err) => resolve({ status: e ? (e.code ?? e.signal ?? -1) : 0, out, err }));
  });
}

/*
 * Starts kscope with args in the background and waits for its dashboard's address on stderr.
 * Returns {proc, url, out(), err(), exited: Promise<status>}.
 */
export function kscopeDashboard(args, rundir, timeoutMs = 60000) {
  const proc = spawn(KSCOPE, args, { env: envWith(rundir), cwd: rundir, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code ?? 128 + (constants.signals[sig] || 0))));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no dashboard address from kscope ${args.join(' ')} within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    proc.stderr.on('data', (d) => {
      err += d;
      const m = /kscope: dashboard at (http:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then((s) => { clearTimeout(timer); reject(new Error(`kscope ${args.join(' ')} exited ${s} before giving its address; stderr: ${err}`)); });
  });
  return { proc, url, exited, out: () => out, err: () => err };
}

/* Ends a background kscope: SIGINT, then SIGKILL after graceMs. Returns its status. */
export async function stop(bg, graceMs = 5000) {
  if (bg.proc.exitCode !== null || bg.proc.signalCode !== null) return bg.exited;
  bg.proc.kill('SIGINT');
  const t = setTimeout(() => bg.proc.kill('SIGKILL'), graceMs);
  const s = await bg.exited;
  clearTimeout(t);
  return s;
}

/* Kills what a failed test left in rundir (every VM's supervisor and QEMU, by their pid files)
 * and removes it. */
export function rundirCleanup(rundir) {
  for (const vm of existsSync(rundir) ? readdirSync(rundir) : []) {
    for (const f of ['supervisor.pid', 'qemu.pid']) {
      try {
        const pid = Number(readFileSync(join(rundir, vm, f), 'utf8').trim());
        if (pid > 1) process.kill(pid, 'SIGKILL');
      } catch { /* gone already */ }
    }
  }
  rmSync(rundir, { recursive: true, force: true });
}

/* The bytes of `kscope peek`'s hex lines ("0xADDR: 4b 53 ...  |KS..|"), as [addr, bytes]. */
export function peekBytes(text) {
  let addr = null;
  const bytes = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(0x[0-9a-f]+):\s+((?:[0-9a-f]{2}\s+)+)\s*\|/i.exec(line);
    if (!m) continue;
    if (addr === null) addr = BigInt(m[1]);
    bytes.push(...m[2].trim().split(/\s+/).map((b) => parseInt(b, 16)));
  }
  return [addr, bytes];
}

/* Waits until fn() is truthy (polling every 100 ms), at most timeoutMs; returns its value. */
export async function until(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/* Keeps every request of the page's own to /api/ that failed (an HTTP error or no answer), as
 * "STATUS METHOD PATH": the page must not make requests the server refuses. */
export function apiFailures(page) {
  const failed = [];
  const api = (u) => new URL(u).pathname.startsWith('/api/');
  page.on('response', (r) => {
    if (api(r.url()) && r.status() >= 400)
      failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}${new URL(r.url()).search}`);
  });
  page.on('requestfailed', (q) => {
    /* The event stream ends when kscope does: that is no failure of the page. */
    if (api(q.url()) && !q.url().endsWith('/api/events')) failed.push(`failed ${q.method()} ${q.url()}`);
  });
  return failed;
}
