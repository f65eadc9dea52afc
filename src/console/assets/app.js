/* m2mguard console: shared script of every page (no inline script: CSP).
   - MG.api(): fetch wrapper; POSTs carry X-CSRF-Token from /api/me
   - MG.el(): DOM built with createElement/textContent, never innerHTML
   - navigation state, the signed-in operator, formatting, a toast. */
'use strict';
(function () {
  var me = null;
  var mePromise = null;

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k === 'text') e.textContent = String(v);
        else if (k === 'class') e.className = v;
        else if (k === 'on') Object.keys(v).forEach(function (ev) { e.addEventListener(ev, v[ev]); });
        else e.setAttribute(k, v === true ? '' : String(v));
      });
    }
    (kids || []).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function ApiError(status, msg) { this.status = status; this.message = msg; }

  function api(path, body) {
    var opts = { credentials: 'same-origin', headers: { 'Accept': 'application/json' }, cache: 'no-store' };
    var ready = Promise.resolve();
    if (body !== undefined) {
      ready = loadMe().then(function (m) {
        opts.method = 'POST';
        opts.headers['Content-Type'] = 'application/json';
        opts.headers['X-CSRF-Token'] = m ? m.csrf : '';
        opts.body = JSON.stringify(body);
      });
    }
    return ready.then(function () { return fetch(path, opts); }).then(function (r) {
      if (r.status === 401) { location.assign('/login'); throw new ApiError(401, 'signed out'); }
      return r.text().then(function (t) {
        var j = null;
        try { j = t ? JSON.parse(t) : null; } catch (e) { j = null; }
        if (!r.ok) throw new ApiError(r.status, (j && j.error) || ('HTTP ' + r.status));
        return j;
      });
    });
  }

  function loadMe() {
    if (!mePromise) {
      mePromise = fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
        if (r.status === 401) { location.assign('/login'); return null; }
        return r.ok ? r.json() : null;
      }).then(function (m) { me = m; return m; }).catch(function () { return null; });
    }
    return mePromise;
  }

  /* what this operator may do (/api/me "can"); activate and close need the
     same role as quarantine and ack, when the server does not list them */
  function can(action) {
    if (!me || !me.can) return false;
    if (action in me.can) return !!me.can[action];
    if (action === 'activate') return !!me.can.quarantine;
    if (action === 'close') return !!me.can.ack;
    return false;
  }

  /* ---- formatting ---- */
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function fmtTime(t) {
    if (t === null || t === undefined || t === '' || t === 0) return '—';
    var d = new Date(Number(t) * 1000);
    if (isNaN(d.getTime())) return String(t);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function fmtDate(t) {
    if (t === null || t === undefined || t === 0) return '—';
    var d = new Date(Number(t) * 1000);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }
  function ago(t) {
    if (t === null || t === undefined || t === 0) return 'never';
    var s = Math.round(Date.now() / 1000 - Number(t));
    if (s < 0) return 'in ' + span(-s);
    if (s < 5) return 'just now';
    return span(s) + ' ago';
  }
  function span(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h';
    return Math.floor(s / 86400) + ' d';
  }
  function timeCell(t) {
    var td = el('td', { class: 'nowrap' });
    if (t === null || t === undefined || t === 0) { td.textContent = '—'; return td; }
    td.appendChild(el('time', { datetime: new Date(Number(t) * 1000).toISOString(), title: fmtTime(t), text: ago(t) }));
    return td;
  }
  function badge(text, cls) { return el('span', { class: 'badge ' + (cls || String(text).replace(/[^a-z0-9_-]/gi, '')), text: text }); }
  function deviceLink(name) {
    if (!name) return document.createTextNode('—');
    return el('a', { href: '/device?name=' + encodeURIComponent(name), text: name });
  }
  function emptyRow(tbody, cols, text) {
    tbody.appendChild(el('tr', null, [el('td', { colspan: cols, class: 'empty', text: text })]));
  }

  var toastTimer = null;
  function toast(msg, isError) {
    var t = document.getElementById('toast');
    if (!t) return;
    t.textContent = msg;
    t.className = 'toast show' + (isError ? ' error' : '');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { t.className = 'toast' + (isError ? ' error' : ''); }, 4500);
  }

  /* every few seconds, but not while the tab is hidden */
  function poll(fn, ms) {
    var busy = false;
    function tick() {
      if (busy || document.hidden) return;
      busy = true;
      Promise.resolve().then(fn).catch(function (e) { if (e && e.status !== 401) console.warn(e); })
        .then(function () { busy = false; });
    }
    tick();
    setInterval(tick, ms);
    document.addEventListener('visibilitychange', function () { if (!document.hidden) tick(); });
  }

  /* labels every cell of a .stacked table with its column's header (shown on phones) */
  function label(table) {
    var heads = table.querySelectorAll('thead th');
    var rows = table.querySelectorAll('tbody tr');
    for (var r = 0; r < rows.length; r++) {
      var cells = rows[r].children;
      if (cells.length !== heads.length) continue;
      for (var c = 0; c < cells.length; c++) cells[c].setAttribute('data-label', heads[c].textContent);
    }
  }

  function param(name) { return new URLSearchParams(location.search).get(name); }

  function initChrome() {
    var page = document.body.getAttribute('data-page');
    var links = document.querySelectorAll('[data-nav]');
    for (var i = 0; i < links.length; i++) {
      if (links[i].getAttribute('data-nav') === page || (page === 'device' && links[i].getAttribute('data-nav') === 'fleet'))
        links[i].setAttribute('aria-current', 'page');
    }
    loadMe().then(function (m) {
      var who = document.getElementById('who');
      if (m && who) who.textContent = m.user + ' (' + m.role + ')';
      var c = document.getElementById('logout-csrf');
      if (m && c) c.value = m.csrf;
      document.body.setAttribute('data-role', m ? m.role : '');
    });
  }

  window.MG = {
    el: el, clear: clear, api: api, me: loadMe, can: can, fmtTime: fmtTime, fmtDate: fmtDate,
    ago: ago, span: span, timeCell: timeCell, badge: badge, deviceLink: deviceLink, emptyRow: emptyRow,
    toast: toast, poll: poll, param: param, label: label
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', initChrome);
  else initChrome();
})();
