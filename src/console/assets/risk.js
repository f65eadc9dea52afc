/* Risk: the engine's verdict on top; its full report (with its charts) in the
   sandboxed iframe below, served by the server at /risk/report. */
'use strict';
(function () {
  var el = MG.el;
  MG.api('/api/risk').then(function (j) {
    var box = MG.clear(document.getElementById('verdict'));
    var good = /^secure enough/i.test(j.verdict || '');
    box.className = 'verdict ' + (good ? 'good' : 'bad');
    box.appendChild(el('p', { class: 'muted small', text: 'Verdict of the risk engine' }));
    box.appendChild(el('p', { class: 'v', text: j.verdict || 'unknown' }));
    if (j.summary) box.appendChild(el('p', { text: j.summary }));
    if (j.generated) box.appendChild(el('p', { class: 'muted small', text: 'Analysed ' + MG.fmtTime(j.generated) }));
  }).catch(function (e) {
    var box = MG.clear(document.getElementById('verdict'));
    box.className = 'verdict bad';
    box.appendChild(el('p', { text: 'The verdict could not be loaded: ' + e.message }));
  });
})();
