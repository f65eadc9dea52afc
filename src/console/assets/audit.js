/* Audit findings (the JSON of `m2mguard audit --json`), most severe first. */
'use strict';
(function () {
  var el = MG.el, data = null;
  var ORDER = { critical: 0, high: 1, medium: 2, low: 3, info: 4 };
  var sevSel = document.getElementById('sev');

  function render() {
    if (!data) return;
    var min = ORDER[sevSel.value];
    var tbody = MG.clear(document.querySelector('#findings tbody'));
    var list = (data.findings || []).filter(function (f) { return (ORDER[f.severity] === undefined ? 4 : ORDER[f.severity]) <= min; });
    list.sort(function (a, b) { return (ORDER[a.severity] || 0) - (ORDER[b.severity] || 0); });
    list.forEach(function (f) {
      tbody.appendChild(el('tr', null, [
        el('td', null, [MG.badge(f.severity)]),
        el('th', { scope: 'row', class: 'mono', text: f.check }),
        el('td', { class: 'reason', text: f.what }),
        el('td', { class: 'mono', text: f.where || '—' }),
        el('td', { class: 'reason', text: f.why || '' }),
        el('td', { class: 'reason', text: f.fix || '' })
      ]));
    });
    MG.label(document.getElementById('findings'));
    if (!list.length) MG.emptyRow(tbody, 6, (data.findings || []).length ? 'no finding at this severity or above' : 'no findings: the audit found nothing to fix');
  }

  function load() {
    return MG.api('/api/audit').then(function (j) {
      data = j;
      var s = j.summary || {};
      var cards = MG.clear(document.getElementById('audit-summary'));
      [['Findings', s.findings], ['Critical', s.critical], ['High', s.high], ['Medium', s.medium], ['Low', s.low], ['Devices checked', s.devices], ['Certificates checked', s.certificates]]
        .forEach(function (c) {
          cards.appendChild(el('section', { class: 'card' }, [el('h3', { text: c[0] }), el('div', { class: 'big', text: c[1] === undefined ? '—' : c[1] })]));
        });
      render();
    });
  }
  sevSel.addEventListener('change', render);
  MG.poll(load, 30000);
})();
