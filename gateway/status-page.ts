/**
 * The gateway's live status page (`GET /`): one self-contained HTML document, no build step, vanilla JS.
 * It polls `/api/pods` and `/api/events` every second, charts total connections, pod count and the connections
 * still on cordoned pods over the last five minutes, lists pods (cordoned ones and the planned victims marked,
 * the placement keys each owns) and scaling/drain/cordon events, looks up a key's owner (`/api/keys/<key>`),
 * and can open a pinned test WebSocket from the browser.
 * Every value from the API is written with textContent, never as HTML.
 */

/** Poll period of the page (ms). */
export const STATUS_PAGE_POLL_MS = 1000;
/** How much history the chart keeps (ms). */
export const STATUS_PAGE_HISTORY_MS = 5 * 60 * 1000;

/** The complete status page. */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rtc-edge status</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#0f1419; --panel:#171e26; --line:#263241; --fg:#e6edf3; --dim:#8b98a5; --conn:#4cc2ff; --pods:#ffb74d; --cord:#c297ff; --ok:#3fb950; --warn:#d29922; --bad:#f85149; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif; background:var(--bg); color:var(--fg); }
  header { display:flex; align-items:center; gap:12px; padding:12px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .sub { color:var(--dim); font-size:13px; }
  #conn-state { margin-left:auto; font-size:13px; color:var(--dim); }
  #conn-state::before { content:''; display:inline-block; width:9px; height:9px; border-radius:50%; background:var(--dim); margin-right:6px; vertical-align:middle; }
  #conn-state.ok::before { background:var(--ok); } #conn-state.bad::before { background:var(--bad); }
  main { padding:16px 20px; display:grid; gap:16px; grid-template-columns:minmax(0,2fr) minmax(300px,1fr); }
  @media (max-width:1000px) { main { grid-template-columns:1fr; } }
  section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px 16px; min-width:0; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 10px; font-weight:600; }
  .cards { display:grid; grid-template-columns:repeat(4,1fr); gap:12px; grid-column:1 / -1; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
  .card .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.06em; }
  .card .value { font-size:30px; font-weight:600; font-variant-numeric:tabular-nums; }
  .card .hint { color:var(--dim); font-size:12px; min-height:1.4em; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
  .wide { grid-column:1 / -1; }
  canvas { width:100%; height:220px; display:block; }
  .legend { display:flex; gap:16px; font-size:12px; color:var(--dim); margin-top:6px; }
  .legend span::before { content:''; display:inline-block; width:14px; height:3px; margin-right:6px; vertical-align:middle; background:currentColor; }
  .legend .c { color:var(--conn); } .legend .p { color:var(--pods); } .legend .k { color:var(--cord); }
  table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--dim); font-weight:500; font-size:12px; }
  td.num, th.num { text-align:right; }
  .bar { display:inline-block; height:8px; background:var(--conn); border-radius:4px; vertical-align:middle; margin-left:8px; opacity:.8; }
  .badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; background:#263241; color:var(--dim); }
  .badge.draining { background:#3d2f0b; color:var(--warn); } .badge.serving { background:#12301b; color:var(--ok); }
  tr.draining td { color:var(--warn); }
  .badge.cordoned { background:#2a1f3d; color:var(--cord); } .badge.victim { background:#3a1618; color:var(--bad); margin-left:4px; }
  tr.cordoned td { color:var(--cord); } tr.cordoned .bar { background:var(--cord); }
  tr.owner td { background:#0e2a3d; }
  #key-form { display:flex; gap:8px; } #key-form input { flex:1; min-width:0; background:#0b1016; color:var(--fg); border:1px solid var(--line); border-radius:6px; padding:6px 8px; font:inherit; }
  #key-result { margin-top:10px; min-height:1.4em; } #key-result.bad { color:var(--bad); } #key-result.none { color:var(--dim); }
  .empty { color:var(--dim); padding:12px 8px; }
  #events { list-style:none; margin:0; padding:0; max-height:420px; overflow:auto; }
  #events li { display:grid; grid-template-columns:70px 86px 1fr; gap:8px; padding:5px 0; border-bottom:1px solid var(--line); font-size:13px; }
  #events .t { color:var(--dim); font-variant-numeric:tabular-nums; }
  .kind { font-size:11px; padding:1px 6px; border-radius:8px; background:#263241; text-align:center; align-self:start; }
  .kind.scale-out { background:#0e2a3d; color:var(--conn); } .kind.scale-in { background:#3a2412; color:var(--pods); }
  .kind.drain-start, .kind.drain-done, .kind.victim { background:#3d2f0b; color:var(--warn); }
  .kind.pod-added { background:#12301b; color:var(--ok); } .kind.pod-removed { background:#3a1618; color:var(--bad); }
  .kind.cordon, .kind.uncordon { background:#2a1f3d; color:var(--cord); } .kind.not-honoured { background:#3a1618; color:var(--bad); }
  button { background:#238636; color:#fff; border:0; border-radius:6px; padding:7px 14px; font:inherit; cursor:pointer; }
  button.secondary { background:#30363d; } button:disabled { opacity:.5; cursor:default; }
  #client-state { color:var(--dim); margin-left:10px; font-size:13px; }
  #welcome { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12px; background:#0b1016; border:1px solid var(--line); border-radius:6px; padding:8px; margin-top:10px; min-height:2.4em; white-space:pre-wrap; word-break:break-all; }
  #client-log { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12px; color:var(--dim); max-height:160px; overflow:auto; margin-top:8px; white-space:pre-wrap; word-break:break-all; }
  .mono { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:13px; }
</style>
</head>
<body>
<header>
  <h1>rtc-edge</h1><span class="sub">live view of the socket pods behind this gateway</span>
  <span id="conn-state">connecting…</span>
</header>
<main>
  <div class="cards">
    <div class="card"><div class="label">Pods (live)</div><div class="value" id="pod-count">–</div><div class="hint" id="pod-hint"></div></div>
    <div class="card"><div class="label">Desired replicas</div><div class="value" id="desired">–</div><div class="hint" id="desired-hint"></div></div>
    <div class="card"><div class="label">Connections</div><div class="value" id="total">–</div><div class="hint" id="total-hint"></div></div>
    <div class="card"><div class="label">Busiest pod</div><div class="value" id="busiest">–</div><div class="hint" id="busiest-hint"></div></div>
  </div>
  <section class="wide">
    <h2>Connections and pods, last minutes</h2>
    <canvas id="chart" aria-label="total connections and pod count over the last five minutes"></canvas>
    <div class="legend"><span class="c">total connections (left axis)</span><span class="k">on cordoned pods (left axis)</span><span class="p">live pods (right axis)</span></div>
  </section>
  <section>
    <h2>Pods</h2>
    <table>
      <thead><tr><th>pod</th><th>address</th><th class="num">connections</th><th class="num" title="placement keys (rooms, documents, matches) this pod owns: moving one disrupts all of its clients at once">keys</th><th>state</th><th class="num" title="controller.kubernetes.io/pod-deletion-cost as the scaler last wrote it (just before a scale-in); lower is removed first">deletion cost</th><th class="num">age</th></tr></thead>
      <tbody id="pods-body"><tr><td class="empty" colspan="7">loading…</td></tr></tbody>
    </table>
  </section>
  <section>
    <h2>Look up a key</h2>
    <form id="key-form"><input id="key-input" name="key" placeholder="room:42" maxlength="128" autocomplete="off" spellcheck="false" aria-label="placement key"><button type="submit">Find owner</button></form>
    <div id="key-result" aria-live="polite"></div>
    <h2 style="margin-top:16px">Test client</h2>
    <button id="connect-btn" type="button">Connect a test client</button>
    <button id="disconnect-btn" type="button" class="secondary" disabled>Disconnect</button>
    <span id="client-state">not connected</span>
    <div id="welcome" aria-live="polite"></div>
    <div id="client-log"></div>
  </section>
  <section class="wide">
    <h2>Scaling, cordon and drain events</h2>
    <ul id="events"><li class="empty">no events yet</li></ul>
  </section>
</main>
<script>
(function () {
  'use strict';
  var POLL_MS = ${STATUS_PAGE_POLL_MS};
  var HISTORY_MS = ${STATUS_PAGE_HISTORY_MS};
  var MIN_WINDOW_MS = 60000;
  var history = [];
  var lookedUp = null; // { key, podId } of the last lookup that found an owner: its row is highlighted
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
  function fmtAge(ms) {
    if (ms === null || ms < 0) return '–';
    var s = Math.floor(ms / 1000);
    if (s < 60) return s + 's';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + (s % 60) + 's';
    var h = Math.floor(m / 60);
    return h + 'h ' + (m % 60) + 'm';
  }
  function fmtTime(t) {
    var d = new Date(t);
    return d.toLocaleTimeString([], { hour12: false });
  }
  function host(p) {
    if (typeof p.ip !== 'string') return '–';
    return (p.ip.indexOf(':') >= 0 ? '[' + p.ip + ']' : p.ip) + ':' + p.port;
  }
  // Deletion cost: per pod when the API gives it, else from the scaler decision's map.
  function deletionCost(p, data) {
    if (num(p.deletionCost) !== null) return p.deletionCost;
    var maps = [data.deletionCosts, data.scaler && data.scaler.deletionCosts, data.decision && data.decision.deletionCosts];
    for (var i = 0; i < maps.length; i++) {
      if (maps[i] && num(maps[i][p.podId]) !== null) return maps[i][p.podId];
    }
    return null;
  }

  function renderPods(data) {
    var pods = Array.isArray(data.pods) ? data.pods.slice() : [];
    pods.sort(function (a, b) { return (b.connections || 0) - (a.connections || 0) || String(a.podId).localeCompare(String(b.podId)); });
    var total = num(data.totalConnections);
    var totalKeys = pods.reduce(function (s, p) { return s + (num(p.keyCount) || 0); }, 0);
    if (total === null) total = pods.reduce(function (s, p) { return s + (p.connections || 0); }, 0);
    var max = pods.reduce(function (m, p) { return Math.max(m, p.connections || 0); }, 0);
    var draining = pods.filter(function (p) { return p.draining; }).length;
    var victims = Array.isArray(data.victims) ? data.victims.map(String) : [];
    var cordoned = pods.filter(function (p) { return p.cordoned && !p.draining; });
    var onCordoned = cordoned.reduce(function (s, p) { return s + (p.connections || 0); }, 0);
    var body = $('pods-body');
    body.textContent = '';
    if (pods.length === 0) {
      var tr0 = el('tr'); var td0 = el('td', 'empty', 'no live socket pods'); td0.colSpan = 7; tr0.appendChild(td0); body.appendChild(tr0);
    }
    var now = Date.now();
    pods.forEach(function (p) {
      var tr = el('tr', (p.draining ? 'draining' : p.cordoned ? 'cordoned' : '') + (lookedUp && lookedUp.podId === p.podId ? ' owner' : ''));
      tr.setAttribute('data-pod-id', String(p.podId));
      tr.appendChild(el('td', 'mono', p.podId));
      tr.appendChild(el('td', 'mono', host(p)));
      var c = el('td', 'num');
      c.appendChild(el('span', 'conn', p.connections));
      var bar = el('span', 'bar'); bar.style.width = (max > 0 ? Math.round(60 * (p.connections || 0) / max) : 0) + 'px'; c.appendChild(bar);
      tr.appendChild(c);
      var keyCount = num(p.keyCount);
      var k = el('td', 'num keys', keyCount === null ? '–' : keyCount);
      var listed = Array.isArray(p.keys) ? p.keys.map(String) : [];
      if (listed.length) k.title = listed.join(', ') + (keyCount !== null && keyCount > listed.length ? ' … (' + (keyCount - listed.length) + ' more)' : '');
      tr.appendChild(k);
      var state = p.draining ? 'draining' : p.cordoned ? 'cordoned' : 'serving';
      var st = el('td'); st.appendChild(el('span', 'badge ' + state, state));
      if (!p.draining && victims.indexOf(String(p.podId)) >= 0) {
        var v = el('span', 'badge victim', 'planned victim'); v.title = 'the next scale-in removes this pod once its clients have left'; st.appendChild(v);
      }
      tr.appendChild(st);
      var cost = deletionCost(p, data);
      tr.appendChild(el('td', 'num cost', cost === null ? '–' : cost));
      tr.appendChild(el('td', 'num age', fmtAge(num(p.startedAt) !== null ? now - p.startedAt : null)));
      body.appendChild(tr);
    });
    $('pod-count').textContent = String(pods.length);
    var current = num(data.currentReplicas);
    $('pod-hint').textContent = (draining ? draining + ' draining' : 'none draining') + (cordoned.length ? ' · ' + cordoned.length + ' cordoned' : '') + (current !== null ? ' · workload ' + current : '');
    var desired = num(data.desiredReplicas);
    $('desired').textContent = desired === null ? '–' : String(desired);
    var reason = data.reason || (data.scaler && data.scaler.reason) || (data.decision && data.decision.reason) || '';
    $('desired-hint').textContent = desired === null ? 'no scaler has reported yet' : reason;
    $('desired-hint').title = reason;
    $('total').textContent = String(total);
    $('total-hint').textContent = (pods.length ? 'avg ' + Math.round(total / pods.length) + ' per pod' : '') + (totalKeys ? ' · ' + totalKeys + ' keys' : '');
    var busiest = pods[0];
    $('busiest').textContent = busiest ? String(busiest.connections) : '–';
    $('busiest-hint').textContent = busiest ? String(busiest.podId) : '';
    history.push({ t: now, conns: total, pods: pods.length, cordoned: onCordoned });
    while (history.length && history[0].t < now - HISTORY_MS) history.shift();
    drawChart();
  }

  function renderEvents(data) {
    var list = $('events');
    var events = Array.isArray(data.events) ? data.events : [];
    list.textContent = '';
    if (events.length === 0) { list.appendChild(el('li', 'empty', 'no events yet')); return; }
    events.slice(0, 50).forEach(function (e) {
      var li = el('li');
      li.setAttribute('data-kind', String(e.kind));
      li.appendChild(el('span', 't', fmtTime(e.at)));
      li.appendChild(el('span', 'kind ' + String(e.kind).replace(/[^a-z-]/g, ''), e.kind));
      li.appendChild(el('span', 'msg', e.message + (e.podId && String(e.message).indexOf(e.podId) < 0 ? ' (' + e.podId + ')' : '')));
      list.appendChild(li);
    });
  }

  function drawChart() {
    var canvas = $('chart');
    var dpr = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    var padL = 44, padR = 34, padT = 8, padB = 20;
    var pw = w - padL - padR, ph = h - padT - padB;
    // The window grows with the data from one minute up to HISTORY_MS, so a fresh page is not a sliver at the right.
    var now = Date.now();
    var span = history.length ? Math.min(HISTORY_MS, Math.max(MIN_WINDOW_MS, now - history[0].t)) : MIN_WINDOW_MS;
    var t0 = now - span;
    var maxC = Math.max(8, history.reduce(function (m, s) { return Math.max(m, s.conns); }, 0));
    var maxP = Math.max(2, history.reduce(function (m, s) { return Math.max(m, s.pods); }, 0));
    maxC = 4 * niceTick(maxC / 4); maxP = Math.ceil((maxP + 1) / 4) * 4;
    var css = getComputedStyle(document.documentElement);
    ctx.font = '11px system-ui, sans-serif';
    ctx.strokeStyle = css.getPropertyValue('--line'); ctx.fillStyle = css.getPropertyValue('--dim');
    ctx.lineWidth = 1;
    for (var i = 0; i <= 4; i++) {
      var y = padT + ph - (ph * i) / 4;
      ctx.beginPath(); ctx.moveTo(padL, y + 0.5); ctx.lineTo(padL + pw, y + 0.5); ctx.stroke();
      ctx.textAlign = 'right'; ctx.fillText(String(Math.round((maxC * i) / 4 * 10) / 10), padL - 6, y + 4);
      ctx.textAlign = 'left'; ctx.fillText(String((maxP * i) / 4), padL + pw + 6, y + 4);
    }
    ctx.textAlign = 'center';
    for (var m = 0; m <= 5; m++) {
      var ago = Math.round((span * (5 - m)) / 5 / 1000);
      ctx.fillText(m === 5 ? 'now' : '-' + (ago >= 60 && ago % 60 === 0 ? ago / 60 + 'm' : ago + 's'), padL + (pw * m) / 5, h - 4);
    }
    function x(t) { return padL + ((t - t0) / span) * pw; }
    function line(key, max, color, step) {
      if (history.length === 0) return;
      ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.beginPath();
      history.forEach(function (s, i) {
        var px = x(s.t), py = padT + ph - (ph * s[key]) / max;
        if (i === 0) ctx.moveTo(px, py);
        else if (step) { ctx.lineTo(px, padT + ph - (ph * history[i - 1][key]) / max); ctx.lineTo(px, py); }
        else ctx.lineTo(px, py);
      });
      ctx.stroke();
    }
    line('conns', maxC, css.getPropertyValue('--conn'), false);
    line('cordoned', maxC, css.getPropertyValue('--cord'), false);
    line('pods', maxP, css.getPropertyValue('--pods'), true);
  }
  // A round tick so that the four grid lines of the connections axis carry readable numbers.
  function niceTick(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function getJson(path) {
    return fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error(path + ' answered ' + r.status);
      return r.json();
    });
  }

  var pollTimer;
  function poll() {
    Promise.all([getJson('/api/pods'), getJson('/api/events').catch(function () { return null; })]).then(function (res) {
      renderPods(res[0]);
      if (res[1]) renderEvents(res[1]);
      var s = $('conn-state'); s.className = 'ok'; s.textContent = 'live · updated ' + fmtTime(Date.now());
    }).catch(function (err) {
      var s = $('conn-state'); s.className = 'bad'; s.textContent = 'gateway unreachable: ' + err.message;
    }).then(function () { pollTimer = setTimeout(poll, POLL_MS); });
  }

  // Key lookup: the server decides what a key is (400 invalid_key); the page only shows the answer.
  function lookUpKey(ev) {
    ev.preventDefault();
    var key = $('key-input').value.trim();
    var out = $('key-result');
    out.className = ''; out.textContent = 'looking up…';
    fetch('/api/keys/' + encodeURIComponent(key), { cache: 'no-store', headers: { accept: 'application/json' } }).then(function (r) {
      return r.json().then(function (b) { return { status: r.status, body: b }; });
    }).then(function (a) {
      var b = a.body || {};
      if (a.status === 200) {
        lookedUp = { key: String(b.key), podId: String(b.podId) };
        var p = b.pod;
        var state = !p ? 'not live: the next assign moves it' : p.draining ? 'draining' : p.cordoned ? 'cordoned' : 'serving';
        out.textContent = b.key + ' → ' + b.podId + ' (' + state + (p ? ', ' + p.connections + ' connections, ' + p.keyCount + ' keys' : '') + ')';
        out.setAttribute('data-owner', String(b.podId));
      } else {
        lookedUp = null;
        out.removeAttribute('data-owner');
        out.className = b.error === 'key_not_found' ? 'none' : 'bad';
        out.textContent = b.error === 'key_not_found' ? 'nobody owns ' + key + ' (no client of it is connected)' : (b.error || ('answered ' + a.status)) + ': ' + (b.message || '');
      }
      var rows = document.querySelectorAll('#pods-body tr[data-pod-id]');
      for (var i = 0; i < rows.length; i++) rows[i].classList.toggle('owner', !!lookedUp && rows[i].getAttribute('data-pod-id') === lookedUp.podId);
    }).catch(function (err) {
      lookedUp = null;
      out.className = 'bad'; out.textContent = 'lookup failed: ' + err.message;
    });
  }
  $('key-form').addEventListener('submit', lookUpKey);

  // The test client: the same protocol as examples/client.ts, in a few lines of browser JS.
  var testWs = null, retryTimer = null, wanted = false;
  function clientLog(line) {
    var log = $('client-log');
    log.textContent = fmtTime(Date.now()) + ' ' + line + '\\n' + log.textContent.slice(0, 4000);
  }
  function setClientState(text) { $('client-state').textContent = text; }
  function connectTestClient() {
    wanted = true;
    $('connect-btn').disabled = true; $('disconnect-btn').disabled = false;
    setClientState('assigning…');
    fetch('/ws/assign', { cache: 'no-store', headers: { accept: 'application/json' } }).then(function (r) {
      return r.json().then(function (b) { return { status: r.status, body: b }; });
    }).then(function (a) {
      if (!wanted) return;
      if (a.status !== 200) throw new Error('assign answered ' + a.status + ' ' + (a.body && a.body.error));
      clientLog('assigned ' + a.body.podId + ' → ' + a.body.url);
      var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + a.body.url;
      setClientState('connecting to ' + a.body.podId + '…');
      var ws = new WebSocket(url);
      testWs = ws;
      var notice = null, opened = false;
      ws.onopen = function () { opened = true; setClientState('connected to ' + a.body.podId); };
      ws.onmessage = function (ev) {
        var msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === 'welcome') $('welcome').textContent = JSON.stringify(msg, null, 2);
        if (msg.type === 'reconnect') notice = msg;
        clientLog('← ' + ev.data);
      };
      ws.onclose = function (ev) {
        if (testWs !== ws) return;
        testWs = null;
        clientLog('closed ' + ev.code + (ev.reason ? ' ' + ev.reason : ''));
        if (!wanted) return;
        var delay = notice ? notice.retryAfterMs * (1 + 0.5 * Math.random()) : (opened ? 1000 : 2000);
        setClientState('re-assigning in ' + Math.round(delay) + ' ms');
        retryTimer = setTimeout(connectTestClient, delay);
      };
    }).catch(function (err) {
      clientLog('error: ' + err.message);
      if (wanted) { setClientState('retrying in 2 s'); retryTimer = setTimeout(connectTestClient, 2000); }
    });
  }
  function disconnectTestClient() {
    wanted = false;
    clearTimeout(retryTimer);
    if (testWs) { var ws = testWs; testWs = null; ws.close(1000, 'status page'); clientLog('disconnected'); }
    $('connect-btn').disabled = false; $('disconnect-btn').disabled = true;
    setClientState('not connected');
  }
  $('connect-btn').addEventListener('click', connectTestClient);
  $('disconnect-btn').addEventListener('click', disconnectTestClient);
  window.addEventListener('resize', drawChart);
  poll();
})();
</script>
</body>
</html>
`;
