/* Alerts: open (or all) alerts with their evidence and response, and the
   actions the server lists for this operator on each (ack, close, quarantine,
   activate, rotate, revoke). A viewer gets no buttons: the list is empty. */
'use strict';
(function () {
  var el = MG.el;
  var box = document.getElementById('alerts');
  var stateSel = document.getElementById('a-state');
  var busy = false;
  var LABEL = { ack: 'Acknowledge', close: 'Close', quarantine: 'Quarantine device', activate: 'Activate device',
    rotate: 'Rotate device keys', revoke: 'Revoke certificates' };
  var CLASS = { ack: 'primary', close: '', quarantine: 'danger', activate: 'primary', rotate: '', revoke: 'danger' };

  function doAction(a, al, note) {
    var path, body;
    if (a === 'ack' || a === 'close') { path = '/api/alerts/' + a; body = { id: al.id, note: note }; }
    else { path = '/api/device/' + a; body = { name: al.device, alert: al.id }; }
    if ((a === 'quarantine' || a === 'revoke' || a === 'rotate') &&
        !window.confirm(LABEL[a] + ' ' + al.device + ' (alert ' + al.id + ')?')) return;
    busy = true;
    MG.api(path, body).then(function (r) {
      MG.toast(r && r.done ? r.done : LABEL[a] + ': done');
    }).catch(function (e) { MG.toast(LABEL[a] + ' failed: ' + e.message, true); })
      .then(function () { busy = false; load(); });
  }

  function card(al) {
    var noteId = 'note-' + al.id;
    var sev = String(al.severity || 'info');
    var head = el('h2', null, [
      MG.badge(sev), MG.badge(al.state, al.state === 'open' ? 'open' : al.state),
      el('span', { text: '#' + al.id + ' ' + al.rule })
    ]);
    var dl = el('dl');
    function pair(k, v) { dl.appendChild(el('dt', { text: k })); dl.appendChild(el('dd', null, [v])); }
    pair('Scope', document.createTextNode(al.scope + (al.device ? ' · ' : '')));
    if (al.device) dl.lastChild.appendChild(MG.deviceLink(al.device));
    if (al.source) pair('Source', el('span', { class: 'mono', text: al.source }));
    pair('Evidence', document.createTextNode(al.evidence_count + ' event(s), ' + (al.authenticated ? 'authenticated' : 'not authenticated (a sender number can be forged)')));
    pair('First evidence', document.createTextNode(MG.fmtTime(al.first_evidence)));
    pair('Detected', document.createTextNode(al.detected_ms ? MG.fmtTime(Math.floor(al.detected_ms / 1000)) : '—'));
    pair('Response', document.createTextNode(al.response || '—'));
    if (al.note) pair('Note', document.createTextNode(al.note));
    var acts = (al.actions || []).filter(function (a) { return LABEL[a]; });
    var act = null;
    if (acts.length) {
      act = el('div', { class: 'act' });
      if (acts.indexOf('ack') >= 0 || acts.indexOf('close') >= 0) {
        act.appendChild(el('div', { class: 'field' }, [
          el('label', { for: noteId, text: 'Note for alert ' + al.id }),
          el('input', { id: noteId, type: 'text', maxlength: 200, placeholder: 'optional' })
        ]));
      }
      acts.forEach(function (a) {
        act.appendChild(el('button', { type: 'button', class: CLASS[a], 'data-action': a, 'data-alert': al.id, text: LABEL[a],
          on: { click: function () { var n = document.getElementById(noteId); doAction(a, al, n ? n.value : ''); } } }));
      });
    }
    return el('article', { class: 'alert sev-' + sev + ' st-' + al.state, 'data-alert': al.id, 'data-rule': al.rule, 'aria-labelledby': 'al-' + al.id }, [
      head, el('p', { class: 'summary', id: 'al-' + al.id, text: al.summary || '' }), dl, act
    ]);
  }

  function load() {
    if (busy) return Promise.resolve();
    var focused = document.activeElement && document.activeElement.id;
    var typing = focused && focused.indexOf('note-') === 0 ? { id: focused, v: document.activeElement.value } : null;
    if (typing) return Promise.resolve(); // do not redraw under the operator's cursor
    return MG.api('/api/alerts?state=' + encodeURIComponent(stateSel.value)).then(function (j) {
      var list = (j.alerts || []).slice().sort(function (a, b) { return b.id - a.id; });
      MG.clear(box);
      list.forEach(function (a) { box.appendChild(card(a)); });
      if (!list.length) box.appendChild(el('p', { class: 'none', text: stateSel.value === 'open' ? 'No open alerts.' : 'No alerts.' }));
      document.getElementById('a-count').textContent = list.length + ' alert(s)';
      var per = {};
      list.forEach(function (a) { per[a.rule] = (per[a.rule] || 0) + 1; });
      MGChart.bars(document.getElementById('chart-alerts'), {
        title: 'Alerts per rule (' + (stateSel.value === 'open' ? 'open' : 'all') + ')', color: 1, unit: 'alerts', empty: 'no alerts',
        items: Object.keys(per).map(function (k) { return { label: k, value: per[k] }; }).sort(function (x, y) { return y.value - x.value; })
      });
    });
  }
  stateSel.value = MG.param('state') === 'all' ? 'all' : 'open';
  stateSel.addEventListener('change', load);
  MG.poll(load, 4000);
})();
