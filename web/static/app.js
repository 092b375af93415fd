/* app.js: the dashboard page: follows /api/events into a bounded model, redraws at most ten times a second. */
"use strict";

(function () {
  const MAX_EVENTS = 20000;   /* events kept in memory for the timeline and details */
  const LIST_MAX = 300;       /* event rows kept in the DOM */
  const LIST_NEW = 60;        /* rows a live list takes per frame (freeze shows them all) */
  const LANE_PX = 16;         /* width of one vCPU lane in the event list */
  const CON_MAX = 5000;       /* console lines kept per VM */
  const CON_TAIL = 1000;      /* lines asked for when (re)connecting: what the server keeps */
  const FRAME_MS = 100;       /* the page is redrawn at most this often (ms) */
  const KINDS = ["magic", "interrupt", "exception", "syscall", "sysret", "test", "vm",
    "serial", "breakpoint", "watchpoint"];
  const FINAL = new Set(["PASS", "FAIL", "SKIP", "TIMEOUT", "CRASHED", "NOTRUN"]);
  const BAD = new Set(["FAIL", "TIMEOUT", "CRASHED"]);

  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token") || "";

  /* ---- the model: updated as messages arrive, cheap and bounded ---- */
  const m = {
    info: null,
    sel: 0,                   /* the selected VM's number */
    vms: new Map(),           /* vm -> {v: VM object, at: ms when received} */
    suites: [],               /* [{name, cases: [key...], el, head}] */
    cases: new Map(),         /* "suite.case" -> {c, row, shown, ran, flashed} */
    events: [],               /* the last MAX_EVENTS monitor events (oldest first) */
    lanes: new Map(),         /* vm -> highest vCPU index seen */
    kinds: new Set(KINDS),
    console: new Map(),       /* vm -> {lines: [], last: lineno} */
    droppedBase: 0, droppedNow: 0,
    ended: null,
    regsPrev: new Map(),      /* "vm/cpu/reg" -> value, to mark what changed */
  };
  /* What this page received, for whoever measures it: messages by name, monitor events by
   * kind with the page clock (ms) of the first and the last. */
  const stats = { event: 0, test: 0, console: 0, vm: 0, paused: 0, hello: 0, dropped: 0,
    end: 0, kinds: {} };
  window.kscope = { stats, model: m };

  /*
   * ---- rendering: parts are marked dirty and drawn together in one animation frame, at most
   * once every FRAME_MS: each frame costs the browser style, layout and paint, and on a small
   * machine that CPU is taken from the VMs being watched. ----
   */
  const dirty = new Set();
  const dirtyCases = new Set();
  let pendingRows = [];       /* events for the list, newest last, at most LIST_MAX */
  let listStale = true;
  let frame = 0;
  let view = "machines";
  let lastFlush = -FRAME_MS;

  function mark(part) {
    dirty.add(part);
    if (frame) return;
    const wait = lastFlush + FRAME_MS - performance.now();
    if (wait <= 0) frame = requestAnimationFrame(flush);
    else frame = setTimeout(() => { frame = requestAnimationFrame(flush); }, wait);
  }

  function flush(now) {
    frame = 0;
    lastFlush = now;
    const t0 = performance.now();
    draw(now);
    /* A frame that took long pushes the next one back, so the page keeps to a small share of
     * the CPU however fast events come. */
    lastFlush += Math.max(0, 8 * (performance.now() - t0) - FRAME_MS);
  }

  function draw() {
    const parts = new Set(dirty);
    dirty.clear();
    if (parts.has("vms")) renderVms();
    if (parts.has("tree")) renderTree();
    if (dirtyCases.size) renderCases();
    if (parts.has("counts")) renderCounts();
    if (parts.has("events") && view === "events") renderEvents();
    if (parts.has("console") && view === "console") renderConsole();
    if (parts.has("controls")) renderControls();
  }

  /* ---- helpers ---- */
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("data-") || k === "title" || k === "role") e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  }

  function size(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    n = Number(n);
    while (n >= 1024 && i < u.length - 1 && n % 1024 === 0) { n /= 1024; i++; }
    return n + " " + u[i];
  }

  function dur(s) {
    if (s < 60) return Math.max(0, s).toFixed(1) + "s";
    s = Math.floor(s);
    const h = Math.floor(s / 3600), mi = Math.floor(s / 60) % 60, se = s % 60;
    return (h ? h + "h " : "") + (h || mi ? mi + "m " : "") + se + "s";
  }

  /* A duration in ms as a person reads it: "0.56 ms", "42.7 ms", "1.3 s"; "" when unknown. */
  function ms(d) {
    if (d === null || d === undefined || d === "") return "";
    d = Number(d);
    return d >= 10000 ? (d / 1000).toFixed(1) + " s" : d.toFixed(d < 10 ? 2 : d < 100 ? 1 : 0) + " ms";
  }

  function big(h) {
    try { return BigInt(h); } catch (e) { return 0n; }
  }

  function hex(n, width) {
    return "0x" + n.toString(16).padStart(width || 0, "0");
  }

  /* Text that did not change is left alone: rewriting it would cost a layout. */
  function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
  }

  function showError(msg) {
    $("error").textContent = msg;
  }

  function status(msg) {
    $("status").textContent = msg;
  }

  async function get(path) {
    const r = await fetch(path, { cache: "no-store" });
    let j = null;
    try { j = await r.json(); } catch (e) { /* not JSON: use the status line */ }
    if (!r.ok) throw new Error((j && j.error) || r.status + " " + r.statusText);
    return j;
  }

  async function act(body, label) {
    status(label + "...");
    try {
      const r = await fetch("/api/action", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Kscope-Token": token },
        body: JSON.stringify(body),
      });
      let j = null;
      try { j = await r.json(); } catch (e) { /* not JSON */ }
      if (!r.ok || !j || j.ok === false)
        throw new Error((j && j.error) || r.status + " " + r.statusText);
      showError("");
      status(label + ": done");
      return j;
    } catch (e) {
      showError(label + ": " + e.message);
      status("");
      return null;
    }
  }

  function selVm() {
    const e = m.vms.get(m.sel);
    return e ? e.v : null;
  }

  function cpuCount(vm) {
    const e = m.vms.get(vm);
    const n = e && e.v.cpus ? e.v.cpus : 1;
    return Math.max(n, (m.lanes.get(vm) ?? -1) + 1);
  }

  /* ---- the event stream ---- */
  let es = null;

  function connect() {
    setConn("connecting");
    es = new EventSource("/api/events");
    es.onopen = () => setConn(m.ended ? "ended" : "live");
    es.onerror = () => {
      /* After `end` a server that goes away is no news: the page keeps what it showed. */
      if (es.readyState === EventSource.CLOSED) {
        setConn(m.ended ? "ended" : "disconnected");
        setTimeout(connect, 2000);
      } else {
        setConn(m.ended ? "ended" : "reconnecting");
      }
    };
    const on = (name, fn) => es.addEventListener(name, (e) => {
      stats[name]++;
      let d;
      try { d = JSON.parse(e.data); } catch (x) { return; }
      fn(d);
    });
    on("hello", onHello);
    on("vm", onVm);
    on("test", onTest);
    on("event", onEvent);
    on("console", onConsole);
    on("paused", onPaused);
    on("dropped", (d) => { m.droppedNow = d.dropped || 0; renderDropped(); });
    on("end", onEnd);
  }

  function setConn(s) {
    const c = $("conn");
    c.dataset.conn = s;
    c.textContent = s;
    mark("controls");
  }

  function onHello(info) {
    /* A new stream: its dropped counter starts again at zero. */
    m.droppedBase += m.droppedNow;
    m.droppedNow = 0;
    renderDropped();
    m.info = info;
    m.ended = null;
    $("ended").hidden = true;
    setConn("live");
    $("title").textContent = info.title || "";
    $("mode").textContent = info.mode || "";
    $("version").textContent = info.version ? "kscope " + info.version : "";
    document.title = "kscope" + (info.title ? ": " + info.title : "");
    m.vms.clear();
    for (const v of info.vms || []) m.vms.set(v.vm, { v, at: performance.now() });
    if (!m.vms.has(m.sel)) m.sel = m.vms.size ? m.vms.keys().next().value : 0;
    loadTests(info.tests);
    fillVmSelect();
    mark("vms");
    mark("controls");
    loadConsole(m.sel);
    const ew = $("events-why");
    ew.textContent = info.events_why ? "No monitor events: " + info.events_why : "";
    ew.hidden = !info.events_why;
    if (info.end) onEnd({ why: info.end });
    if (view === "regs" && info.mode !== "run") loadRegs();
  }

  function onVm(v) {
    const had = m.vms.has(v.vm);
    m.vms.set(v.vm, { v, at: performance.now() });
    if (!had) {
      if (!m.sel) m.sel = v.vm;
      fillVmSelect();
    } else {
      updateVmOption(v);
    }
    mark("vms");
    mark("controls");
  }

  function onPaused(p) {
    status("VM " + p.vm + " paused" + (p.why ? ": " + p.why : ""));
    if (p.vm === m.sel && !(m.info && m.info.mode === "run")) loadRegs();
  }

  function onEnd(d) {
    m.ended = d.why || "ended";
    const b = $("ended");
    b.textContent = "Ended: " + m.ended;
    b.hidden = false;
    setConn("ended");
    status("ended: " + m.ended);
  }

  function renderDropped() {
    const n = m.droppedBase + m.droppedNow;
    const d = $("dropped");
    d.textContent = String(n);
    d.classList.toggle("warn", n > 0);
  }

  /* ---- machines ---- */
  function fillVmSelect() {
    const s = $("vm-select");
    s.replaceChildren();
    for (const [n, e] of m.vms) s.append(el("option", { value: n, text: vmLabel(e.v) }));
    s.value = String(m.sel);
    fillCpuSelects();
  }

  function updateVmOption(v) {
    for (const o of $("vm-select").options)
      if (Number(o.value) === v.vm) o.textContent = vmLabel(v);
  }

  function vmLabel(v) {
    return v.vm + ": " + (v.name || "vm") + " (" + v.state + ")";
  }

  function fillCpuSelects() {
    const n = cpuCount(m.sel);
    for (const id of ["step-cpu", "pm-cpu"]) {
      const s = $(id);
      const keep = s.value;
      if (s.options.length === n) continue;
      s.replaceChildren();
      for (let i = 0; i < n; i++) s.append(el("option", { value: i, text: String(i) }));
      if (keep && Number(keep) < n) s.value = keep;
    }
  }

  function renderVms() {
    const box = $("vms");
    const seen = new Set();
    for (const [n, e] of m.vms) {
      const v = e.v;
      const id = "vm-" + n;
      seen.add(id);
      let card = box.querySelector('[data-testid="' + id + '"]');
      if (!card) {
        card = el("article", { class: "card", "data-testid": id });
        card.addEventListener("click", () => selectVm(n));
        box.append(card);
      }
      if (card.dataset.state !== v.state) card.dataset.state = v.state;
      card.classList.toggle("selected", n === m.sel);
      const live = v.state !== "ended";
      const up = (v.uptime_s || 0) + (live ? (performance.now() - e.at) / 1000 : 0);
      const count = (n, what) => n + " " + what + (n === 1 ? "" : "s");
      const topo = v.sockets ? count(v.sockets, "socket") + " x " + count(v.cores, "core") + " x " +
        count(v.threads, "thread") : "";
      const rows = [
        ["state", v.state], ["accel", v.accel], ["machine", v.machine],
        ["cpus", (v.cpus ?? "?") + (topo ? " (" + topo + ")" : "")],
        ["memory", v.memory_mib !== undefined ? v.memory_mib + " MiB" : ""],
        ["uptime", dur(up)], ["kernel", v.kernel], ["tests", vmTests(n)], ["outcome", v.outcome],
      ].filter((r) => r[1] !== null && r[1] !== undefined && r[1] !== "");
      /* The uptime ticks every second: only its own text changes then. */
      const sig = JSON.stringify(rows.filter((r) => r[0] !== "uptime"));
      if (card._sig === sig) {
        setText(card._up, dur(up));
        continue;
      }
      card._sig = sig;
      card.replaceChildren(
        el("h2", {}, el("span", { class: "state s-" + v.state, text: v.state }), " ",
          (v.name || "vm") + " ", el("span", { class: "dim", text: "#" + n })),
        el("dl", {}, ...rows.flatMap((r) => [el("dt", { text: r[0] }),
          el("dd", { text: String(r[1]), "data-row": r[0] })])));
      card._up = card.querySelector('dd[data-row="uptime"]');
    }
    for (const card of [...box.children])
      if (!seen.has(card.dataset.testid)) card.remove();
  }

  function vmTests(vm) {
    const n = {};
    let any = 0;
    for (const e of m.cases.values())
      if (e.c.vm === vm) { n[e.c.status] = (n[e.c.status] || 0) + 1; any++; }
    return any ? Object.keys(n).sort().map((k) => n[k] + " " + k.toLowerCase()).join(", ") : "";
  }

  function selectVm(n) {
    if (n === m.sel) return;
    m.sel = n;
    $("vm-select").value = String(n);
    fillCpuSelects();
    listStale = true;
    mark("vms");
    mark("events");
    mark("controls");
    mark("console");
    if (!m.console.has(n)) loadConsole(n);
    $("regs").replaceChildren();
    if (view === "regs") loadRegs();
  }

  /* ---- controls ---- */
  function renderControls() {
    const info = m.info;
    const v = selVm();
    const allowed = !!(info && info.controls);
    const usable = allowed && v && v.state !== "ended" && $("conn").dataset.conn !== "disconnected";
    for (const id of ["btn-pause", "btn-resume", "btn-step", "step-cpu", "snap-tag", "btn-snap-save",
      "btn-snap-load", "rules", "btn-rules", "btn-rules-clear", "poke-hex", "btn-poke"])
      $(id).disabled = !usable;
    $("btn-pause").classList.toggle("on", !!v && v.state === "paused");
    $("btn-resume").classList.toggle("on", !!v && v.state === "running");
    const why = $("controls-why");
    if (info && !allowed) {
      why.textContent = "Controls are off: " + (info.controls_why || "this server does not allow them");
      why.hidden = false;
    } else {
      why.hidden = true;
    }
  }

  async function pause() {
    if (await act({ vm: m.sel, action: "pause" }, "pause")) loadRegs();
  }

  async function resume() {
    await act({ vm: m.sel, action: "resume" }, "resume");
  }

  async function step() {
    const cpu = Number($("step-cpu").value || 0);
    const j = await act({ vm: m.sel, action: "step", cpu }, "step vCPU " + cpu);
    if (j) {
      if (j.rip) status("step vCPU " + cpu + ": rip " + j.rip + (j.symbol ? " <" + j.symbol + ">" : ""));
      loadRegs();
    }
  }

  async function snapshot(op) {
    const tag = $("snap-tag").value.trim();
    if (!tag) return showError("snapshot: give a tag");
    const j = await act({ vm: m.sel, action: "snapshot", op, tag }, "snapshot " + op + " " + tag);
    if (j && op === "load" && view === "regs") loadRegs();
  }

  async function rules(clear) {
    const list = clear ? [] : $("rules").value.split("\n").map((s) => s.trim())
      .filter((s) => s && !s.startsWith("#"));
    const j = await act({ vm: m.sel, action: "pause_on", rules: list },
      clear ? "clear pause rules" : "pause on " + list.length + " rule(s)");
    if (j) {
      if (clear) $("rules").value = "";
      $("rules-count").textContent = list.length ? "(" + list.length + ")" : "";
    }
  }

  /* ---- tests ---- */
  function loadTests(t) {
    m.suites = [];
    m.cases.clear();
    dirtyCases.clear();
    for (const s of (t && t.suites) || []) {
      const su = addSuite(s.name);
      for (const c of s.cases || []) addCase(su, c);
    }
    mark("tree");
    mark("counts");
  }

  function addSuite(name) {
    const su = { name, cases: [], el: null, head: null, body: null };
    m.suites.push(su);
    return su;
  }

  function caseKey(c) {
    return c.suite + "." + c.name;
  }

  function addCase(su, c) {
    const key = caseKey(c);
    su.cases.push(key);
    m.cases.set(key, { c, row: null, shown: null, ran: c.status === "RUNNING", flashed: false });
  }

  function onTest(c) {
    const key = caseKey(c);
    let e = m.cases.get(key);
    if (!e) {
      let su = m.suites.find((s) => s.name === c.suite);
      const fresh = !su;
      if (!su) su = addSuite(c.suite);
      addCase(su, c);
      e = m.cases.get(key);
      if (fresh || !su.body) mark("tree");
      else appendCaseRow(su, key);
    }
    if (c.status === "RUNNING") { e.ran = true; e.flashed = false; }
    e.c = c;
    dirtyCases.add(key);
    mark("counts");
  }

  function renderTree() {
    const tree = $("test-tree");
    tree.replaceChildren();
    if (!m.suites.length) {
      tree.append(el("p", { class: "dim", text: "No tests yet." }));
      return;
    }
    for (const su of m.suites) {
      su.head = el("summary", {});
      su.body = el("tbody", {});
      su.el = el("details", { class: "suite", open: true }, su.head,
        el("table", { class: "cases" }, su.body));
      tree.append(su.el);
      for (const key of su.cases) appendCaseRow(su, key);
      renderSuiteHead(su);
    }
  }

  function appendCaseRow(su, key) {
    const e = m.cases.get(key);
    e.row = el("tr", { "data-testid": "test-" + key });
    e.row.addEventListener("click", () => showCase(key));
    e.shown = null;
    su.body.append(e.row);
    dirtyCases.add(key);
  }

  function renderCases() {
    const again = [];
    const suites = new Set();
    for (const key of dirtyCases) {
      const e = m.cases.get(key);
      if (!e || !e.row) continue;
      let st = e.c.status;
      /* A case that ran shows RUNNING for at least one frame, however fast it was. */
      if (FINAL.has(st) && e.ran && !e.flashed && e.shown !== "RUNNING") {
        st = "RUNNING";
        again.push(key);
      }
      if (st === "RUNNING" || e.shown === "RUNNING") e.flashed = true;
      drawCase(e, st);
      suites.add(e.c.suite);
      if (key === shownCase) showCase(key);
    }
    dirtyCases.clear();
    for (const k of again) dirtyCases.add(k);
    if (again.length) mark("counts");
    for (const su of m.suites) if (suites.has(su.name)) renderSuiteHead(su);
  }

  function drawCase(e, st) {
    const c = e.c;
    e.shown = st;
    e.row.dataset.status = st;
    e.row.className = "st-" + st;
    e.row.replaceChildren(
      el("td", {}, el("span", { class: "badge b-" + st, text: st })),
      el("td", { class: "name", text: c.name, title: c.id || caseKey(c) }),
      el("td", { class: "vm", text: c.vm ? "vm " + c.vm : "" }),
      el("td", { class: "ms", text: ms(c.duration_ms) }),
      el("td", { class: "reason", text: c.reason || "" }));
  }

  function suiteStatus(su) {
    let running = false, bad = false, pending = false, skip = 0, n = 0;
    for (const key of su.cases) {
      const e = m.cases.get(key);
      const s = e.shown || e.c.status;
      n++;
      if (s === "RUNNING") running = true;
      else if (BAD.has(s)) bad = true;
      else if (s === "PENDING") pending = true;
      else if (s === "SKIP") skip++;
    }
    if (running) return "RUNNING";
    if (bad) return "FAIL";
    if (pending) return "PENDING";
    return n && skip === n ? "SKIP" : "PASS";
  }

  function renderSuiteHead(su) {
    const st = suiteStatus(su);
    su.el.dataset.status = st;
    su.head.replaceChildren(el("span", { class: "badge b-" + st, text: st }), " ",
      el("b", { text: su.name }), " ", el("span", { class: "dim", text: su.cases.length + (su.cases.length === 1 ? " case" : " cases") }));
  }

  function renderCounts() {
    const n = { PASS: 0, FAIL: 0, SKIP: 0, TIMEOUT: 0, CRASHED: 0, NOTRUN: 0, RUNNING: 0, PENDING: 0 };
    for (const e of m.cases.values()) n[e.c.status] = (n[e.c.status] || 0) + 1;
    const total = m.cases.size;
    const done = total - n.RUNNING - n.PENDING;
    const box = $("test-counts");
    const sig = JSON.stringify(n);
    if (box._sig === sig) return;
    box._sig = sig;
    box.replaceChildren(
      el("span", { class: "dim", text: done + "/" + total + " done " }),
      ...Object.keys(n).filter((k) => n[k]).map((k) => el("span", { class: "badge b-" + k, text: k + " " + n[k] })),
      el("div", { class: "progress" }, el("div", {})));
    box.querySelector(".progress div").style.width = (total ? (100 * done) / total : 0) + "%";
    const bad = n.FAIL + n.TIMEOUT + n.CRASHED;
    setText($("tab-tests-count"), total ? done + "/" + total + (bad ? ", " + bad + " bad" : "") : "");
  }

  let shownCase = null;

  function showCase(key) {
    const e = m.cases.get(key);
    if (!e) return;
    shownCase = key;
    const c = e.c;
    const d = $("test-detail");
    const field = (k, v, pre) => v === null || v === undefined || v === "" ? null
      : [el("dt", { text: k }), el("dd", {}, pre ? el("pre", { text: String(v) }) : String(v))];
    d.replaceChildren(el("h3", {}, el("span", { class: "badge b-" + c.status, text: c.status }), " " + key),
      el("dl", {}, ...[field("id", c.id), field("vm", c.vm), field("duration", ms(c.duration_ms)),
        field("reason", c.reason), field("fail_at", c.fail_at), field("diag", c.diag, true),
        field("dump", c.dump, true)].filter(Boolean).flat()));
    for (const r of document.querySelectorAll("#test-tree tr.sel")) r.classList.remove("sel");
    if (e.row) e.row.classList.add("sel");
  }

  /* ---- events ---- */
  function onEvent(ev) {
    const t = performance.now();
    const k = stats.kinds[ev.kind] || (stats.kinds[ev.kind] = { n: 0, first: t, last: t });
    k.n++;
    k.last = t;
    const vm = ev.vm || m.sel;
    if (ev.vcpu !== null && ev.vcpu !== undefined && ev.vcpu > (m.lanes.get(vm) ?? -1)) {
      m.lanes.set(vm, ev.vcpu);
      if (vm === m.sel) listStale = true;
    }
    m.events.push(ev);
    if (m.events.length > 2 * MAX_EVENTS) m.events.splice(0, m.events.length - MAX_EVENTS);
    if (view === "events" && !listStale && !$("ev-freeze").checked && vm === m.sel && m.kinds.has(ev.kind)) {
      pendingRows.push(ev);
      if (pendingRows.length > 2 * LIST_MAX) pendingRows.splice(0, pendingRows.length - LIST_MAX);
    }
    mark("events");
  }

  function evText(e) {
    const s = (x) => (x ? " <" + x + ">" : "");
    switch (e.kind) {
      case "magic": return "id=" + e.id + " a0=" + e.a0 + " a1=" + e.a1 + s(e.sym);
      case "interrupt":
      case "exception":
        return e.vector + (e.vector_name ? " " + e.vector_name : "") +
          (e.error_code ? " err=" + e.error_code : "") + (e.cr2 ? " cr2=" + e.cr2 : "") +
          (e.rip ? " rip=" + e.rip : "") + s(e.rip_sym) + (e.user ? " user" : "");
      case "syscall": return "nr=" + e.nr + " args=(" + (e.args || []).join(",") + ")";
      case "sysret": return "ret=" + e.ret + " rip=" + e.user_rip;
      case "test": return e.phase + " " + e.suite + "." + e.case + (e.phase === "end" ? " " + e.status : "");
      case "vm": return e.what + (e.detail ? " " + e.detail : "");
      case "serial": return "com" + ((e.port || 0) + 1) + ": " + e.text;
      case "breakpoint": return e.addr + s(e.addr_sym);
      case "watchpoint": return e.access + " " + e.addr + s(e.addr_sym) + " pc=" + e.pc + s(e.sym);
      default: return e.pc ? e.pc + s(e.sym) : "";
    }
  }

  function evTime(e) {
    return ((e.ts_ns || 0) / 1e9).toFixed(6);
  }

  function visibleEvent(e) {
    return (e.vm || m.sel) === m.sel && m.kinds.has(e.kind);
  }

  const rowEvent = new WeakMap();

  /* One row: its lane is a mark placed in one cell, so that a row stays a few elements. */
  function evRow(e, lanes) {
    const lane = e.vcpu === null || e.vcpu === undefined ? lanes : Math.min(e.vcpu, lanes);
    const mark = el("span", { class: "mark k-" + e.kind });
    mark.style.marginLeft = lane * LANE_PX + 3 + "px";
    const tr = el("tr", {}, el("td", { class: "seq", text: String(e.seq) }),
      el("td", { class: "ts", text: evTime(e) }), el("td", { class: "lanes" }, mark),
      el("td", { class: "kind k-" + e.kind, text: e.kind }), el("td", { class: "what", text: evText(e) }));
    rowEvent.set(tr, e);
    return tr;
  }

  function evHead(lanes) {
    const names = [];
    for (let i = 0; i <= lanes; i++)
      names.push(el("span", { class: "lanename", text: i === lanes ? "-" : String(i),
        title: i === lanes ? "no vCPU: vm and serial events" : "vCPU " + i }));
    $("ev-cols").replaceChildren(el("col", { class: "c-seq" }), el("col", { class: "c-ts" }),
      el("col", {}), el("col", { class: "c-kind" }), el("col", {}));
    $("ev-cols").children[2].style.width = (lanes + 1) * LANE_PX + 8 + "px";
    $("ev-head").replaceChildren(el("tr", {}, el("th", { text: "seq" }), el("th", { text: "time (s)" }),
      el("th", { class: "lanes", title: "one lane per vCPU" }, ...names), el("th", { text: "kind" }),
      el("th", { text: "what" })));
  }

  function renderEvents() {
    const lanes = cpuCount(m.sel);
    const body = $("ev-body");
    if (!$("ev-freeze").checked) {
      if (listStale) {
        evHead(lanes);
        const pick = [];
        for (let i = m.events.length - 1; i >= 0 && pick.length < LIST_MAX; i--)
          if (visibleEvent(m.events[i])) pick.push(m.events[i]);
        body.replaceChildren(...pick.map((e) => evRow(e, lanes)));
        listStale = false;
        pendingRows = [];
      } else if (pendingRows.length) {
        const frag = document.createDocumentFragment();
        const rows = pendingRows.slice(-LIST_NEW);
        for (let i = rows.length - 1; i >= 0; i--) frag.append(evRow(rows[i], lanes));
        body.prepend(frag);
        pendingRows = [];
        while (body.childElementCount > LIST_MAX) body.lastElementChild.remove();
      }
    }
    setText($("ev-total"), String(stats.event));
    setText($("ev-kept"), m.events.length + " kept in memory, " + body.childElementCount + " listed");
    drawTimeline(lanes);
  }

  const KIND_COLOR = { magic: "#7b3fbf", interrupt: "#2f7ed8", exception: "#d9412b", syscall: "#1a9e77",
    sysret: "#66a61e", test: "#c99700", vm: "#333", serial: "#888", breakpoint: "#e7298a", watchpoint: "#a6761d" };
  const KIND_INDEX = Object.fromEntries(KINDS.map((k, i) => [k, i]));
  const TL = { top: 18, lane: 16, left: 48 };
  let tlRange = null;

  function drawTimeline(lanes) {
    const c = $("timeline");
    const w = c.clientWidth || 800;
    const h = TL.top + (lanes + 1) * TL.lane + 4;
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      c.style.height = h + "px";
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = "11px monospace";
    g.fillStyle = "#555";
    for (let i = 0; i <= lanes; i++) {
      const y = TL.top + i * TL.lane;
      g.fillStyle = i % 2 ? "#f4f5f7" : "#eceef2";
      g.fillRect(TL.left, y, w - TL.left, TL.lane);
      g.fillStyle = "#444";
      g.fillText(i === lanes ? "-" : "cpu" + i, 4, y + 12);
    }
    let last = null, first = null;
    for (let i = m.events.length - 1; i >= 0; i--) {
      const e = m.events[i];
      if ((e.vm || m.sel) !== m.sel) continue;
      if (!last) last = e;
      first = e;
    }
    if (!last) { tlRange = null; return; }
    const win = Number($("ev-window").value) * 1e9;
    const t1 = last.ts_ns;
    const t0 = win ? t1 - win : first.ts_ns;
    const span = Math.max(t1 - t0, 1);
    const pw = w - TL.left - 4;
    tlRange = { t0, span, pw, lanes };
    g.fillStyle = "#444";
    g.fillText((t0 / 1e9).toFixed(3) + " s", TL.left, 12);
    const right = (t1 / 1e9).toFixed(3) + " s";
    g.fillText(right, w - 4 - g.measureText(right).width, 12);
    /* One mark per pixel column and lane (the newest event's kind wins), so that drawing
     * costs the canvas's width, not the number of events. */
    const cols = Math.max(1, Math.ceil(pw));
    const cell = new Int8Array(cols * (lanes + 1)).fill(-1);
    for (let i = m.events.length - 1; i >= 0; i--) {
      const e = m.events[i];
      if (e.ts_ns < t0) break;
      if (!visibleEvent(e)) continue;
      const lane = e.vcpu === null || e.vcpu === undefined ? lanes : Math.min(e.vcpu, lanes);
      const x = Math.min(cols - 1, Math.floor(((e.ts_ns - t0) / span) * pw));
      const at = lane * cols + x;
      if (cell[at] < 0) cell[at] = KIND_INDEX[e.kind] ?? 0;
    }
    for (let k = 0; k < KINDS.length; k++) {
      g.fillStyle = KIND_COLOR[KINDS[k]];
      for (let at = 0; at < cell.length; at++) {
        if (cell[at] !== k) continue;
        const lane = Math.floor(at / cols);
        g.fillRect(TL.left + (at % cols), TL.top + lane * TL.lane + 2, 1.5, TL.lane - 4);
      }
    }
  }

  function timelineClick(ev) {
    if (!tlRange) return;
    const r = $("timeline").getBoundingClientRect();
    const lane = Math.floor((ev.clientY - r.top - TL.top) / TL.lane);
    const t = tlRange.t0 + ((ev.clientX - r.left - TL.left) / tlRange.pw) * tlRange.span;
    let best = null, bd = Infinity;
    for (const e of m.events) {
      if (!visibleEvent(e)) continue;
      const l = e.vcpu === null || e.vcpu === undefined ? tlRange.lanes : Math.min(e.vcpu, tlRange.lanes);
      if (l !== lane) continue;
      const d = Math.abs(e.ts_ns - t);
      if (d < bd) { bd = d; best = e; }
    }
    if (best) showEvent(best);
  }

  function showEvent(e) {
    $("ev-detail").replaceChildren(
      el("h3", {}, el("span", { class: "kind k-" + e.kind, text: e.kind }), " #" + e.seq + " at " + evTime(e) + " s",
        e.vcpu !== null && e.vcpu !== undefined ? " on cpu" + e.vcpu : ""),
      el("p", { class: "mono", text: evText(e) }),
      el("pre", { text: JSON.stringify(e, null, 2) }));
  }

  function buildKinds() {
    const box = $("kinds");
    for (const k of KINDS) {
      const cb = el("input", { type: "checkbox", checked: true });
      cb.addEventListener("change", () => {
        if (cb.checked) m.kinds.add(k); else m.kinds.delete(k);
        listStale = true;
        mark("events");
      });
      box.append(el("label", { class: "kindsel" }, cb, el("span", { class: "kind k-" + k, text: k })));
    }
  }

  /* ---- registers ---- */
  let regsBusy = false, regsAgain = false;

  const FLAG_BITS = {
    rflags: [[0, "CF"], [2, "PF"], [4, "AF"], [6, "ZF"], [7, "SF"], [8, "TF"], [9, "IF"], [10, "DF"],
      [11, "OF"], [14, "NT"], [16, "RF"], [17, "VM"], [18, "AC"], [21, "ID"]],
    cr0: [[0, "PE"], [1, "MP"], [2, "EM"], [3, "TS"], [4, "ET"], [5, "NE"], [16, "WP"], [18, "AM"],
      [29, "NW"], [30, "CD"], [31, "PG"]],
    cr4: [[0, "VME"], [1, "PVI"], [2, "TSD"], [3, "DE"], [4, "PSE"], [5, "PAE"], [6, "MCE"], [7, "PGE"],
      [8, "PCE"], [9, "OSFXSR"], [10, "OSXMMEXCPT"], [11, "UMIP"], [12, "LA57"], [16, "FSGSBASE"],
      [17, "PCIDE"], [18, "OSXSAVE"], [20, "SMEP"], [21, "SMAP"], [22, "PKE"]],
    efer: [[0, "SCE"], [8, "LME"], [10, "LMA"], [11, "NXE"]],
  };

  /* 64-bit registers are shown with all their digits, so that columns line up. */
  const WIDE = /^(r[a-z0-9]+|.s_base|k_gs_base|cr[0-9]|efer)$/;

  function flagsOf(reg, val) {
    const bits = FLAG_BITS[reg];
    if (!bits) return "";
    const v = big(val);
    return bits.filter(([b]) => (v >> BigInt(b)) & 1n).map(([, n]) => n).join(" ");
  }

  let regsTimer = 0;

  /* A pause answers the action and also sends `paused`: one read serves both. */
  function loadRegs() {
    if (!regsTimer) regsTimer = setTimeout(() => { regsTimer = 0; readRegs(); }, 30);
  }

  async function readRegs() {
    if (!m.sel) return;
    if (regsBusy) { regsAgain = true; return; }
    regsBusy = true;
    const vm = m.sel;
    try {
      const j = await get("/api/regs?vm=" + vm);
      if (vm === m.sel) renderRegs(j);
    } catch (e) {
      showError("registers: " + e.message);
    } finally {
      regsBusy = false;
      if (regsAgain) { regsAgain = false; readRegs(); }
    }
  }

  function renderRegs(j) {
    const box = $("regs");
    const tables = [];
    for (const cpu of j.cpus || []) {
      const rows = [];
      for (const [name, val] of Object.entries(cpu.regs || {})) {
        const key = j.vm + "/" + cpu.cpu + "/" + name;
        const prev = m.regsPrev.get(key);
        m.regsPrev.set(key, val);
        const fl = flagsOf(name, val);
        const shown = WIDE.test(name) ? hex(big(val), 16) : String(val);
        rows.push(el("tr", { "data-reg": name, class: prev !== undefined && prev !== val ? "changed" : "" },
          el("th", { text: name }), el("td", { class: "val", text: shown, title: String(val) }),
          el("td", { class: "flags", text: fl })));
      }
      tables.push(el("table", { class: "regtab", "data-testid": "regs-cpu-" + cpu.cpu },
        el("caption", { text: "vCPU " + cpu.cpu + (cpu.mode ? " (" + cpu.mode + ")" : "") }),
        el("tbody", {}, ...rows)));
    }
    box.replaceChildren(...tables);
    $("regs-when").textContent = "read at " + new Date().toLocaleTimeString() +
      (j.paused ? " (the VM was paused for the read)" : "");
  }

  /* ---- memory ---- */
  let memBase = null;

  async function loadMemory(addr) {
    addr = (addr ?? $("mem-addr").value).trim();
    if (!addr) return showError("memory: give an address or a symbol");
    const len = Number($("mem-len").value);
    const space = $("mem-space").value;
    try {
      const j = await get("/api/memory?vm=" + m.sel + "&addr=" + encodeURIComponent(addr) +
        "&len=" + len + "&space=" + space);
      renderMemory(j);
      showError("");
    } catch (e) {
      showError("memory: " + e.message);
    }
  }

  function renderMemory(j) {
    const base = big(j.addr);
    const h = j.hex || "";
    const n = h.length >> 1;
    memBase = base;
    const width = Math.max(8, (base + BigInt(n)).toString(16).length);
    const lines = [];
    for (let off = 0; off < n; off += 16) {
      const bytes = [], asc = [];
      for (let i = off; i < Math.min(off + 16, n); i++) {
        const b = h.substr(2 * i, 2);
        const v = parseInt(b, 16);
        bytes.push(b);
        asc.push(v >= 0x20 && v < 0x7f ? String.fromCharCode(v) : ".");
      }
      lines.push(hex(base + BigInt(off), width) + ": " + bytes.join(" ").padEnd(47) + "  |" + asc.join("") + "|");
    }
    $("mem-hex").textContent = lines.join("\n");
    $("mem-info").textContent = hex(base) + (j.symbol ? " <" + j.symbol + ">" : "") + ", " +
      (j.space || $("mem-space").value) + ", " + n + " bytes, VM " + j.vm;
  }

  /* Writes the bytes of the poke field at the address of the memory view, then reads it back. */
  async function poke() {
    const addr = $("mem-addr").value.trim();
    const hexs = $("poke-hex").value.replace(/\s+/g, "").replace(/^0x/i, "");
    if (!addr) return showError("poke: give an address or a symbol");
    if (!/^([0-9a-fA-F]{2})+$/.test(hexs)) return showError("poke: give whole bytes in hex, e.g. 2a00ff");
    const j = await act({ vm: m.sel, action: "poke", addr, hex: hexs.toLowerCase(), space: $("mem-space").value },
      "poke " + hexs.length / 2 + " byte(s) at " + addr);
    if (j) loadMemory(addr);
  }

  function memMove(dir) {
    if (memBase === null) return;
    const len = BigInt($("mem-len").value);
    const next = dir > 0 ? memBase + len : memBase - len;
    if (next < 0n) return;
    $("mem-addr").value = hex(next);
    loadMemory(hex(next));
  }

  /* ---- page tables ---- */
  async function loadPagemap() {
    const cpu = Number($("pm-cpu").value || 0);
    try {
      const j = await get("/api/pagemap?vm=" + m.sel + "&cpu=" + cpu);
      renderPagemap(j);
      showError("");
    } catch (e) {
      showError("page tables: " + e.message);
    }
  }

  function flagClass(flags) {
    const f = new Set(String(flags || "").split(/\s+/));
    const w = f.has("W"), nx = f.has("NX");
    return (w && !nx ? "f-rwx" : w ? "f-rw" : !nx ? "f-rx" : "f-ro") + (f.has("U") ? " f-user" : "");
  }

  function renderPagemap(j) {
    const ranges = (j.ranges || []).map((r) => ({ r, va: big(r.va), end: big(r.va) + BigInt(r.size) }))
      .sort((a, b) => (a.va < b.va ? -1 : a.va > b.va ? 1 : 0));
    $("pm-info").textContent = "vCPU " + j.cpu + ", CR3 " + j.cr3 + ": " + ranges.length + " ranges" +
      (j.next ? " (more from " + j.next + ", not shown)" : "") + (j.skipped ? ", " + j.skipped + " skipped" : "");
    /* Areas: ranges closer than 1 GiB share one bar drawn to scale. */
    const GAP = 1n << 30n;
    const areas = [];
    for (const x of ranges) {
      const a = areas[areas.length - 1];
      if (a && x.va - a.end <= GAP) { a.items.push(x); if (x.end > a.end) a.end = x.end; }
      else areas.push({ start: x.va, end: x.end, items: [x] });
    }
    const map = $("pm-map");
    map.replaceChildren();
    for (const a of areas) {
      const span = Number(a.end - a.start) || 1;
      const bar = el("div", { class: "pm-bar" });
      for (const x of a.items) {
        const left = (Number(x.va - a.start) / span) * 100;
        const width = (Number(x.end - x.va) / span) * 100;
        const r = x.r;
        const b = el("div", { class: "pm-range " + flagClass(r.flags),
          title: r.va + " -> " + r.pa + ", " + size(r.size) + " in " + size(r.page_size) + " pages, " + r.flags });
        b.style.left = left + "%";
        b.style.width = width + "%";
        b.addEventListener("click", () => {
          $("pm-detail").textContent = r.va + "-" + hex(x.end) + " -> " + r.pa + "  " + size(r.size) +
            " (" + size(r.page_size) + " pages)  " + r.flags;
        });
        bar.append(b);
      }
      map.append(el("div", { class: "pm-area" },
        el("div", { class: "pm-label", text: hex(a.start) + " - " + hex(a.end) + "  (" + size(span) + ", " + a.items.length + " ranges)" }),
        bar));
    }
    $("pm-body").replaceChildren(...ranges.map((x) => el("tr", {},
      el("td", { text: x.r.va + "-" + hex(x.end) }), el("td", { text: x.r.pa }),
      el("td", { text: size(x.r.size) }), el("td", { text: size(x.r.page_size) }),
      el("td", {}, el("span", { class: "sw " + flagClass(x.r.flags) }), " " + x.r.flags))));
  }

  /* ---- console ---- */
  let conShown = 0;     /* the VM whose lines the console shows */
  let conPending = [];  /* lines of that VM not yet in the DOM */

  function conModel(vm) {
    let c = m.console.get(vm);
    if (!c) { c = { lines: [], last: -1 }; m.console.set(vm, c); }
    return c;
  }

  function onConsole(l) {
    const c = conModel(l.vm);
    if (l.lineno !== undefined && l.lineno <= c.last) return;
    c.last = l.lineno ?? c.last + 1;
    c.lines.push(l);
    if (c.lines.length > 2 * CON_MAX) c.lines.splice(0, c.lines.length - CON_MAX);
    if (l.vm === conShown) {
      conPending.push(l);
      if (conPending.length > CON_MAX) conPending.splice(0, conPending.length - CON_MAX);
    }
    mark("console");
  }

  async function loadConsole(vm) {
    if (!vm) return;
    try {
      const j = await get("/api/console?vm=" + vm + "&tail=" + CON_TAIL);
      const c = conModel(vm);
      const got = j.lines || [];
      const lastGot = got.length ? got[got.length - 1].lineno : -1;
      const newer = c.lines.filter((l) => l.lineno > lastGot);
      c.lines = got.concat(newer);
      c.last = c.lines.length ? c.lines[c.lines.length - 1].lineno : -1;
      if (vm === m.sel) { conShown = 0; mark("console"); }
    } catch (e) {
      showError("console: " + e.message);
    }
  }

  const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1bc/g;

  function conLine(l) {
    return el("div", { class: "cl", title: l.ts !== undefined ? "ts " + l.ts : null },
      el("span", { class: "ln", text: String(l.lineno ?? "") }),
      String(l.line ?? "").replace(ANSI, ""));
  }

  function renderConsole() {
    const box = $("console");
    if (conShown !== m.sel) {
      conShown = m.sel;
      conPending = [];
      const c = conModel(m.sel);
      box.replaceChildren(...c.lines.slice(-CON_MAX).map(conLine));
    } else if (conPending.length) {
      const frag = document.createDocumentFragment();
      for (const l of conPending) frag.append(conLine(l));
      conPending = [];
      box.append(frag);
      let extra = box.childElementCount - CON_MAX;
      while (extra-- > 0) box.firstElementChild.remove();
    }
    setText($("con-info"), box.childElementCount + " lines");
    if ($("con-follow").checked) box.scrollTop = box.scrollHeight;
  }

  /* ---- tabs ---- */
  function showView(v) {
    if (!document.querySelector('section.view[data-view="' + v + '"]')) v = "machines";
    view = v;
    for (const s of document.querySelectorAll("section.view")) s.hidden = s.dataset.view !== v;
    for (const b of document.querySelectorAll("nav.tabs button"))
      b.setAttribute("aria-selected", String(b.dataset.view === v));
    if (location.hash !== "#" + v) history.replaceState(null, "", location.pathname + location.search + "#" + v);
    if (v === "events") { listStale = true; mark("events"); }
    if (v === "console") { conShown = 0; mark("console"); }
    /* A run refuses reads that need its VMs paused: there they are only read on request. */
    const auto = m.info && m.info.mode !== "run";
    if (v === "regs" && auto && !$("regs").childElementCount) loadRegs();
    if (v === "pages" && auto && !$("pm-body").childElementCount && m.sel) loadPagemap();
    if (v === "memory") $("mem-addr").focus();
  }

  /* ---- wiring ---- */
  function wire() {
    for (const b of document.querySelectorAll("nav.tabs button"))
      b.addEventListener("click", () => showView(b.dataset.view));
    $("vm-select").addEventListener("change", (e) => selectVm(Number(e.target.value)));
    $("btn-pause").addEventListener("click", pause);
    $("btn-resume").addEventListener("click", resume);
    $("btn-step").addEventListener("click", step);
    $("btn-snap-save").addEventListener("click", () => snapshot("save"));
    $("btn-snap-load").addEventListener("click", () => snapshot("load"));
    $("btn-rules").addEventListener("click", () => rules(false));
    $("btn-rules-clear").addEventListener("click", () => rules(true));
    $("regs-refresh").addEventListener("click", loadRegs);
    $("mem-form").addEventListener("submit", (e) => { e.preventDefault(); loadMemory(); });
    $("mem-prev").addEventListener("click", () => memMove(-1));
    $("btn-poke").addEventListener("click", poke);
    $("mem-next").addEventListener("click", () => memMove(1));
    $("pm-go").addEventListener("click", loadPagemap);
    $("ev-window").addEventListener("change", () => mark("events"));
    $("ev-freeze").addEventListener("change", () => { listStale = true; mark("events"); });
    $("timeline").addEventListener("click", timelineClick);
    $("ev-body").addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (tr && rowEvent.has(tr)) showEvent(rowEvent.get(tr));
    });
    $("console").addEventListener("wheel", (e) => {
      if (e.deltaY < 0) $("con-follow").checked = false;
    }, { passive: true });
    window.addEventListener("resize", () => mark("events"));
    /* Uptimes tick and the event rate is measured once a second. */
    let lastCount = 0;
    setInterval(() => {
      setText($("ev-rate"), "(" + (stats.event - lastCount) + "/s)");
      setText($("ev-total"), String(stats.event));
      lastCount = stats.event;
      if (m.vms.size) mark("vms");
    }, 1000);
  }

  buildKinds();
  wire();
  renderControls();
  renderTree();
  if (!token) status("no token in this page's address: reading works, actions will be refused");
  showView(location.hash.slice(1) || "machines");
  /* The stream opens once the page has loaded and painted: a run that waits for its page
   * (--dashboard-wait) then starts when the browser has little else to do. */
  let started = false;
  const go = () => { if (!started) { started = true; connect(); } };
  /* (A tab opened in the background gets no frames: the timer starts it then.) */
  const start = () => {
    requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(go, 0)));
    setTimeout(go, 300);
  };
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start, { once: true });
})();
