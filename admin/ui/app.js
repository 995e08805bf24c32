// Bulwark admin dashboard: renders the WebSocket feed served next to this
// page. Every URL is derived from the page's own location, so the admin
// handler works under any prefix. Data is written with textContent only.
(function () {
  'use strict';

  var TOKEN_KEY = 'bulwark.admin.token';
  var MAX_EVENTS = 100;

  var base = location.pathname.endsWith('/') ? location.pathname : location.pathname.replace(/[^/]*$/, '');
  var wsURL = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + base + 'ws';

  var token = sessionStorage.getItem(TOKEN_KEY) || '';
  var status = null;        // latest snapshot, patched by events
  var receivedAt = 0;       // performance.now() when status arrived
  var serverNow = 0;        // status.generated_at in ms
  var rates = new Map();    // endpoint -> requests per second
  var prevTotals = null;    // {at: ms, totals: Map(endpoint -> total)}
  var events = [];          // newest first
  var lastSeq = 0;
  var missed = 0;
  var ws = null;
  var backoff = 500;
  var reconnectTimer = 0;
  var countdownTimer = 0;
  var failures = 0;
  var settings = { endpoint: '', dirty: false, available: false }; // the editor's endpoint
  // The sampled series of GET history, extended by each snapshot's sample.
  var hist = { loaded: false, intervalMs: 0, windowMs: 900000, maxPoints: 900, series: new Map(), faults: [] };
  var recentSamples = [];   // the last few snapshot samples, re-applied after a history load
  // Fault experiments from GET faults: available is false when the service has no such route.
  var faults = { available: null, enabled: false, list: [], loadedAt: 0, note: '' };
  var faultsTimer = 0;

  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // patchChildren makes parent's children match those of next (a node or
  // a fragment built afresh), keeping the nodes already there wherever they
  // match: the lists are drawn again on every message, and a new node
  // would take a button's focus, or the target of a click in progress,
  // away from under the pointer. Elements are matched by their key
  // (data-id, data-endpoint, data-action, data-instance), else by position;
  // a kept node keeps its listeners, which is right since a key names the
  // same thing from one drawing to the next.
  function patchChildren(parent, next) {
    var byKey = new Map();
    parent.childNodes.forEach(function (c) {
      var k = nodeKey(c);
      if (k !== null) byKey.set(k, c);
    });
    var at = parent.firstChild;
    Array.prototype.slice.call(next.childNodes).forEach(function (n) {
      var k = nodeKey(n);
      var cur = k !== null ? byKey.get(k) : at;
      if (k !== null) byKey.delete(k);
      if (cur && nodeKey(cur) === k && patchNode(cur, n)) {
        if (cur === at) at = at.nextSibling;
        else parent.insertBefore(cur, at);
        return;
      }
      parent.insertBefore(n, at);
    });
    while (at) {
      var after = at.nextSibling;
      parent.removeChild(at);
      at = after;
    }
  }

  function nodeKey(n) {
    if (n.nodeType !== 1) return null;
    var d = n.dataset;
    var k = d.id || d.endpoint || d.action || d.instance;
    return k ? n.nodeName + ' ' + k : null;
  }

  // patchNode makes cur look like next, if it is the same kind of node.
  function patchNode(cur, next) {
    if (cur.nodeType !== next.nodeType || cur.nodeName !== next.nodeName) return false;
    if (cur.nodeType !== 1) {
      if (cur.nodeValue !== next.nodeValue) cur.nodeValue = next.nodeValue;
      return true;
    }
    // Styles go through the CSSOM: the page's CSP refuses style attributes.
    if (cur.style.cssText !== next.style.cssText) cur.style.cssText = next.style.cssText;
    Array.prototype.forEach.call(next.attributes, function (a) {
      if (a.name !== 'style' && cur.getAttribute(a.name) !== a.value) cur.setAttribute(a.name, a.value);
    });
    Array.prototype.slice.call(cur.attributes).forEach(function (a) {
      if (a.name !== 'style' && !next.hasAttribute(a.name)) cur.removeAttribute(a.name);
    });
    patchChildren(cur, next);
    return true;
  }

  function b64url(s) {
    var bytes = new TextEncoder().encode(s);
    var bin = '';
    bytes.forEach(function (b) { bin += String.fromCharCode(b); });
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // ---- connection -------------------------------------------------------

  function setConn(state, text) {
    $('conn').dataset.state = state;
    $('conn-text').textContent = text;
  }

  function banner(text) {
    var b = $('banner');
    b.hidden = !text;
    b.textContent = text || '';
  }

  function connect() {
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    var protocols = ['bulwark.v1'];
    if (token) protocols.push('bulwark.token.' + b64url(token));
    setConn('connecting', 'Connecting…');
    try {
      ws = new WebSocket(wsURL, protocols);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    var sock = ws;
    sock.onopen = function () {
      backoff = 500;
      failures = 0;
      setConn('live', 'Live');
      banner('');
      loadHistory();
      loadSeries();
      loadFaults();
    };
    sock.onmessage = function (e) {
      var msg;
      try { msg = JSON.parse(e.data); } catch (err) { return; }
      handle(msg);
    };
    sock.onclose = function (e) {
      if (sock !== ws) return;
      ws = null;
      failures++;
      if (e.code === 1008) banner('The feed disconnected this page for falling behind; reconnecting.');
      scheduleReconnect();
      if (failures >= 2) diagnose();
    };
  }

  function scheduleReconnect() {
    var delay = Math.min(backoff, 15000) * (0.8 + Math.random() * 0.4);
    backoff = Math.min(backoff * 2, 15000);
    var until = Date.now() + delay;
    var tick = function () {
      var left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setConn('offline', 'Reconnecting in ' + left + 's');
    };
    tick();
    clearTimeout(reconnectTimer);
    clearInterval(countdownTimer);
    reconnectTimer = setTimeout(connect, delay);
    countdownTimer = setInterval(tick, 500);
  }

  // A WebSocket handshake failure carries no status; ask the status route
  // why, so the page can say that a token is needed.
  function diagnose() {
    fetch(base + 'status', { headers: authHeaders(), cache: 'no-store' }).then(function (r) {
      if (r.status === 401) {
        banner(token ? 'The admin token was refused. Enter the right one above.' : 'This dashboard needs the admin token. Enter it above.');
        $('token-input').focus();
      } else if (r.status === 503) {
        banner('The feed is at its subscriber limit; retrying.');
      }
    }).catch(function () {});
  }

  // The feed sends only what happens from now on; the recent past comes
  // from the events route.
  function loadHistory() {
    fetch(base + 'events', { headers: authHeaders(), cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (h) {
        if (!h || !Array.isArray(h.events)) return;
        var seen = new Set(events.map(function (e) { return e.seq; }));
        h.events.forEach(function (e) { if (!seen.has(e.seq) && listed(e)) events.push(e); });
        events.sort(function (a, b) { return (b.seq || 0) - (a.seq || 0); });
        if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
        render();
      }).catch(function () {});
  }

  // listed says whether an event belongs in the list: a store's periodic
  // list of members is news for the cluster panel only.
  function listed(e) { return !(e.type === 'store_status' && e.status === 'members'); }

  function authHeaders() {
    var h = {};
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  }

  // ---- messages ---------------------------------------------------------

  function handle(msg) {
    if (msg.type === 'snapshot') {
      applySnapshot(msg);
      return;
    }
    if (typeof msg.seq === 'number') {
      if (lastSeq && msg.seq > lastSeq + 1) missed += msg.seq - lastSeq - 1;
      lastSeq = Math.max(lastSeq, msg.seq);
    }
    if (listed(msg)) events.unshift(msg);
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    if (msg.type === 'state_change') applyStateChange(msg);
    if (msg.type === 'alert') applyAlert(msg);
    if (msg.type === 'config_change' && msg.endpoint === settings.endpoint && !settings.dirty) refreshEndpoint(msg.endpoint);
    if (msg.type === 'store_status' && Array.isArray(msg.instances) && msg.instances.length && status) {
      status.cluster = { instances: msg.instances.slice().sort(function (a, b) { return a.id < b.id ? -1 : a.id > b.id ? 1 : 0; }) };
    }
    if (msg.type === 'fault_start' || msg.type === 'fault_end') {
      noteFault(msg);
      renderTrends();
      clearTimeout(faultsTimer);
      faultsTimer = setTimeout(loadFaults, 200);
    }
    render();
  }

  function applySnapshot(s) {
    var at = Date.parse(s.generated_at);
    var totals = new Map();
    (s.breakers || []).forEach(function (b) { totals.set(b.endpoint, b.total_requests); });
    if (prevTotals && at > prevTotals.at) {
      var dt = (at - prevTotals.at) / 1000;
      totals.forEach(function (t, ep) {
        var p = prevTotals.totals.get(ep);
        if (p !== undefined && t >= p) rates.set(ep, (t - p) / dt);
      });
    }
    if (!prevTotals || at - prevTotals.at >= 1000) prevTotals = { at: at, totals: totals };
    status = s;
    serverNow = at;
    receivedAt = performance.now();
    lastSeq = Math.max(lastSeq, s.seq || 0);
    if (s.sample) {
      recentSamples.push(s.sample);
      if (recentSamples.length > 5) recentSamples.shift();
      appendSample(s.sample);
    }
    render();
    renderTrends();
  }

  function applyStateChange(e) {
    if (!status) return;
    var b = (status.breakers || []).find(function (x) { return x.endpoint === e.endpoint; });
    if (!b) {
      b = { endpoint: e.endpoint, total_requests: 0, failure_rate: 0, slow_call_rate: 0 };
      status.breakers.push(b);
    }
    b.state = e.new_state;
    b.reason = e.reason;
    b.last_state_change = e.timestamp;
    if (e.new_state !== 'Open') { delete b.open_until; b.retry_after_seconds = 0; }
    if (e.new_state !== 'ForcedOpen') { delete b.held_by; delete b.hold_until; }
    // Learn when an Open breaker will half-open, or who holds a forced one.
    if (e.new_state === 'Open' || e.new_state === 'ForcedOpen') refreshEndpoint(e.endpoint);
  }

  function applyAlert(a) {
    if (!status) return;
    var list = (status.alerts || []).filter(function (x) { return x.id !== a.id; });
    if (!a.resolved) list.push(a);
    status.alerts = list;
  }

  function refreshEndpoint(ep) {
    fetch(base + 'status/' + encodeURIComponent(ep), { headers: authHeaders(), cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (es) {
        if (!es || !status) return;
        if (settings.endpoint === ep) showSettings(es);
        if (!es.breaker) return;
        var i = status.breakers.findIndex(function (x) { return x.endpoint === ep; });
        // Express open_until on the snapshot's clock so the countdown stays right.
        var b = es.breaker;
        if (b.open_until) {
          var left = Date.parse(b.open_until) - Date.parse(es.generated_at);
          b.open_until = new Date(serverNow + (performance.now() - receivedAt) + left).toISOString();
        }
        if (i >= 0) status.breakers[i] = b; // a whole breaker status
        render();
      }).catch(function () {});
  }

  // ---- rendering --------------------------------------------------------

  function endpoints() {
    var names = new Set();
    var add = function (list) { (list || []).forEach(function (x) { if (x.endpoint) names.add(x.endpoint); }); };
    add(status.breakers); add(status.bulkheads); add(status.slos); add(status.health);
    return Array.from(names).sort();
  }

  function byEndpoint(list) {
    var m = new Map();
    (list || []).forEach(function (x) { if (!m.has(x.endpoint)) m.set(x.endpoint, x); });
    return m;
  }

  function fmtRate(v) {
    if (v === undefined) return '–';
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function pct(v) { return (v || 0).toFixed(1) + '%'; }

  function bar(fraction, cls, label) {
    var line = el('div', 'barline');
    var b = el('div', 'bar ' + (cls || ''));
    var fill = el('span');
    fill.style.width = Math.max(0, Math.min(100, fraction * 100)).toFixed(1) + '%';
    b.appendChild(fill);
    line.appendChild(b);
    line.appendChild(el('small', '', label));
    return line;
  }

  function remainingMs(b) {
    if (b.state !== 'Open' || !b.open_until) return null;
    var now = serverNow + (performance.now() - receivedAt);
    return Math.max(0, Date.parse(b.open_until) - now);
  }

  function fmtCountdown(ms) {
    var s = Math.ceil(ms / 1000);
    if (s >= 3600) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    if (s >= 60) return Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
    return s + 's';
  }

  function render() {
    if (!status) return;
    var brk = byEndpoint(status.breakers);
    var bhs = byEndpoint(status.bulkheads);
    var slos = byEndpoint(status.slos);
    var rls = byEndpoint(status.rate_limits);
    var als = byEndpoint(status.adaptive_limits);
    var hc = byEndpoint(status.health);
    var names = endpoints();
    var body = $('endpoints');
    var rows = document.createDocumentFragment();
    var open = 0, half = 0, rps = 0, violated = 0;

    names.forEach(function (name) {
      var b = brk.get(name), bh = bhs.get(name), slo = slos.get(name), h = hc.get(name);
      var state = b ? b.state : null;
      if (state === 'Open' || state === 'ForcedOpen') open++;
      if (state === 'HalfOpen') half++;
      if (slo && slo.violated) violated++;
      var tr = el('tr', state ? 'state-' + state : '');
      tr.dataset.endpoint = name;

      var tdName = el('td', 'endpoint', name);
      tdName.title = name;
      if (b && b.reason) {
        var why = el('span', 'reason', b.reason);
        why.title = b.reason;
        tdName.appendChild(why);
      }
      tr.appendChild(tdName);

      var tdState = el('td');
      var badge = el('span', 'badge state ' + (state || 'none'), state ? state.replace('HalfOpen', 'Half-open').replace('ForcedOpen', 'Forced open') : 'no breaker');
      badge.dataset.state = state || '';
      tdState.appendChild(badge);
      tr.appendChild(tdState);

      var r = currentRate(name);
      if (r !== undefined) rps += r;
      tr.appendChild(el('td', 'num', b ? fmtRate(r) : '–'));
      var fr = el('td', 'num rate' + (b && b.failure_rate >= 25 ? ' high' : ''), b ? pct(b.failure_rate) : '–');
      if (b) fr.title = b.window_failures + ' of ' + b.window_requests + ' calls in the window' +
        (b.timeouts ? '; ' + b.timeouts + ' timed out since start' : '');
      tr.appendChild(fr);
      tr.appendChild(el('td', 'num rate', b ? pct(b.slow_call_rate) : '–'));

      var tdCd = el('td');
      var ms = b ? remainingMs(b) : null;
      if (ms !== null) {
        var cd = el('span', 'countdown', fmtCountdown(ms));
        cd.dataset.endpoint = name;
        tdCd.appendChild(cd);
      } else if (state === 'ForcedOpen' && b.held_by) {
        // A component's hold is a lease: it ends by itself unless renewed.
        var hold = el('span', 'hold', 'held by ' + b.held_by + (b.hold_until ? ' until ' + clock(b.hold_until) : ''));
        hold.title = 'A component holds this breaker open; the hold lapses at the time shown unless its owner renews it.';
        tdCd.appendChild(hold);
      } else {
        tdCd.appendChild(el('span', 'dim', state === 'ForcedOpen' ? 'held open by an operator' : '–'));
      }
      tr.appendChild(tdCd);

      var tdBh = el('td');
      if (bh && bh.max_concurrent > 0) {
        var f = bh.active / bh.max_concurrent;
        var label = bh.active + '/' + bh.max_concurrent + (bh.queued ? ' +' + bh.queued + 'q' : '');
        tdBh.appendChild(bar(f, f >= 0.9 ? 'bad' : f >= 0.7 ? 'warn' : '', label));
        tdBh.title = 'rejected ' + bh.rejected + ', timed out ' + bh.timed_out;
      } else tdBh.appendChild(el('span', 'dim', bh ? 'unbounded' : '–'));
      tr.appendChild(tdBh);

      // The adaptive concurrency limit (admitted in flight against the
      // limit now) and the rate limit (its rate in force, refusals).
      var tdLim = el('td', 'limits');
      var al = als.get(name), rl = rls.get(name);
      if (al) {
        var af = al.limit > 0 ? al.in_flight / al.limit : 0;
        var shed = (al.shed || []).reduce(function (a, n) { return a + n; }, 0);
        tdLim.appendChild(bar(af, af >= 0.9 ? 'bad' : af >= 0.7 ? 'warn' : '', al.in_flight + '/' + al.limit + (al.queued ? ' +' + al.queued + 'q' : '')));
        tdLim.title = 'adaptive limit ' + al.limit + ', shed ' + shed + ', latency ' + al.recent_ms.toFixed(1) + ' ms (healthy ' + al.baseline_ms.toFixed(1) + ' ms)';
      }
      if (rl) {
        tdLim.appendChild(el('small', 'ratelimit', fmtRate(rl.rate) + '/s' + (rl.refused ? ' · ' + rl.refused + ' refused' : '')));
        tdLim.title = (tdLim.title ? tdLim.title + '; ' : '') + 'rate limit: allowed ' + rl.allowed + ', refused ' + rl.refused +
          (rl.shared ? ', ' + (100 * rl.share).toFixed(1) + '% of the cluster\'s limit' : '');
      }
      if (!al && !rl) tdLim.appendChild(el('span', 'dim', '–'));
      tr.appendChild(tdLim);

      var tdSlo = el('td', 'slo');
      if (slo) {
        // error_budget_remaining is a ratio: 1 is the whole budget, below 0 overspent.
        var left = Math.max(0, Math.min(100, slo.error_budget_remaining * 100));
        tdSlo.appendChild(bar(left / 100, left <= 10 ? 'bad' : left <= 40 ? 'warn' : 'good',
          slo.error_budget_remaining > 0 ? left.toFixed(0) + '% left' : 'spent'));
        tdSlo.title = 'success ' + (slo.success_rate * 100).toFixed(2) + '% (target ' + (slo.target * 100).toFixed(2) +
          '%), burn ' + slo.short_burn_rate.toFixed(1) + '× short / ' + slo.long_burn_rate.toFixed(1) + '× long';
      } else tdSlo.appendChild(el('span', 'dim', '–'));
      tr.appendChild(tdSlo);

      var tdH = el('td');
      if (h) {
        tdH.appendChild(el('span', 'hdot ' + (h.healthy ? 'ok' : 'fail')));
        tdH.appendChild(document.createTextNode(h.healthy ? 'healthy' : 'failing ×' + h.consecutive_failures));
        tdH.title = h.probe + (h.last && h.last.error ? ': ' + h.last.error : '');
      } else tdH.appendChild(el('span', 'dim', '–'));
      tr.appendChild(tdH);

      var tdAct = el('td');
      var acts = el('div', 'actions');
      var sb = el('button', 'settings-open' + (settings.endpoint === name ? ' on' : ''), 'Settings');
      sb.type = 'button';
      sb.dataset.action = 'settings';
      sb.addEventListener('click', function () { openSettings(name); });
      acts.appendChild(sb);
      if (b && token) {
        [['force_open', 'Force open', 'danger'], ['reset', 'Reset', ''], ['disable', 'Disable', 'danger']].forEach(function (a) {
          var btn = el('button', a[2], a[1]);
          btn.type = 'button';
          btn.dataset.action = a[0];
          btn.addEventListener('click', function () { control(name, a[0], btn); });
          acts.appendChild(btn);
        });
      } else if (b) acts.appendChild(el('span', 'locked', 'token needed'));
      tdAct.appendChild(acts);
      tr.appendChild(tdAct);
      rows.appendChild(tr);
    });
    if (!names.length) {
      var empty = el('tr', 'empty');
      var td = el('td', '', 'No endpoints yet: they appear on their first request.');
      td.colSpan = 10;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    patchChildren(body, rows);

    setSum('sum-endpoints', names.length, false);
    setSum('sum-open', open, true);
    setSum('sum-halfopen', half, true);
    $('sum-rps').textContent = (prevTotals && rates.size) || hist.series.size ? fmtRate(rps) : '–';
    setSum('sum-alerts', (status.alerts || []).length, true);
    setSum('sum-slo', violated, true);
    $('updated').textContent = 'updated ' + clock(serverNow);
    $('seq').textContent = String(lastSeq);
    var g = $('gaps');
    g.hidden = !missed;
    g.textContent = missed ? '· ' + missed + ' event' + (missed === 1 ? '' : 's') + ' missed' : '';

    renderEvents();
    renderAlerts();
    renderHealth();
    renderUsers();
    renderCluster();
    renderFaults();
    fillEndpointNames(names);
  }

  function clock(t) { return new Date(t).toLocaleTimeString([], { hour12: false }); }

  function fmtLatency(ms) { return ms >= 1000 ? (ms / 1000).toFixed(1) + ' s' : ms.toFixed(1) + ' ms'; }

  function setSum(id, n, flag) {
    var v = $(id);
    v.textContent = String(n);
    v.classList.toggle('nonzero', flag && n > 0);
  }

  function stateLabel(s) { return s === 'HalfOpen' ? 'Half-open' : s === 'ForcedOpen' ? 'Forced open' : s; }

  function renderEvents() {
    var list = $('events');
    var frag = document.createDocumentFragment();
    events.forEach(function (e) {
      var li = el('li');
      li.dataset.type = e.type || '';
      var row = el('div', 'row1');
      var ts = e.timestamp || e.generated_at;
      row.appendChild(el('time', '', ts ? clock(ts) : ''));
      row.appendChild(el('span', 'kind', (e.type || 'event').replace('_', ' ')));
      if (e.endpoint) row.appendChild(el('span', 'ep', e.endpoint));
      if (e.type === 'state_change') {
        row.appendChild(el('span', 'badge ' + e.old_state, stateLabel(e.old_state)));
        row.appendChild(el('span', 'arrow', '→'));
        row.appendChild(el('span', 'badge ' + e.new_state, stateLabel(e.new_state)));
      } else if (e.type === 'alert' && e.severity) {
        row.appendChild(el('span', 'sev ' + e.severity, e.resolved ? 'resolved' : e.severity));
      } else if (e.type === 'slo_burn') {
        row.appendChild(el('span', 'sev ' + (e.burning ? 'Critical' : 'Info'), e.burning ? 'burning' : 'recovered'));
      } else if (e.type === 'fault_start') {
        row.appendChild(el('span', 'sev Warning', 'injecting ' + e.percent + '%'));
      } else if (e.type === 'fault_end') {
        row.appendChild(el('span', 'sev Info', 'ended' + (e.injected ? ' · ' + e.injected + ' injected' : '')));
      } else if (e.type === 'config_change') {
        row.appendChild(el('span', 'sev Info', e.source === 'runtime' ? 'changed' : 'back to ' + (e.source || 'file')));
      }
      if (typeof e.seq === 'number') row.appendChild(el('span', 'seqno', '#' + e.seq));
      li.appendChild(row);
      var why = e.reason || e.message;
      if (why) {
        var w = el('div', 'why', why);
        w.title = why;
        li.appendChild(w);
      }
      frag.appendChild(li);
    });
    if (!events.length) frag.appendChild(el('li', 'empty', 'No events yet.'));
    list.replaceChildren(frag);
  }

  function renderAlerts() {
    var list = $('alerts');
    var frag = document.createDocumentFragment();
    (status.alerts || []).slice().reverse().forEach(function (a) {
      var li = el('li');
      li.appendChild(el('span', 'sev ' + a.severity, a.severity));
      li.appendChild(document.createTextNode(a.message || (a.alert_type && a.alert_type.message) || ''));
      frag.appendChild(li);
    });
    if (!(status.alerts || []).length) frag.appendChild(el('li', 'empty', 'No active alerts.'));
    list.replaceChildren(frag);
  }

  function renderHealth() {
    var list = $('health');
    var frag = document.createDocumentFragment();
    (status.health || []).forEach(function (h) {
      var li = el('li');
      var left = el('div');
      left.appendChild(el('span', 'hdot ' + (h.healthy ? 'ok' : 'fail')));
      left.appendChild(el('span', 'mono', h.endpoint));
      left.appendChild(el('div', 'probe', h.probe + (h.last && h.last.error ? ' — ' + h.last.error : '')));
      li.appendChild(left);
      var right = el('div', 'probe latency');
      right.appendChild(document.createTextNode(h.last && h.last.time ? fmtLatency(h.last.latency_ms) : 'not run'));
      // The latest checks, oldest first: one tick each.
      var strip = el('div', 'checks');
      (h.history || []).slice(-20).forEach(function (r) {
        var tick = el('span', r.ok ? 'ok' : 'fail');
        tick.title = (r.time ? clock(r.time) + ' ' : '') + (r.ok ? 'ok' : r.error || 'failed') + ' · ' + fmtLatency(r.latency_ms || 0);
        strip.appendChild(tick);
      });
      right.appendChild(strip);
      li.appendChild(right);
      frag.appendChild(li);
    });
    if (!(status.health || []).length) frag.appendChild(el('li', 'empty', 'No health checks.'));
    list.replaceChildren(frag);
  }

  function renderUsers() {
    var box = $('users');
    var frag = document.createDocumentFragment();
    var u = status.per_user;
    if (u) {
      var blk = el('div', 'users-block');
      var h3 = el('h3', '', 'Per user · all endpoints');
      h3.appendChild(el('small', '', u.users + ' of ' + u.max_users + ' users tracked · ' + u.rejected + ' rejected'));
      blk.appendChild(h3);
      var t = el('table');
      var head = el('tr');
      ['User', 'Active', 'Total', 'Rejected'].forEach(function (c, i) { head.appendChild(el('th', i ? 'num' : '', c)); });
      t.appendChild(head);
      (u.top_users || []).forEach(function (x) {
        var r = el('tr');
        r.dataset.user = x.user;
        r.appendChild(el('td', 'mono', x.user));
        var act = el('td', 'num', u.max_concurrent ? x.active + '/' + u.max_concurrent : x.active);
        if (u.max_concurrent && x.active >= u.max_concurrent) act.className += ' rate high';
        r.appendChild(act);
        r.appendChild(el('td', 'num', x.total));
        r.appendChild(el('td', 'num' + (x.rejected ? ' rate high' : ''), x.rejected));
        t.appendChild(r);
      });
      blk.appendChild(t);
      frag.appendChild(blk);
    } else frag.appendChild(el('p', 'empty', 'No per-user bulkhead.'));
    box.replaceChildren(frag);
  }

  // Only the countdowns and the ages move between messages.
  setInterval(function () {
    if (!status) return;
    document.querySelectorAll('.countdown').forEach(function (c) {
      var b = (status.breakers || []).find(function (x) { return x.endpoint === c.dataset.endpoint; });
      var ms = b ? remainingMs(b) : null;
      c.textContent = ms === null ? '–' : fmtCountdown(ms);
    });
    var due = false;
    document.querySelectorAll('.fault-countdown').forEach(function (c) {
      var ms = faultRemainingMs(c.dataset.id);
      c.textContent = ms === null ? '–' : ms > 0 ? 'ends in ' + fmtCountdown(ms) : 'ending…';
      if (ms !== null && ms <= 0) due = true;
    });
    if (due && performance.now() - faults.loadedAt > 3000) loadFaults();
    document.querySelectorAll('[data-seen]').forEach(function (c) {
      c.textContent = 'seen ' + ago(nowServer() - Date.parse(c.dataset.seen));
    });
  }, 250);

  function nowServer() { return serverNow + (performance.now() - receivedAt); }

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 2) return 'just now';
    if (s < 90) return s + 's ago';
    if (s < 5400) return Math.round(s / 60) + 'm ago';
    return Math.round(s / 3600) + 'h ago';
  }

  function fmtSpan(ms) {
    var s = Math.round(ms / 1000);
    if (s < 90) return s + 's';
    return Math.round(s / 60) + 'm';
  }

  // ---- history: sparklines and state bands ------------------------------

  var SERIES = ['rate', 'failure_pct', 'p99_ms', 'state', 'injected'];
  var MAX_SPANS = 256;
  // The SVG namespace, from the logo: the page names no URL but its own.
  var SVG = document.querySelector('svg.logo').namespaceURI;
  var SPARK_W = 300, SPARK_H = 34, BAND_H = 12;

  function loadSeries() {
    fetch(base + 'history', { headers: authHeaders(), cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (h) {
        if (!h || !h.endpoints) return;
        hist.intervalMs = h.interval_ms;
        hist.windowMs = h.window_seconds * 1000;
        hist.maxPoints = Math.max(1, Math.round(hist.windowMs / Math.max(1, h.interval_ms)));
        var m = new Map();
        Object.keys(h.endpoints).forEach(function (name) {
          var src = h.endpoints[name];
          var c = { t: (src.t || []).slice() };
          SERIES.forEach(function (k) { c[k] = (src[k] || []).slice(); });
          m.set(name, c);
        });
        hist.series = m;
        hist.faults = (h.faults || []).slice(-MAX_SPANS);
        hist.loaded = true;
        // Samples that came on the feed while the history was on its way.
        recentSamples.forEach(appendSample);
        render();
        renderTrends();
      }).catch(function () {});
  }

  // appendSample adds a snapshot's newest samples to the series, keeping
  // as many points as the server does.
  function appendSample(sample) {
    if (!hist.loaded) return;
    Object.keys(sample).forEach(function (name) {
      var p = sample[name];
      var s = hist.series.get(name);
      if (!s) {
        s = { t: [] };
        SERIES.forEach(function (k) { s[k] = []; });
        hist.series.set(name, s);
      }
      if (s.t.length && p.t <= s.t[s.t.length - 1]) return;
      s.t.push(p.t);
      SERIES.forEach(function (k) { s[k].push(p[k]); });
      while (s.t.length > hist.maxPoints) {
        s.t.shift();
        SERIES.forEach(function (k) { s[k].shift(); });
      }
    });
  }

  function noteFault(e) {
    var at = Date.parse(e.timestamp) || nowServer();
    var open = hist.faults.find(function (f) { return f.id === e.id && f.end === null; });
    if (e.type === 'fault_start' && !open) hist.faults.push({ id: e.id, endpoint: e.endpoint, start: at, end: null });
    else if (e.type === 'fault_end' && open) open.end = at;
    else if (e.type === 'fault_end') hist.faults.push({ id: e.id, endpoint: e.endpoint, start: at, end: at });
    if (hist.faults.length > MAX_SPANS) hist.faults.splice(0, hist.faults.length - MAX_SPANS);
  }

  // currentRate is an endpoint's request rate: the newest sample's, or
  // else the one the snapshots give.
  function currentRate(name) {
    var s = hist.series.get(name);
    if (s && s.t.length) return s.rate[s.rate.length - 1];
    return rates.get(name);
  }

  function svgEl(tag, attrs, title) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (title) {
      var t = document.createElementNS(SVG, 'title');
      t.textContent = title;
      e.appendChild(t);
    }
    return e;
  }

  function fmtPct(v) { return v === undefined ? '–' : (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + '%'; }
  function fmtMs(v) { return v === undefined ? '–' : v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v.toFixed(v >= 100 ? 0 : 1) + ' ms'; }

  var SPARKS = [
    ['rate', 'Req/s', 'Request rate', fmtRate],
    ['failure_pct', 'Failures', 'Failed requests', fmtPct],
    ['p99_ms', 'p99', 'p99 latency', fmtMs]
  ];

  // The time range the trends show: the window, or less when the
  // history is younger, ending at the newest sample.
  function trendRange() {
    var x1 = 0, first = Infinity;
    hist.series.forEach(function (s) {
      if (!s.t.length) return;
      x1 = Math.max(x1, s.t[s.t.length - 1]);
      first = Math.min(first, s.t[0]);
    });
    if (!x1) return null;
    var x0 = Math.max(x1 - hist.windowMs, first - hist.intervalMs);
    return { x0: x0, x1: x1, x: function (t) { return (t - x0) / Math.max(1, x1 - x0) * SPARK_W; } };
  }

  function faultsOn(name, range) {
    return hist.faults.filter(function (f) {
      return f.endpoint === name && (f.end === null || f.end >= range.x0) && f.start <= range.x1;
    });
  }

  function faultRect(f, range, h) {
    var a = range.x(Math.max(f.start, range.x0));
    var b = range.x(f.end === null ? range.x1 : Math.min(f.end, range.x1));
    return svgEl('rect', { 'class': 'fault', x: a.toFixed(1), y: 0, width: Math.max(1.5, b - a).toFixed(1), height: h, 'data-fault': f.id },
      'fault ' + f.id + ': ' + clock(f.start) + ' – ' + (f.end === null ? 'running' : clock(f.end)));
  }

  function sparkline(s, key, label, fmt, range, spans) {
    var vals = s[key];
    var n = vals.length;
    var top = 0;
    vals.forEach(function (v) { top = Math.max(top, v || 0); });
    if (key === 'failure_pct') top = Math.max(top, 5);
    top = top > 0 ? top * 1.15 : 1;
    var svg = svgEl('svg', {
      'class': 'spark s-' + key, viewBox: '0 0 ' + SPARK_W + ' ' + SPARK_H, preserveAspectRatio: 'none',
      role: 'img', 'aria-label': label + ', ' + n + ' samples, now ' + fmt(vals[n - 1]) + ', highest ' + fmt(top / 1.15),
      'data-series': key, 'data-points': String(n)
    });
    spans.forEach(function (f) { svg.appendChild(faultRect(f, range, SPARK_H)); });
    var pts = [];
    for (var i = 0; i < n; i++) {
      pts.push(range.x(s.t[i]).toFixed(1) + ',' + (SPARK_H - 2 - (vals[i] || 0) / top * (SPARK_H - 4)).toFixed(1));
    }
    if (n) {
      var x0 = range.x(s.t[0]).toFixed(1), xn = range.x(s.t[n - 1]).toFixed(1);
      svg.appendChild(svgEl('polygon', { 'class': 'area', points: x0 + ',' + SPARK_H + ' ' + pts.join(' ') + ' ' + xn + ',' + SPARK_H }));
      svg.appendChild(svgEl('polyline', { 'class': 'line', points: pts.join(' '), 'vector-effect': 'non-scaling-stroke' }));
    }
    return svg;
  }

  // stateBand draws the breaker's state over time: the state at each
  // sample covers the interval that ends there. Ticks on top mark samples
  // with injected failures, and stripes the fault experiments.
  function stateBand(s, range, spans) {
    var svg = svgEl('svg', {
      'class': 'band', viewBox: '0 0 ' + SPARK_W + ' ' + BAND_H, preserveAspectRatio: 'none',
      role: 'img', 'data-series': 'state', 'data-points': String(s.state.length)
    });
    var segs = [];
    for (var i = 0; i < s.state.length; i++) {
      var from = i ? s.t[i - 1] : Math.max(range.x0, s.t[0] - hist.intervalMs);
      var last = segs[segs.length - 1];
      if (last && last.state === s.state[i]) last.to = s.t[i];
      else segs.push({ state: s.state[i], from: from, to: s.t[i] });
    }
    segs.forEach(function (g) {
      var a = range.x(g.from), b = range.x(g.to);
      svg.appendChild(svgEl('rect', { 'class': 'seg s-' + g.state, x: a.toFixed(1), y: 3, width: Math.max(1, b - a).toFixed(1), height: BAND_H - 3, 'data-state': g.state },
        stateLabel(g.state) + ' ' + clock(g.from) + ' – ' + clock(g.to)));
    });
    spans.forEach(function (f) {
      var r = faultRect(f, range, 3);
      svg.appendChild(r);
    });
    for (var j = 0; j < s.injected.length; j++) {
      if (s.injected[j] > 0) {
        svg.appendChild(svgEl('rect', { 'class': 'inj', x: (range.x(s.t[j]) - 1).toFixed(1), y: 0, width: 2, height: BAND_H, 'data-injected': String(s.injected[j]) },
          s.injected[j] + ' injected failures by ' + clock(s.t[j])));
      }
    }
    svg.setAttribute('aria-label', 'Breaker state: ' + segs.map(function (g) { return stateLabel(g.state); }).join(', then ') +
      (spans.length ? '; ' + spans.length + ' fault experiment' + (spans.length === 1 ? '' : 's') : ''));
    return svg;
  }

  function renderTrends() {
    if (!hist.loaded) return;
    var box = $('trends');
    var range = trendRange();
    var names = Array.from(hist.series.keys()).sort();
    var frag = document.createDocumentFragment();
    names.forEach(function (name) {
      var s = hist.series.get(name);
      var card = el('article', 'trend');
      card.dataset.endpoint = name;
      var head = el('header');
      var ep = el('span', 'ep', name);
      ep.title = name;
      head.appendChild(ep);
      var st = s.state[s.state.length - 1];
      if (st) head.appendChild(el('span', 'badge ' + st, stateLabel(st)));
      card.appendChild(head);
      if (!range || !s.t.length) {
        card.appendChild(el('p', 'dim', 'No samples yet.'));
        frag.appendChild(card);
        return;
      }
      var spans = faultsOn(name, range);
      SPARKS.forEach(function (k) {
        var row = el('div', 'spark-row');
        row.appendChild(el('span', 'spark-label', k[1]));
        row.appendChild(sparkline(s, k[0], k[2], k[3], range, spans));
        // Without calls in the last interval there is no share or latency to show.
        var idle = k[0] !== 'rate' && !s.rate[s.rate.length - 1];
        row.appendChild(el('span', 'spark-value', idle ? '–' : k[3](s[k[0]][s[k[0]].length - 1])));
        card.appendChild(row);
      });
      var bandRow = el('div', 'spark-row band-row');
      bandRow.appendChild(el('span', 'spark-label', 'State'));
      bandRow.appendChild(stateBand(s, range, spans));
      var inj = s.injected.reduce(function (a, b) { return a + (b || 0); }, 0);
      var note = el('span', 'spark-value' + (spans.length || inj ? ' faulty' : ''), spans.length ? spans.length + ' fault' + (spans.length === 1 ? '' : 's') : '');
      if (inj) note.textContent += (note.textContent ? ' · ' : '') + inj + ' inj.';
      bandRow.appendChild(note);
      card.appendChild(bandRow);
      var axis = el('div', 'axis');
      axis.appendChild(el('span', '', '−' + fmtSpan(range.x1 - range.x0)));
      axis.appendChild(el('span', '', clock(range.x1)));
      card.appendChild(axis);
      frag.appendChild(card);
    });
    if (!names.length) frag.appendChild(el('p', 'empty', 'No endpoints yet: they appear on their first request.'));
    box.replaceChildren(frag);
    $('trends-meta').textContent = hist.intervalMs ? 'a sample every ' + fmtSpan(hist.intervalMs) + (range ? ' · ' + fmtSpan(range.x1 - range.x0) + ' shown' : '') : '';
  }

  // ---- cluster ----------------------------------------------------------

  function renderCluster() {
    var list = $('cluster');
    var inst = (status.cluster && status.cluster.instances) || [];
    var frag = document.createDocumentFragment();
    inst.forEach(function (i) {
      var li = el('li', 'instance' + (i.self ? ' self' : ''));
      li.dataset.instance = i.id;
      var row = el('div', 'row1');
      var dot = el('span', 'hdot ' + (i.healthy ? 'ok' : 'fail'));
      dot.setAttribute('role', 'img');
      dot.setAttribute('aria-label', i.healthy ? 'healthy' : 'not seen lately');
      dot.title = i.healthy ? 'healthy: seen within 3 sync intervals' : 'not seen within 3 sync intervals';
      row.appendChild(dot);
      row.appendChild(el('span', 'mono id', i.id));
      if (i.self) row.appendChild(el('span', 'self-mark', 'this instance'));
      var seen = el('span', 'seen', 'seen ' + ago(nowServer() - Date.parse(i.last_seen)));
      seen.dataset.seen = i.last_seen;
      seen.title = i.last_seen;
      row.appendChild(seen);
      li.appendChild(row);
      var shares = Object.keys(i.shares || {}).sort();
      if (shares.length) {
        var ul = el('ul', 'shares');
        ul.setAttribute('aria-label', 'Share of each endpoint\'s window');
        shares.slice(0, 12).forEach(function (ep) {
          var sh = el('li');
          sh.dataset.endpoint = ep;
          var n = el('span', 'ep', ep);
          n.title = ep;
          sh.appendChild(n);
          sh.appendChild(bar(i.shares[ep], '', Math.round(i.shares[ep] * 100) + '%'));
          ul.appendChild(sh);
        });
        if (shares.length > 12) ul.appendChild(el('li', 'dim', 'and ' + (shares.length - 12) + ' more'));
        li.appendChild(ul);
      }
      frag.appendChild(li);
    });
    if (!inst.length) frag.appendChild(el('li', 'empty', 'No shared-state store: this instance runs alone.'));
    list.replaceChildren(frag);
    var healthy = inst.filter(function (i) { return i.healthy; }).length;
    $('cluster-meta').textContent = inst.length ? inst.length + ' instance' + (inst.length === 1 ? '' : 's') + ' · ' + healthy + ' healthy' : '';
  }

  // ---- fault injection --------------------------------------------------

  function loadFaults() {
    fetch(base + 'faults', { headers: authHeaders(), cache: 'no-store' }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        faults.loadedAt = performance.now();
        if (r.status === 404) {
          faults.available = false;
          faults.note = 'Fault injection is not available on this service.';
        } else if (r.ok) {
          faults.available = true;
          faults.enabled = !!body.enabled;
          faults.list = Array.isArray(body.faults) ? body.faults : [];
          faults.list.forEach(function (f) { f.endsAt = faults.loadedAt + (f.remaining_seconds || 0) * 1000; });
          faults.note = faults.enabled ? '' : 'Fault injection is off: set core.ManagerConfig.Faults to turn it on.';
          faults.limits = faults.enabled ? 'default ' + (body.default_duration || '?') + ' · at most ' + (body.max_duration || '?') : '';
        } else return; // 401 and the like: the banner says why
        renderFaults();
      });
    }).catch(function () {});
  }

  function faultRemainingMs(id) {
    var f = faults.list.find(function (x) { return x.id === id; });
    return f ? Math.max(0, f.endsAt - performance.now()) : null;
  }

  function faultEffect(f) {
    var parts = [];
    if (f.status) parts.push('status ' + f.status);
    if (f.abort) parts.push('abort');
    if (f.latency) parts.push('+' + f.latency + (f.latency_max ? '–' + f.latency_max : ''));
    return (parts.join(', ') || 'no effect') + ' on ' + f.percent + '%';
  }

  function renderFaults() {
    var usable = faults.available !== false && faults.enabled;
    var off = $('faults-off');
    off.hidden = usable || faults.available === null;
    off.textContent = faults.note;
    $('faults-meta').textContent = faults.limits || '';
    $('fault-form').hidden = faults.available === false;
    $('fault-start').disabled = !usable || !token;
    $('faults-locked').hidden = !usable || !!token;
    var list = $('faults');
    var frag = document.createDocumentFragment();
    faults.list.forEach(function (f) {
      var li = el('li');
      li.dataset.id = f.id;
      var row = el('div', 'row1');
      row.appendChild(el('span', 'ep', f.endpoint));
      row.appendChild(el('span', 'sev Warning', faultEffect(f)));
      var cd = el('span', 'fault-countdown countdown');
      cd.dataset.id = f.id;
      var ms = faultRemainingMs(f.id);
      cd.textContent = ms > 0 ? 'ends in ' + fmtCountdown(ms) : 'ending…';
      cd.title = 'ends ' + f.ends;
      row.appendChild(cd);
      if (token) {
        var stop = el('button', 'plain danger', 'Stop');
        stop.type = 'button';
        stop.dataset.action = 'stop-fault';
        stop.setAttribute('aria-label', 'Stop fault experiment ' + f.id + ' on ' + f.endpoint);
        stop.addEventListener('click', function () { stopFault(f, stop); });
        row.appendChild(stop);
      }
      li.appendChild(row);
      // The filter's values are not shown: a user ID stays out of the page.
      var what = [];
      if (f.header) what.push('only with header ' + f.header);
      if (f.user) what.push('only for one user');
      what.push((f.injected || 0) + ' injected here');
      if (f.origin) what.push('started on ' + f.origin);
      if (f.reason) what.push(f.reason);
      li.appendChild(el('div', 'why', what.join(' · ')));
      frag.appendChild(li);
    });
    if (!faults.list.length) frag.appendChild(el('li', 'empty', 'No experiments running.'));
    patchChildren(list, frag);
  }

  // The form's text fields: name, label, attributes; the effect's radio
  // buttons come between the first three and the rest.
  var FAULT_FIELDS = [
    ['endpoint', 'Endpoint', { required: '', list: 'endpoint-names', placeholder: 'GET /users/{id}' }, 'wide'],
    ['percent', 'Share of calls (%)', { type: 'number', min: '0.01', max: '100', step: 'any', value: '10', required: '' }],
    ['duration', 'Duration', { placeholder: 'default' }],
    ['latency', 'Added latency', { placeholder: 'e.g. 200ms' }],
    ['latency_max', 'Up to (optional)', { placeholder: 'e.g. 800ms' }],
    ['header', 'Only calls with header', { placeholder: 'X-Chaos' }],
    ['header_value', 'Header value', {}],
    ['user', 'Only calls of user', {}],
    ['reason', 'Reason', { maxlength: '256', placeholder: 'game day' }]
  ];

  (function buildFaultForm() {
    var form = $('fault-form');
    var effect = form.querySelector('fieldset.effect');
    FAULT_FIELDS.forEach(function (f, i) {
      var id = 'fault-' + f[0].replace('_', '-');
      var box = el('div', 'field' + (f[3] ? ' ' + f[3] : ''));
      var label = el('label', '', f[1]);
      label.htmlFor = id;
      var input = el('input');
      input.id = id;
      input.name = f[0];
      input.spellcheck = false;
      input.setAttribute('aria-describedby', id + '-error');
      Object.keys(f[2]).forEach(function (k) { input.setAttribute(k, f[2][k]); });
      var err = el('span', 'field-error');
      err.id = id + '-error';
      err.dataset.for = f[0];
      box.append(label, input, err);
      form.insertBefore(box, i < 3 ? effect : $('fault-error'));
    });
  })();

  function fillEndpointNames(names) {
    var dl = $('endpoint-names');
    if (dl.dataset.names === names.join('\n')) return;
    dl.dataset.names = names.join('\n');
    dl.replaceChildren.apply(dl, names.map(function (n) { var o = el('option'); o.value = n; return o; }));
  }

  // fieldKey turns a problem's field ("core.Fault.LatencyMax", say) into
  // the form's name for it ("latency_max").
  function fieldKey(field) {
    var last = String(field || '').split('.').pop().replace(/\[.*\]$/, '');
    return last.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  }

  function clearFaultErrors() {
    document.querySelectorAll('#fault-form .field-error').forEach(function (e) { e.textContent = ''; });
    document.querySelectorAll('#fault-form [aria-invalid]').forEach(function (e) { e.removeAttribute('aria-invalid'); });
    $('fault-error').hidden = true;
    $('fault-error').replaceChildren();
  }

  // faultErrors shows each problem beside its field, and the rest above
  // the button.
  function faultErrors(text, problems) {
    clearFaultErrors();
    var rest = [];
    (problems && problems.length ? problems : [{ message: text }]).forEach(function (p) {
      var key = p.field ? fieldKey(p.field) : '';
      var slot = key && Array.from(document.querySelectorAll('#fault-form .field-error')).find(function (e) {
        return e.dataset.for.split(' ').indexOf(key) >= 0;
      });
      if (slot) {
        slot.textContent = p.rule || p.message;
        slot.title = p.message;
        var input = document.querySelector('#fault-form [name="' + key + '"]') || document.querySelector('#fault-form [aria-describedby="' + slot.id + '"]');
        if (input) input.setAttribute('aria-invalid', 'true');
      } else rest.push(p.message || text);
    });
    if (rest.length) {
      var box = $('fault-error');
      box.appendChild(el('strong', '', 'Not started: '));
      box.appendChild(document.createTextNode(rest.join('; ')));
      box.hidden = false;
    }
  }

  function faultBody() {
    var f = $('fault-form');
    var v = function (n) { return f.elements[n].value.trim(); };
    var effect = f.querySelector('input[name="effect"]:checked').value;
    return {
      endpoint: v('endpoint'), percent: Number(v('percent')),
      status: effect === 'status' ? Number(v('status')) : 0, abort: effect === 'abort',
      latency: v('latency'), latency_max: v('latency_max'),
      header: v('header'), header_value: v('header_value'), user: v('user'),
      duration: v('duration'), reason: v('reason')
    };
  }

  // checkFault finds the mistakes the page can see before asking.
  function checkFault(b) {
    var ps = [];
    if (!b.endpoint) ps.push({ field: 'endpoint', rule: 'is required', message: 'endpoint is required' });
    if (!(b.percent > 0 && b.percent <= 100)) ps.push({ field: 'percent', rule: 'must be above 0 and at most 100', message: 'percent must be above 0 and at most 100' });
    if (b.status && !(b.status >= 400 && b.status <= 599)) ps.push({ field: 'status', rule: 'must be 400 to 599', message: 'status must be 400 to 599' });
    if (!b.status && !b.abort && !b.latency) ps.push({ field: 'latency', rule: 'give a latency, or choose a status or abort', message: 'the experiment needs an effect' });
    if (!b.header !== !b.header_value) ps.push({ field: b.header ? 'header_value' : 'header', rule: 'header and value go together', message: 'header and header value go together' });
    return ps;
  }

  $('fault-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var b = faultBody();
    var ps = checkFault(b);
    if (ps.length) {
      faultErrors('', ps);
      return;
    }
    var headers = authHeaders();
    headers['Content-Type'] = 'application/json';
    var btn = $('fault-start');
    btn.disabled = true;
    fetch(base + 'faults', { method: 'POST', headers: headers, cache: 'no-store', body: JSON.stringify(b) })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (res) {
          if (!r.ok) {
            faultErrors(res.error || ('HTTP ' + r.status), res.problems);
            return;
          }
          clearFaultErrors();
          toast(b.endpoint + ': fault experiment ' + res.id + ' started');
          loadFaults();
        });
      })
      .catch(function (err) { faultErrors(err.message); })
      .finally(renderFaults);
  });

  function stopFault(f, btn) {
    btn.disabled = true;
    fetch(base + 'faults/' + encodeURIComponent(f.id), { method: 'DELETE', headers: authHeaders(), cache: 'no-store' })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (res) {
          if (!r.ok) throw new Error(res.error || ('HTTP ' + r.status));
          toast(f.endpoint + ': fault experiment ' + f.id + ' stopped');
        });
      })
      .catch(function (err) { toast(f.endpoint + ': ' + err.message, true); btn.disabled = false; })
      .finally(loadFaults);
  }

  // ---- control ----------------------------------------------------------

  function toast(text, isError) {
    var t = $('toast');
    t.textContent = text;
    t.className = 'toast' + (isError ? ' error' : '');
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 4000);
  }

  function control(endpoint, action, btn) {
    btn.disabled = true;
    var headers = authHeaders();
    headers['Content-Type'] = 'application/json';
    fetch(base + 'breakers/' + encodeURIComponent(endpoint), {
      method: 'POST', headers: headers, cache: 'no-store',
      body: JSON.stringify({ action: action, reason: 'from the dashboard' })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || ('HTTP ' + r.status));
        toast(endpoint + ': ' + action.replace('_', ' ') + ' applied (' + body.scope + ')');
      });
    }).catch(function (err) {
      toast(endpoint + ': ' + err.message, true);
    }).finally(function () { btn.disabled = false; });
  }

  // ---- settings editor --------------------------------------------------

  function openSettings(ep) {
    settings.endpoint = ep;
    settings.dirty = false;
    $('settings-panel').hidden = false;
    $('settings-endpoint').textContent = ep;
    $('settings-json').value = '';
    $('settings-source').textContent = '…';
    settingsError('');
    render();
    refreshEndpoint(ep);
    $('settings-panel').scrollIntoView({ block: 'nearest' });
  }

  // showSettings fills the editor from an endpoint's status.
  function showSettings(es) {
    settings.available = es.settings !== undefined;
    $('settings-unavailable').hidden = settings.available;
    $('settings-json').disabled = !settings.available;
    if (!settings.available) {
      $('settings-source').textContent = 'n/a';
      $('settings-json').value = '';
    } else if (!settings.dirty) {
      $('settings-json').value = JSON.stringify(es.settings, null, 2);
      setSource(es.settings_source);
    } else setSource(es.settings_source);
    updateSettingsButtons();
  }

  function setSource(src) {
    var s = $('settings-source');
    s.textContent = src || '?';
    s.dataset.source = src || '';
  }

  function updateSettingsButtons() {
    var ok = settings.available && !!token;
    $('settings-apply').disabled = !ok;
    $('settings-reset').disabled = !ok;
    $('settings-locked').hidden = !settings.available || !!token;
  }

  function settingsError(text, problems) {
    var box = $('settings-error');
    box.hidden = !text;
    box.replaceChildren();
    if (!text) return;
    box.appendChild(el('strong', '', 'Not applied: '));
    if (problems && problems.length) {
      var ul = el('ul');
      problems.forEach(function (p) {
        var li = el('li');
        if (p.field) li.appendChild(el('code', '', p.field));
        li.appendChild(document.createTextNode((p.field ? ' ' : '') + (p.rule || p.message)));
        li.title = p.message;
        ul.appendChild(li);
      });
      box.appendChild(ul);
    } else box.appendChild(document.createTextNode(text));
  }

  function sendSettings(method, body) {
    var ep = settings.endpoint;
    var headers = authHeaders();
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    $('settings-apply').disabled = $('settings-reset').disabled = true;
    return fetch(base + 'config/' + encodeURIComponent(ep), { method: method, headers: headers, cache: 'no-store', body: body })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (res) {
          if (!r.ok) {
            settingsError(res.error || ('HTTP ' + r.status), res.problems);
            return;
          }
          if (settings.endpoint !== ep) return;
          settings.dirty = false;
          settingsError('');
          $('settings-json').value = JSON.stringify(res.settings, null, 2);
          setSource(res.settings_source);
          toast(ep + ': settings ' + (method === 'PUT' ? 'applied' : 'reset to the file'));
        });
      })
      .catch(function (err) { settingsError(err.message); })
      .finally(updateSettingsButtons);
  }

  $('settings-json').addEventListener('input', function () { settings.dirty = true; });
  $('settings-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var text = $('settings-json').value;
    var v;
    try { v = JSON.parse(text); } catch (err) {
      settingsError('the text is not valid JSON: ' + err.message);
      return;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) {
      settingsError('the settings must be a JSON object, such as {"breaker":{"failure_threshold":5}}');
      return;
    }
    sendSettings('PUT', JSON.stringify(v));
  });
  $('settings-reset').addEventListener('click', function () { sendSettings('DELETE'); });
  $('settings-close').addEventListener('click', function () {
    settings.endpoint = '';
    $('settings-panel').hidden = true;
    render();
  });

  function showTokenState() {
    $('token-input').value = '';
    $('token-input').placeholder = token ? 'Token set' : 'Admin token';
    $('token-forget').hidden = !token;
    $('token-use').textContent = token ? 'Change token' : 'Unlock controls';
  }

  $('token-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var v = $('token-input').value.trim();
    if (!v) return;
    token = v;
    sessionStorage.setItem(TOKEN_KEY, token);
    showTokenState();
    banner('');
    if (ws) ws.close(1000, 'token changed'); else connect();
    updateSettingsButtons();
    render();
  });
  $('token-forget').addEventListener('click', function () {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showTokenState();
    updateSettingsButtons();
    render();
  });

  showTokenState();
  connect();
})();
