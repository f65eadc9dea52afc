/* Device page: metadata, keys and certificates (never key material), commands,
   events, and the actions the operator's role allows. */
'use strict';
(function () {
  var el = MG.el;
  var name = MG.param('name') || '';
  document.getElementById('crumb-name').textContent = name;
  document.title = name + ' · m2mguard console';

  var ACTIONS = [
    ['quarantine', 'Quarantine', 'danger', 'Quarantine ' + name + '? The gateway will refuse its messages.'],
    ['activate', 'Activate', 'primary', 'Activate ' + name + ' again?'],
    ['rotate', 'Rotate keys', '', 'Rotate the keys of ' + name + '? A new key version is sent to the device.'],
    ['revoke', 'Revoke certificates', 'danger', 'Revoke the certificates of ' + name + '? This cannot be undone.']
  ];

  function row(cells) { return el('tr', null, cells); }
  function td(text, cls) { return el('td', { class: cls || null, text: text === null || text === undefined || text === '' ? '—' : text }); }

  function fill(id, list, cols, mk, none) {
    var tbody = MG.clear(document.querySelector('#' + id + ' tbody'));
    (list || []).forEach(function (x) { tbody.appendChild(mk(x)); });
    MG.label(document.getElementById(id));
    if (!(list || []).length) MG.emptyRow(tbody, cols, none);
  }

  function act(a, label) {
    MG.api('/api/device/' + a, { name: name }).then(function (r) {
      MG.toast(r && r.done ? r.done : label + ': done');
      load();
    }).catch(function (e) { MG.toast(label + ' failed: ' + e.message, true); });
  }

  function actions(d) {
    var box = MG.clear(document.getElementById('dev-actions'));
    ACTIONS.forEach(function (a) {
      if (!MG.can(a[0])) return;
      if (a[0] === 'quarantine' && d.status !== 'active') return;
      if (a[0] === 'activate' && d.status !== 'quarantined') return;
      box.appendChild(el('button', { type: 'button', class: a[2], 'data-action': a[0], text: a[1], on: { click: function () {
        if (window.confirm(a[3])) act(a[0], a[1]);
      } } }));
    });
    document.getElementById('actions-box').hidden = !box.firstChild;
  }

  function load() {
    return Promise.all([MG.api('/api/device?name=' + encodeURIComponent(name)), MG.me()]).then(function (r) {
      var j = r[0], d = j.device;
      document.getElementById('dev-title').textContent = d.name;
      var st = MG.clear(document.getElementById('dev-status'));
      st.appendChild(MG.badge(d.status));
      if (d.class) st.appendChild(MG.badge(d.class, 'info'));
      var meta = MG.clear(document.getElementById('dev-meta'));
      [['Id', d.id], ['Class', d.class], ['Status', d.status], ['Bearer', d.bearer], ['Number (MSISDN)', d.msisdn],
       ['Key version', d.key_version], ['Key age', d.key_age_days === null || d.key_age_days === undefined ? null : d.key_age_days + ' days'],
       ['Key created', d.key_created ? MG.fmtTime(d.key_created) : null],
       ['Certificate expires', d.cert_not_after ? MG.fmtTime(d.cert_not_after) : null],
       ['Last seen', d.last_seen ? MG.fmtTime(d.last_seen) + ' (' + MG.ago(d.last_seen) + ')' : 'never']
      ].forEach(function (p) {
        meta.appendChild(el('dt', { text: p[0] }));
        meta.appendChild(el('dd', { text: p[1] === null || p[1] === undefined || p[1] === '' ? '—' : p[1] }));
      });
      fill('keys', j.keys, 4, function (k) { return row([td(k.version, 'num'), td(k.alg), el('td', null, [MG.badge(k.state, k.state === 'active' ? 'ok' : k.state === 'pending' ? 'warn' : 'info')]), td(MG.fmtTime(k.created), 'nowrap')]); }, 'no keys');
      fill('certs', j.certs, 3, function (c) { return row([td(c.serial, 'mono'), td(MG.fmtTime(c.not_after), 'nowrap'), el('td', null, [c.revoked ? MG.badge('revoked') : MG.badge('valid', 'ok')])]); }, 'no certificates (SMS bearer only)');
      fill('cmds', j.commands, 5, function (c) { return row([td(c.id, 'num'), td(c.name), el('td', null, [MG.badge(c.state, 'info')]), td(MG.fmtTime(c.created), 'nowrap'), td(c.detail, 'reason')]); }, 'no commands');
      fill('dev-events', j.events, 6, function (e) { return row([MG.timeCell(e.time), el('td', null, [MG.badge(e.kind, e.authenticated ? 'auth' : 'info')]), td(e.bearer), td(e.source, 'mono'), td(e.count, 'num'), td(e.reason, 'reason')]); }, 'no events');
      actions(d);
    }).catch(function (e) {
      if (e.status === 404) document.getElementById('dev-title').textContent = 'No device named ' + name;
      else throw e;
    });
  }
  MG.poll(load, 5000);
})();
