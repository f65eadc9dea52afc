/* Live events: the latest events, then server-sent events (EventSource on
   /api/events/stream, which resumes with Last-Event-ID), filtered by kind and
   device. New rows are highlighted; at most MAX rows are kept. */
'use strict';
(function () {
  var el = MG.el, MAX = 500;
  var es = null, seen = {}, kinds = {}, paused = false, queue = [];
  var tbody = document.querySelector('#events tbody');
  var live = document.getElementById('live');
  var kindIn = document.getElementById('f-kind'), devIn = document.getElementById('f-device');

  kindIn.value = MG.param('kind') || '';
  devIn.value = MG.param('device') || '';

  function status(on, text) { live.className = 'live ' + (on ? 'on' : 'off'); live.textContent = text; }

  function rowOf(e, fresh) {
    return el('tr', { class: fresh ? 'fresh' : null, 'data-id': e.id, 'data-kind': e.kind }, [
      el('td', { class: 'num', text: e.id }),
      MG.timeCell(e.time),
      el('td', null, [MG.badge(e.kind, 'info')]),
      el('td', null, [MG.deviceLink(e.device)]),
      el('td', { text: e.bearer || '—' }),
      el('td', { class: 'mono', text: e.source || '—' }),
      el('td', { class: 'num', text: e.count }),
      el('td', null, [e.authenticated ? MG.badge('yes', 'auth') : MG.badge('no', 'unauth')]),
      el('td', { class: 'reason', text: e.reason || '' })
    ]);
  }

  function add(e, fresh) {
    if (seen[e.id]) return;
    seen[e.id] = true;
    var empty = tbody.querySelector('td.empty');
    if (empty) MG.clear(tbody);
    if (!kinds[e.kind]) {
      kinds[e.kind] = true;
      document.getElementById('kinds').appendChild(el('option', { value: e.kind }));
    }
    // newest first; the initial batch arrives oldest first too
    tbody.insertBefore(rowOf(e, fresh), tbody.firstChild);
    while (tbody.rows.length > MAX) tbody.removeChild(tbody.lastChild);
  }

  function query() {
    var q = new URLSearchParams();
    if (kindIn.value.trim()) q.set('kind', kindIn.value.trim());
    if (devIn.value.trim()) q.set('device', devIn.value.trim());
    return q;
  }

  function start() {
    if (es) es.close();
    seen = {};
    MG.clear(tbody);
    MG.emptyRow(tbody, 9, 'waiting for events…');
    var q = query();
    var hist = new URLSearchParams(q);
    hist.set('limit', '100');
    status(false, 'connecting');
    MG.api('/api/events?' + hist.toString()).then(function (j) {
      var list = (j.events || []).slice().sort(function (a, b) { return a.id - b.id; });
      list.forEach(function (e) { add(e, false); });
      if (!list.length) { MG.clear(tbody); MG.emptyRow(tbody, 9, 'no events match; new ones appear here as they happen'); }
      es = new EventSource('/api/events/stream' + (q.toString() ? '?' + q.toString() : ''));
      es.addEventListener('open', function () { status(true, 'live'); });
      es.addEventListener('error', function () { status(false, 'reconnecting'); });
      es.addEventListener('event', function (m) {
        var e;
        try { e = JSON.parse(m.data); } catch (x) { return; }
        if (live.textContent !== 'live' && !paused) status(true, 'live');
        if (paused) { queue.push(e); status(true, 'paused (' + queue.length + ' new)'); return; }
        add(e, true);
      });
    }).catch(function (e) { status(false, 'error: ' + e.message); });
    history.replaceState(null, '', '/events' + (q.toString() ? '?' + q.toString() : ''));
  }

  document.getElementById('ev-filter').addEventListener('submit', function (ev) { ev.preventDefault(); start(); });
  document.getElementById('ev-pause').addEventListener('click', function () {
    paused = !paused;
    this.setAttribute('aria-pressed', paused ? 'true' : 'false');
    this.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) { queue.forEach(function (e) { add(e, true); }); queue = []; status(true, 'live'); }
  });
  start();
  MG.poll(function () {
    return MG.api('/api/stats').then(function (st) {
      var e = st.events_per_kind || {};
      MGChart.lines(document.getElementById('chart-events'), { title: 'Events per kind, last 24 h', from: e.from, bucket_s: e.bucket_s || 3600, series: e.kinds || {} });
    });
  }, 30000);
})();
