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

  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
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
        h.events.forEach(function (e) { if (!seen.has(e.seq)) events.push(e); });
        events.sort(function (a, b) { return (b.seq || 0) - (a.seq || 0); });
        if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
        render();
      }).catch(function () {});
  }

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
    events.unshift(msg);
    if (events.length > MAX_EVENTS) events.length = MAX_EVENTS;
    if (msg.type === 'state_change') applyStateChange(msg);
    if (msg.type === 'alert') applyAlert(msg);
    if (msg.type === 'config_change' && msg.endpoint === settings.endpoint && !settings.dirty) refreshEndpoint(msg.endpoint);
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
    render();
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

      var r = rates.get(name);
      if (r !== undefined) rps += r;
      tr.appendChild(el('td', 'num', b ? fmtRate(r) : '–'));
      var fr = el('td', 'num rate' + (b && b.failure_rate >= 25 ? ' high' : ''), b ? pct(b.failure_rate) : '–');
      if (b) fr.title = b.window_failures + ' of ' + b.window_requests + ' calls in the window';
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
    body.replaceChildren(rows);

    setSum('sum-endpoints', names.length, false);
    setSum('sum-open', open, true);
    setSum('sum-halfopen', half, true);
    $('sum-rps').textContent = prevTotals && rates.size ? fmtRate(rps) : '–';
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

  // Only the countdowns move between messages.
  setInterval(function () {
    if (!status) return;
    document.querySelectorAll('.countdown').forEach(function (c) {
      var b = (status.breakers || []).find(function (x) { return x.endpoint === c.dataset.endpoint; });
      var ms = b ? remainingMs(b) : null;
      c.textContent = ms === null ? '–' : fmtCountdown(ms);
    });
  }, 250);

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
