/* m2mguard console: small SVG charts built with createElementNS (no library,
   no inline style: colours are the classes c0..c7 of app.css). Every chart
   is an <svg role="img"> with a <title> and a <desc> naming its data. */
'use strict';
(function () {
  var NS = 'http://www.w3.org/2000/svg';
  var seq = 0;

  function s(tag, attrs, text) {
    var e = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }
  /* an axis maximum of 4 round steps (4, 8, 20, 40, 200...) at or above max */
  function nice(max) {
    if (max <= 4) return 4;
    var step = max / 4, p = Math.pow(10, Math.floor(Math.log10(step)));
    var m = step / p;
    return 4 * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }
  function frame(fig, title, desc, w, h) {
    clear(fig);
    var id = 'chart' + (++seq);
    fig.appendChild(Object.assign(document.createElement('figcaption'), { textContent: title, id: id + '-cap' }));
    var svg = s('svg', { viewBox: '0 0 ' + w + ' ' + h, width: w, height: h, role: 'img', 'aria-labelledby': id + '-t ' + id + '-d',
      preserveAspectRatio: 'xMidYMid meet' });
    svg.appendChild(s('title', { id: id + '-t' }, title));
    svg.appendChild(s('desc', { id: id + '-d' }, desc));
    fig.appendChild(svg);
    return svg;
  }
  function empty(fig, title, text) {
    clear(fig);
    fig.appendChild(Object.assign(document.createElement('figcaption'), { textContent: title }));
    fig.appendChild(Object.assign(document.createElement('p'), { className: 'chart-empty', textContent: text }));
  }
  function short(t, n) { t = String(t); return t.length > n ? t.slice(0, n - 1) + '…' : t; }

  /* Horizontal bars: items [{label, value}] (sorted by the caller). */
  function bars(fig, o) {
    var items = (o.items || []).slice(0, o.max || 10);
    if (!items.length) { empty(fig, o.title, o.empty || 'nothing yet'); return; }
    var rowH = 28, left = 132, right = 36, top = 6, w = 380;
    var h = top + items.length * rowH + 24;
    var desc = items.map(function (i) { return i.label + ': ' + i.value; }).join(', ');
    var svg = frame(fig, o.title, desc, w, h);
    var max = nice(Math.max.apply(null, items.map(function (i) { return i.value; })));
    var plotW = w - left - right;
    for (var g = 0; g <= 4; g++) {
      var gx = left + plotW * g / 4;
      svg.appendChild(s('line', { x1: gx, x2: gx, y1: top, y2: h - 20, class: 'grid' }));
      svg.appendChild(s('text', { x: gx, y: h - 6, 'text-anchor': 'middle' }, Math.round(max * g / 4)));
    }
    items.forEach(function (it, i) {
      var y = top + i * rowH;
      var bw = max ? Math.max(it.value > 0 ? 2 : 0, plotW * it.value / max) : 0;
      var label = s('text', { x: left - 8, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, short(it.label, 18));
      label.appendChild(s('title', {}, it.label));
      svg.appendChild(label);
      var r = s('rect', { x: left, y: y + 4, width: bw.toFixed(1), height: rowH - 8, rx: 2, class: it.cls || ('c' + (o.color || 0)) });
      r.appendChild(s('title', {}, it.label + ': ' + it.value + (o.unit ? ' ' + o.unit : '')));
      svg.appendChild(r);
      svg.appendChild(s('text', { x: left + bw + 5, y: y + rowH / 2 + 4, class: 'val' }, it.value));
    });
    svg.appendChild(s('line', { x1: left, x2: left, y1: top, y2: h - 20, class: 'axis' }));
  }

  /* Lines over time: series {name: [n0, n1, ...]} in buckets of bucket_s from `from`. */
  function lines(fig, o) {
    var names = Object.keys(o.series || {});
    names.sort(function (a, b) { return sum(o.series[b]) - sum(o.series[a]); });
    names = names.filter(function (n) { return sum(o.series[n]) > 0; });
    if (!names.length) { empty(fig, o.title, o.empty || 'no events in this period'); return; }
    if (names.length > 7) { // the 6 largest, the rest as "other"
      var other = [];
      names.slice(6).forEach(function (n) { o.series[n].forEach(function (v, i) { other[i] = (other[i] || 0) + v; }); });
      o.series.other = other;
      names = names.slice(0, 6).concat(['other']);
    }
    var n = Math.max.apply(null, names.map(function (k) { return o.series[k].length; }));
    // drawn at the width of its box (no scaling of the text), 320..900 units
    var w = Math.max(320, Math.min(900, (fig.clientWidth || 470) - 30)), h = 200, left = 34, right = 10, top = 10, bottom = 28;
    var max = nice(Math.max.apply(null, names.map(function (k) { return Math.max.apply(null, o.series[k]); })));
    var desc = names.map(function (k) { return k + ': ' + sum(o.series[k]); }).join(', ') +
      ' (' + n + ' buckets of ' + Math.round(o.bucket_s / 60) + ' min)';
    var svg = frame(fig, o.title, desc, w, h);
    var pw = w - left - right, ph = h - top - bottom;
    function x(i) { return left + (n > 1 ? pw * i / (n - 1) : pw / 2); }
    function y(v) { return top + ph - ph * v / max; }
    for (var g = 0; g <= 4; g++) {
      var gy = top + ph - ph * g / 4;
      svg.appendChild(s('line', { x1: left, x2: w - right, y1: gy, y2: gy, class: 'grid' }));
      svg.appendChild(s('text', { x: left - 6, y: gy + 4, 'text-anchor': 'end' }, Math.round(max * g / 4)));
    }
    var step = Math.max(1, Math.ceil(n / 6));
    for (var i = 0; i < n; i += step) {
      var d = new Date((o.from + i * o.bucket_s) * 1000);
      var lbl = o.bucket_s >= 86400 ? (d.getMonth() + 1) + '/' + d.getDate()
        : ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
      svg.appendChild(s('text', { x: x(i), y: h - 10, 'text-anchor': 'middle' }, lbl));
    }
    svg.appendChild(s('line', { x1: left, x2: w - right, y1: top + ph, y2: top + ph, class: 'axis' }));
    var legend = document.createElement('ul');
    legend.className = 'legend';
    names.forEach(function (k, si) {
      var pts = o.series[k].map(function (v, i) { return x(i).toFixed(1) + ',' + y(v).toFixed(1); }).join(' ');
      var pl = s('polyline', { points: pts, class: 'line c' + si });
      pl.appendChild(s('title', {}, k + ': ' + sum(o.series[k]) + ' in total'));
      svg.appendChild(pl);
      o.series[k].forEach(function (v, i) {
        if (v > 0) {
          var c = s('circle', { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 3, class: 'c' + si });
          c.appendChild(s('title', {}, k + ': ' + v));
          svg.appendChild(c);
        }
      });
      var li = document.createElement('li');
      var sw = document.createElement('span');
      sw.className = 'swatch c' + si;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(k + ' (' + sum(o.series[k]) + ')'));
      legend.appendChild(li);
    });
    fig.appendChild(legend);
  }
  function sum(a) { return (a || []).reduce(function (x, y) { return x + (Number(y) || 0); }, 0); }

  /* Devices by key age: buckets of days. */
  function keyAge(fig, list) {
    var edges = [[0, 30, '< 30 days'], [30, 90, '30–89 days'], [90, 180, '90–179 days'], [180, 365, '180–364 days'], [365, 1e9, '≥ 1 year']];
    var counts = edges.map(function () { return 0; });
    var unknown = 0;
    (list || []).forEach(function (k) {
      if (k.days === null || k.days === undefined) { unknown++; return; }
      for (var i = 0; i < edges.length; i++) if (k.days >= edges[i][0] && k.days < edges[i][1]) { counts[i]++; break; }
    });
    var items = edges.map(function (e, i) { return { label: e[2], value: counts[i], cls: 'c' + (i < 2 ? 2 : i < 3 ? 6 : i < 4 ? 1 : 4) }; });
    if (unknown) items.push({ label: 'unknown', value: unknown, cls: 'c7' });
    if (!(list || []).length) { empty(fig, 'Devices by key age', 'no devices'); return; }
    bars(fig, { title: 'Devices by key age', items: items, unit: 'devices' });
  }

  window.MGChart = { bars: bars, lines: lines, keyAge: keyAge, sum: sum };
})();
