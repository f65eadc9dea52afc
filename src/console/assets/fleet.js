/* Fleet overview: counts per class and status, the device table (polled every
   3 s: a device added with `m2mguard device add` appears), and the charts. */
'use strict';
(function () {
  var el = MG.el, last = null;
  var DAY = 86400;

  function card(title, big, entries) {
    var ul = el('ul');
    Object.keys(entries || {}).sort().forEach(function (k) {
      ul.appendChild(el('li', null, [el('span', { text: k }), el('strong', { text: entries[k] })]));
    });
    return el('section', { class: 'card' }, [el('h3', { text: title }), big !== null ? el('div', { class: 'big', text: big }) : null, ul]);
  }

  function certCell(t) {
    var td = el('td', { class: 'nowrap' });
    if (!t) { td.textContent = '—'; return td; }
    var left = Number(t) - Date.now() / 1000;
    var tm = el('time', { datetime: new Date(t * 1000).toISOString(), text: MG.fmtDate(t) });
    if (left < 0) { tm.className = 'expired'; td.appendChild(tm); td.appendChild(document.createTextNode(' (expired)')); }
    else if (left < 30 * DAY) { tm.className = 'expiring'; td.appendChild(tm); td.appendChild(document.createTextNode(' (' + Math.floor(left / DAY) + ' d)')); }
    else td.appendChild(tm);
    return td;
  }

  function render() {
    if (!last) return;
    var f = (document.getElementById('filter').value || '').toLowerCase();
    var tbody = MG.clear(document.querySelector('#devices tbody'));
    var shown = 0;
    last.devices.forEach(function (d) {
      var hay = [d.name, d.class, d.status, d.bearer, d.msisdn].join(' ').toLowerCase();
      if (f && hay.indexOf(f) < 0) return;
      shown++;
      tbody.appendChild(el('tr', { 'data-device': d.name }, [
        el('th', { scope: 'row' }, [MG.deviceLink(d.name)]),
        el('td', { text: d.class || '—' }),
        el('td', null, [MG.badge(d.status)]),
        el('td', { text: d.bearer || '—' }),
        el('td', { class: 'mono nowrap', text: d.msisdn || '—' }),
        el('td', { class: 'num', text: d.key_version === null || d.key_version === undefined ? '—' : d.key_version }),
        el('td', { class: 'num', text: d.key_age_days === null || d.key_age_days === undefined ? '—' : d.key_age_days + ' d' }),
        certCell(d.cert_not_after),
        MG.timeCell(d.last_seen)
      ]));
    });
    if (!shown) MG.emptyRow(tbody, 9, last.devices.length ? 'no device matches the filter' : 'no devices yet: add one with m2mguard device add');
    var more = document.getElementById('devices-more');
    more.textContent = last.total > last.devices.length
      ? 'Showing ' + last.devices.length + ' of ' + last.total + ' devices.' : '';
  }

  function load() {
    return MG.api('/api/fleet?limit=500').then(function (j) {
      last = j;
      var sum = MG.clear(document.getElementById('summary'));
      var active = (j.by_status || {}).active || 0;
      sum.appendChild(card('Devices', j.total, null));
      sum.appendChild(card('Active', active, null));
      sum.appendChild(card('By status', null, j.by_status));
      sum.appendChild(card('By class', null, j.by_class));
      render();
      document.getElementById('fleet-updated').textContent = 'Updated ' + MG.fmtTime(Date.now() / 1000) + ' · refreshes every 3 s';
    });
  }

  function stats() {
    return MG.api('/api/stats').then(function (st) {
      MGChart.keyAge(document.getElementById('chart-keyage'), st.key_age_days);
      var e = st.events_per_kind || {};
      MGChart.lines(document.getElementById('chart-events'), { title: 'Events per kind, last 24 h', from: e.from, bucket_s: e.bucket_s || 3600, series: e.kinds || {} });
      var a = st.alerts_per_rule || {};
      MGChart.bars(document.getElementById('chart-alerts'), {
        title: 'Alerts per rule', color: 1, unit: 'alerts', empty: 'no alerts',
        items: Object.keys(a).map(function (k) { return { label: k, value: a[k] }; }).sort(function (x, y) { return y.value - x.value; })
      });
    });
  }

  document.getElementById('filter').addEventListener('input', render);
  MG.poll(load, 3000);
  MG.poll(stats, 30000);
})();
