/*
 * clvd's Zendesk sidebar: reads the ticket's requester through the ZAF client, asks clvd for the
 * requester's figures with the page's session token, and shows them. Text is only ever set with
 * textContent, never parsed as HTML.
 */
(function () {
  'use strict';

  var SVG = 'http://www.w3.org/2000/svg';
  var DAY = 864e5;
  var STATES = ['loading', 'outside', 'norequester', 'notfound', 'error', 'customer'];

  function meta(name) {
    var m = document.querySelector('meta[name="' + name + '"]');
    return m ? m.getAttribute('content') : '';
  }
  function $(id) { return document.getElementById(id); }
  function setText(id, text) { $(id).textContent = text == null ? '' : String(text); }

  var session = meta('clvd-session');
  var api = meta('clvd-api');
  var client = window.ZAFClient ? window.ZAFClient.init() : false;
  var lastRequester = '';

  function resize() {
    if (!client) { return; }
    window.requestAnimationFrame(function () {
      var h = Math.ceil(document.documentElement.scrollHeight);
      client.invoke('resize', { width: '100%', height: h + 'px' }).catch(function () { /* an old frame: keep its size */ });
    });
  }

  function show(state) {
    STATES.forEach(function (s) { $('state-' + s).hidden = s !== state; });
    document.body.setAttribute('data-state', state);
    resize();
  }

  function fail(message) {
    setText('error-text', message);
    show('error');
  }

  // ---- formatting ----
  function money(v, currency) {
    if (v == null || isNaN(v)) { return '–'; }
    try {
      return new Intl.NumberFormat(undefined, {
        style: 'currency', currency: currency || 'USD',
        maximumFractionDigits: Math.abs(v) >= 1000 ? 0 : 2, minimumFractionDigits: Math.abs(v) >= 1000 ? 0 : 2
      }).format(v);
    } catch (e) {
      return v.toFixed(2) + ' ' + (currency || '');
    }
  }
  function pct(p) { return p == null ? '–' : Math.round(p * 100) + '%'; }
  function date(s) {
    if (!s) { return '–'; }
    return new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' }).format(new Date(s));
  }
  function relative(s, now) {
    if (!s) { return ''; }
    var days = Math.round((Date.parse(s) - now) / DAY);
    if (days === 0) { return 'today'; }
    if (days > 0) { return days === 1 ? 'tomorrow' : 'in ' + days + ' days'; }
    days = -days;
    return days === 1 ? 'yesterday' : days + ' days ago';
  }
  function words(s) { return s ? String(s).replace(/_/g, ' ') : ''; }

  // ---- data ----
  function load(requester) {
    var q = new URLSearchParams();
    if (requester.id) { q.set('user_id', String(requester.id)); }
    if (requester.email) { q.set('email', requester.email); }
    var key = q.toString();
    if (key === lastRequester) { return Promise.resolve(); }
    lastRequester = key;
    show('loading');
    return fetch(api + '?' + key, {
      headers: { 'Authorization': 'Bearer ' + session, 'Accept': 'application/json' },
      credentials: 'omit', cache: 'no-store'
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (res.status === 401) { throw new Error((body.error || 'session expired') + '.'); }
        if (!res.ok) { throw new Error(body.error || ('clvd answered HTTP ' + res.status)); }
        return body;
      });
    }).then(function (d) {
      if (!d.found) {
        setText('nf-who', requester.email || requester.name || ('user ' + requester.id));
        show('notfound');
        return;
      }
      render(d);
    }).catch(function (err) {
      lastRequester = '';
      fail(err && err.message ? err.message : String(err));
    });
  }

  function render(d) {
    var now = Date.parse(d.now) || Date.now();
    var c = d.customer, s = d.score, cur = d.currency;
    setText('c-name', c.name || c.email || ('Customer ' + c.id));
    setText('c-email', c.name ? c.email : '');

    var tier = $('c-tier'), seg = $('c-segment');
    tier.hidden = !s || !s.tier;
    seg.hidden = !s || !s.segment;
    if (s) {
      tier.textContent = words(s.tier);
      tier.className = 'badge tier tier-' + s.tier;
      seg.textContent = words(s.segment);
    }
    $('c-unscored').hidden = !!s;

    setText('k-predicted', s ? money(s.predicted_clv, cur) : '–');
    setText('k-predicted-hint', s && d.forecast ? 'next ' + Math.round(d.forecast.horizon_days) + ' days' : '');
    setText('k-historic', s ? money(parseFloat(s.historic), cur) : '–');
    var band = $('k-band');
    band.textContent = s ? s.churn_band : '–';
    band.className = 'band' + (s ? ' band-' + s.churn_band : '');
    setText('k-churn', s ? pct(s.churn_probability) : '');
    setText('k-alive', s ? pct(s.p_alive) : '–');
    var next = s && s.expected_next_order;
    setText('k-next', next ? date(next) : '–');
    setText('k-next-hint', next ? relative(next, now) : (s ? 'none expected' : ''));
    setText('k-orders', d.orders_count);
    setText('k-last', d.last_order ? 'last ' + date(d.last_order) : 'no orders yet');

    var reasons = $('reasons');
    reasons.textContent = '';
    var rs = s && s.churn_reasons || [];
    rs.forEach(function (r) {
      var li = document.createElement('li');
      li.textContent = r;
      reasons.appendChild(li);
    });
    $('reasons-box').hidden = rs.length === 0;

    drawChart($('chart'), d, now);
    renderOrders(d.orders);
    renderOutreach(d.outreach);
    renderTickets(d.tickets);

    setText('foot', s ? 'Scored ' + date(s.scored_at) + ' · ' + s.model + (s.current ? '' : ' · update pending') : 'Not scored yet');
    show('customer');
  }

  function renderOrders(orders) {
    var body = $('orders-body');
    body.textContent = '';
    orders.forEach(function (o) {
      var tr = document.createElement('tr');
      [date(o.created_at), o.order_id, words(o.status), money(parseFloat(o.net), o.currency)].forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = v;
        if (i === 3) { td.className = 'num'; }
        if (i === 2) { td.className = 'status status-' + o.status; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    $('orders').hidden = orders.length === 0;
    $('orders-empty').hidden = orders.length !== 0;
  }

  function item(list, title, detail) {
    var li = document.createElement('li');
    var t = document.createElement('div');
    t.className = 'item-title';
    t.textContent = title;
    li.appendChild(t);
    if (detail) {
      var dd = document.createElement('div');
      dd.className = 'item-detail';
      dd.textContent = detail;
      li.appendChild(dd);
    }
    list.appendChild(li);
  }

  function renderOutreach(rows) {
    var list = $('outreach');
    list.textContent = '';
    rows.forEach(function (o) {
      item(list, date(o.at) + ' · ' + [words(o.kind), words(o.channel), words(o.status)].filter(Boolean).join(' · '), o.summary);
    });
    $('outreach-empty').hidden = rows.length !== 0;
  }

  function renderTickets(rows) {
    var list = $('tickets');
    list.textContent = '';
    rows.forEach(function (t) {
      item(list, '#' + t.ticket_id + ' ' + (t.subject || ''), [words(t.status), t.priority, date(t.updated_at)].filter(Boolean).join(' · '));
    });
    $('tickets-empty').hidden = rows.length !== 0;
  }

  // ---- chart ----
  function svg(name, attrs, parent) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(el); }
    return el;
  }

  // drawChart draws past orders as bars (height = net amount) on a time axis, and the expected
  // purchases of the forecast horizon ahead of today as outlined bars.
  function drawChart(box, d, now) {
    box.textContent = '';
    var hist = d.history || [];
    var ahead = d.forecast && d.forecast.points || [];
    if (hist.length === 0 && ahead.length === 0) {
      var p = document.createElement('p');
      p.className = 'empty';
      p.textContent = 'No orders to draw yet.';
      box.appendChild(p);
      return;
    }
    var W = 300, H = 128, L = 6, R = 6, TOP = 14, BASE = 104;
    var t0 = hist.length ? Date.parse(hist[0].at) : now - 90 * DAY;
    var t1 = d.forecast ? Date.parse(d.forecast.until) : now + 30 * DAY;
    t0 = Math.min(t0, now - 30 * DAY);
    t1 = Math.max(t1, now + 30 * DAY);
    var span = t1 - t0;
    t0 -= span * 0.03;
    t1 += span * 0.03;
    var ev = d.forecast ? d.forecast.expected_order_value : 0;
    var maxV = hist.reduce(function (m, h) { return Math.max(m, h.amount); }, ev || 0) || 1;
    function x(t) { return L + (t - t0) / (t1 - t0) * (W - L - R); }
    function h(v) { return Math.max(1.5, v / maxV * (BASE - TOP)); }
    var bw = Math.max(2, Math.min(8, (W - L - R) / Math.max(12, (hist.length + ahead.length) * 1.6)));

    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img',
      'aria-label': hist.length + ' past orders and ' + ahead.length + ' expected ahead' });
    svg('rect', { x: x(now), y: TOP - 6, width: Math.max(0, x(t1) - x(now)), height: BASE - TOP + 6, class: 'ahead-band' }, root);
    svg('path', { d: 'M' + L + ' ' + BASE + 'H' + (W - R), class: 'axis' }, root);

    var cur = d.currency;
    hist.forEach(function (o) {
      var t = Date.parse(o.at);
      var r = svg('rect', { x: (x(t) - bw / 2).toFixed(2), y: (BASE - h(o.amount)).toFixed(2), width: bw, height: h(o.amount).toFixed(2),
        rx: 1, class: o.amount > 0 ? 'bar' : 'bar bar-void' }, root);
      svg('title', {}, r).textContent = date(o.at) + ': ' + money(o.amount, cur) + (o.amount > 0 ? '' : ' (' + words(o.status) + ')');
    });
    ahead.forEach(function (at) {
      var t = Date.parse(at);
      var r = svg('rect', { x: (x(t) - bw / 2).toFixed(2), y: (BASE - h(ev)).toFixed(2), width: bw, height: h(ev).toFixed(2),
        rx: 1, class: 'bar bar-ahead' }, root);
      svg('title', {}, r).textContent = 'expected around ' + date(at) + (ev ? ': ~' + money(ev, cur) : '');
    });
    svg('path', { d: 'M' + x(now).toFixed(2) + ' ' + (TOP - 8) + 'V' + (BASE + 3), class: 'now' }, root);

    var labels = [
      [x(t0 + (t1 - t0) * 0.0) + 2, 'start', new Date(t0).getFullYear()],
      [x(now), 'middle', 'today'],
      [W - R, 'end', d.forecast ? '+' + Math.round(d.forecast.horizon_days) + 'd' : '']
    ];
    labels.forEach(function (l) {
      if (l[2] === '') { return; }
      svg('text', { x: l[0], y: H - 6, 'text-anchor': l[1], class: 'tick' }, root).textContent = String(l[2]);
    });
    svg('text', { x: W - R, y: 9, 'text-anchor': 'end', class: 'tick' }, root).textContent = money(maxV, cur);
    box.appendChild(root);
  }

  // ---- start ----
  if (!client) {
    show('outside');
    return;
  }
  function requesterThen() {
    return client.get('ticket.requester').then(function (data) {
      var r = data && data['ticket.requester'];
      if (!r || (!r.id && !r.email)) {
        show('norequester');
        return;
      }
      return load(r);
    }, function (err) {
      fail('Zendesk did not tell the ticket\'s requester: ' + (err && err.message ? err.message : err));
    });
  }
  requesterThen();
  client.on('ticket.requester.id.changed', requesterThen);
  window.addEventListener('resize', resize);
})();
