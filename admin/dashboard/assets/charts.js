// Small SVG charts for the clvd dashboard: line, bars (vertical or horizontal) and histogram.
// No dependencies; every chart is an <svg class="chart"> with a viewBox, so it scales with its
// container, and every mark has a <title> (the browser's tooltip) with its exact value.
(function (global) {
  'use strict';

  var NS = 'http://www.w3.org/2000/svg';

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
      });
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  function text(parent, x, y, s, attrs) {
    var t = el('text', Object.assign({ x: x, y: y }, attrs || {}), parent);
    t.textContent = s;
    return t;
  }

  function title(parent, s) {
    var t = el('title', null, parent);
    t.textContent = s;
  }

  function svg(container, width, height, label) {
    var s = el('svg', { viewBox: '0 0 ' + width + ' ' + height, class: 'chart', role: 'img', 'aria-label': label || 'chart',
      preserveAspectRatio: 'xMidYMid meet' });
    container.appendChild(s);
    return s;
  }

  // niceTicks returns about count round tick values covering [min, max].
  function niceTicks(min, max, count) {
    if (!isFinite(min) || !isFinite(max)) return [0, 1];
    if (max === min) {
      if (max === 0) return [0, 1];
      var pad = Math.abs(max) * 0.1;
      min -= pad; max += pad;
    }
    var raw = (max - min) / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    var step = mag;
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * mag >= raw) { step = steps[i] * mag; break; }
    }
    var lo = Math.floor(min / step) * step;
    var hi = Math.ceil(max / step) * step;
    var out = [];
    for (var v = lo; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  // yAxis draws the grid lines and their labels; fmt gets each tick and the step between ticks
  // (so that it can show as many decimals as the step needs).
  function yAxis(s, ticks, y, x0, x1, fmt) {
    var step = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
    ticks.forEach(function (t) {
      var yy = y(t);
      el('line', { x1: x0, x2: x1, y1: yy, y2: yy, class: t === ticks[0] ? 'axis' : 'grid' }, s);
      text(s, x0 - 5, yy + 3.5, fmt(t, step), { 'text-anchor': 'end', 'font-size': 10 });
    });
  }

  // stepDigits is how many decimals show a multiple of step exactly.
  function stepDigits(step) {
    var d = 0;
    while (d < 6 && Math.abs(Math.round(step * Math.pow(10, d)) - step * Math.pow(10, d)) > 1e-6 * Math.pow(10, d)) d++;
    return d;
  }

  function noData(s, w, h) {
    text(s, w / 2, h / 2, 'no data', { 'text-anchor': 'middle', 'font-size': 12 });
  }

  // line draws values (numbers, or null for a gap) over labels.
  // opts: labels, values, format (value → text), tickFormat, titles (label → text), width, height, zero (start the axis at 0).
  function line(container, opts) {
    var W = opts.width || 420, H = opts.height || 150;
    var m = { l: 46, r: 10, t: 10, b: 22 };
    var s = svg(container, W, H, opts.label);
    var vals = opts.values, n = vals.length;
    var present = vals.filter(function (v) { return v !== null && v !== undefined && isFinite(v); });
    if (!present.length) { noData(s, W, H); return s; }
    var min = Math.min.apply(null, present), max = Math.max.apply(null, present);
    if (opts.zero) min = Math.min(0, min);
    var ticks = niceTicks(min, max, 4);
    var lo = ticks[0], hi = ticks[ticks.length - 1];
    var x = function (i) { return n === 1 ? (m.l + W - m.r) / 2 : m.l + 8 + i * (W - m.l - m.r - 16) / (n - 1); };
    var y = function (v) { return H - m.b - (v - lo) / (hi - lo || 1) * (H - m.t - m.b); };
    yAxis(s, ticks, y, m.l, W - m.r, opts.tickFormat || opts.format);
    var every = Math.max(1, Math.ceil(n / Math.floor((W - m.l) / 34)));
    opts.labels.forEach(function (lab, i) {
      if ((n - 1 - i) % every === 0) text(s, x(i), H - 6, lab, { 'text-anchor': 'middle', 'font-size': 10 });
    });
    var d = '', area = '', open = false, first = -1, last = -1;
    vals.forEach(function (v, i) {
      if (v === null || v === undefined || !isFinite(v)) { open = false; return; }
      d += (open ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1);
      if (first < 0) first = i;
      last = i;
      open = true;
    });
    if (present.length === n && n > 1) {
      area = d + 'L' + x(last).toFixed(1) + ' ' + y(lo).toFixed(1) + 'L' + x(first).toFixed(1) + ' ' + y(lo).toFixed(1) + 'Z';
      el('path', { d: area, class: 'area' }, s);
    }
    el('path', { d: d, class: 'line' }, s);
    vals.forEach(function (v, i) {
      if (v === null || v === undefined || !isFinite(v)) return;
      var c = el('circle', { cx: x(i), cy: y(v), r: 3, class: 'dot' }, s);
      title(c, (opts.titles ? opts.titles[i] : opts.labels[i]) + ': ' + opts.format(v));
    });
    return s;
  }

  // bars draws one bar per label. opts: labels, values, format, colors (per bar), width, height,
  // horizontal (labels on the left: long names), valueLabels (texts over the bars).
  function bars(container, opts) {
    if (opts.horizontal) return hbars(container, opts);
    var W = opts.width || 420, H = opts.height || 180;
    var m = { l: 46, r: 8, t: 16, b: 22 };
    var s = svg(container, W, H, opts.label);
    var vals = opts.values, n = vals.length;
    if (!n) { noData(s, W, H); return s; }
    var max = Math.max.apply(null, vals.concat([0]));
    var ticks = niceTicks(0, max || 1, 4);
    var hi = ticks[ticks.length - 1];
    var y = function (v) { return H - m.b - v / (hi || 1) * (H - m.t - m.b); };
    yAxis(s, ticks, y, m.l, W - m.r, opts.tickFormat || opts.format);
    var band = (W - m.l - m.r) / n, bw = Math.min(56, band * 0.66);
    vals.forEach(function (v, i) {
      var cx = m.l + band * (i + 0.5);
      var r = el('rect', { x: cx - bw / 2, y: y(Math.max(0, v)), width: bw, height: Math.max(0.5, y(0) - y(Math.max(0, v))), class: 'bar', rx: 2 }, s);
      if (opts.colors && opts.colors[i]) r.style.fill = opts.colors[i];
      title(r, opts.labels[i] + ': ' + opts.format(v));
      text(s, cx, H - 6, opts.labels[i], { 'text-anchor': 'middle', 'font-size': 10.5 });
      text(s, cx, y(Math.max(0, v)) - 4, opts.valueLabels ? opts.valueLabels[i] : opts.format(v),
        { 'text-anchor': 'middle', 'font-size': 10, class: 'value-label' });
    });
    return s;
  }

  function hbars(container, opts) {
    var n = opts.values.length;
    var W = opts.width || 420, rowH = 22, m = { l: opts.labelWidth || 118, r: 92, t: 4, b: 4 };
    var H = opts.height || (m.t + m.b + Math.max(1, n) * rowH);
    var s = svg(container, W, H, opts.label);
    if (!n) { noData(s, W, H); return s; }
    var max = Math.max.apply(null, opts.values.concat([0])) || 1;
    var x = function (v) { return m.l + v / max * (W - m.l - m.r); };
    el('line', { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: 'axis' }, s);
    opts.values.forEach(function (v, i) {
      var yy = m.t + i * rowH;
      text(s, m.l - 6, yy + rowH / 2 + 3.5, opts.labels[i], { 'text-anchor': 'end', 'font-size': 11 });
      var r = el('rect', { x: m.l, y: yy + 4, width: Math.max(0.5, x(Math.max(0, v)) - m.l), height: rowH - 8, class: 'bar', rx: 2 }, s);
      if (opts.colors && opts.colors[i]) r.style.fill = opts.colors[i];
      title(r, opts.labels[i] + ': ' + opts.format(v));
      text(s, x(Math.max(0, v)) + 5, yy + rowH / 2 + 3.5, opts.valueLabels ? opts.valueLabels[i] : opts.format(v),
        { 'font-size': 10.5, class: 'value-label' });
    });
    return s;
  }

  // histogram draws adjacent bins. opts: bins [{lo, hi, count, open}], formatX (edge → text),
  // width, height.
  function histogram(container, opts) {
    var W = opts.width || 520, H = opts.height || 210;
    var m = { l: 46, r: 10, t: 12, b: 34 };
    var s = svg(container, W, H, opts.label);
    var bins = opts.bins || [], n = bins.length;
    var total = bins.reduce(function (a, b) { return a + b.count; }, 0);
    if (!n || !total) { noData(s, W, H); return s; }
    var max = Math.max.apply(null, bins.map(function (b) { return b.count; }));
    var ticks = niceTicks(0, max, 4);
    var hi = ticks[ticks.length - 1];
    var y = function (v) { return H - m.b - v / hi * (H - m.t - m.b); };
    var fmtCount = function (v) { return Math.round(v).toLocaleString(); };
    yAxis(s, ticks, y, m.l, W - m.r, fmtCount);
    var bw = (W - m.l - m.r) / n;
    var every = Math.max(1, Math.ceil(n / Math.floor((W - m.l) / 46)));
    bins.forEach(function (b, i) {
      var x0 = m.l + i * bw;
      var r = el('rect', { x: x0 + 0.5, y: y(b.count), width: Math.max(0.5, bw - 1), height: Math.max(0, y(0) - y(b.count)), class: 'bar' }, s);
      if (b.open) r.style.opacity = '0.55';
      var range = b.open ? '≥ ' + opts.formatX(b.lo) : opts.formatX(b.lo) + ' – ' + opts.formatX(b.hi);
      title(r, range + ': ' + b.count.toLocaleString() + ' customers (' + (100 * b.count / total).toFixed(1) + '%)');
      if (i % every === 0) text(s, x0, H - m.b + 13, opts.formatX(b.lo), { 'text-anchor': 'middle', 'font-size': 10 });
      if (b.open) text(s, x0 + bw / 2, H - m.b + 26, '≥ ' + opts.formatX(b.lo), { 'text-anchor': 'middle', 'font-size': 10 });
    });
    el('line', { x1: m.l, x2: W - m.r, y1: y(0), y2: y(0), class: 'axis' }, s);
    if (opts.xLabel) text(s, (m.l + W - m.r) / 2, H - 3, opts.xLabel, { 'text-anchor': 'middle', 'font-size': 10.5 });
    return s;
  }

  // heat maps t in [0, 1] to a blue scale; dark says whether text on it should be white.
  function heat(t) {
    t = Math.max(0, Math.min(1, t));
    var from = [239, 245, 255], to = [30, 64, 175];
    var c = from.map(function (f, i) { return Math.round(f + (to[i] - f) * t); });
    return { color: 'rgb(' + c.join(',') + ')', dark: t > 0.5 };
  }

  global.Charts = { line: line, bars: bars, histogram: histogram, heat: heat, niceTicks: niceTicks, stepDigits: stepDigits };
})(window);
