// clvd admin dashboard. Signs in with an admin token (POST session), then reads the admin API under
// api/v1 with the session cookie (see package admin/dashboard): the token is never stored here.
// Changes carry the session's CSRF token in X-CSRF-Token.
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var state = { session: null, tenant: '', summary: null, currency: '', csv: {}, zendesk: '' };

  var TIERS = ['platinum', 'gold', 'silver', 'bronze', 'new'];
  var TIER_COLORS = { platinum: '#475467', gold: '#d99a06', silver: '#98a2b3', bronze: '#b65c22', new: '#2e90fa', unscored: '#d0d5dd' };
  var SEGMENTS = ['champions', 'loyal', 'potential_loyalist', 'new', 'at_risk', 'cant_lose', 'hibernating', 'lost'];
  var SEGMENT_COLORS = { champions: '#067647', loyal: '#17b26a', potential_loyalist: '#47cd89', new: '#2e90fa',
    at_risk: '#f79009', cant_lose: '#d92d20', hibernating: '#98a2b3', lost: '#667085' };

  // ---- DOM helpers -------------------------------------------------------------------------

  // h makes an element: h('td', {class: 'num'}, 'text', node, ...). Text is always text (never HTML).
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === 'text') e.textContent = v;
        else if (k === 'class') e.className = v;
        else if (k === 'on') Object.keys(v).forEach(function (ev) { e.addEventListener(ev, v[ev]); });
        else if (k in e && typeof v !== 'string') e[k] = v;
        else e.setAttribute(k, v === true ? '' : v);
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) c.forEach(function (x) { if (x) e.appendChild(typeof x === 'string' ? document.createTextNode(x) : x); });
      else e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function fill(node) {
    clear(node);
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) node.appendChild(arguments[i]);
    return node;
  }

  function errorBox(msg) { return h('p', { class: 'error', role: 'alert', text: msg }); }
  function empty(msg) { return h('p', { class: 'empty', text: msg }); }

  // ---- formatting --------------------------------------------------------------------------

  var DASH = '—';
  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function pct(v, digits) { return isNum(v) ? (100 * v).toFixed(digits === undefined ? 1 : digits) + '%' : DASH; }
  function num(v, digits) {
    if (!isNum(v)) return DASH;
    return v.toLocaleString(undefined, { minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0 });
  }
  function sig(v) {
    if (!isNum(v)) return DASH;
    if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(3);
    return Number(v.toPrecision(5)).toLocaleString(undefined, { maximumFractionDigits: 6 });
  }
  function money(v, currency, digits) {
    if (!isNum(v)) return DASH;
    if (!currency) return num(v, digits === undefined ? 2 : digits);
    try {
      return v.toLocaleString(undefined, { style: 'currency', currency: currency,
        minimumFractionDigits: digits === undefined ? 2 : digits, maximumFractionDigits: digits === undefined ? 2 : digits });
    } catch (e) {
      return num(v, 2) + ' ' + currency;
    }
  }
  function compact(v) {
    if (!isNum(v)) return DASH;
    return v.toLocaleString(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  }
  function date(s) { return s ? String(s).slice(0, 10) : DASH; }
  function dateTime(s) { return s ? String(s).slice(0, 16).replace('T', ' ') : DASH; }
  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  function monthShort(ym) { return MONTHS[Number(ym.slice(5, 7)) - 1]; }
  function monthLong(ym) { return monthShort(ym) + ' ' + ym.slice(0, 4); }
  function human(s) {
    if (s === 'cant_lose') return 'Can’t lose';
    s = String(s || '').replace(/_/g, ' ').replace(/\b(id|url|clv|csat|rfm)\b/g, function (w) { return w.toUpperCase(); });
    return s.charAt(0).toUpperCase() + s.slice(1);
  }
  function badge(value) { return h('span', { class: 'badge ' + String(value).replace(/[^a-z_]/g, ''), text: value || DASH }); }

  // ---- API -----------------------------------------------------------------------------------

  function apiURL(path, params, noTenant) {
    var q = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null && params[k] !== '') q.set(k, params[k]);
    });
    if (!noTenant && state.session && state.session.role === 'operator' && state.tenant) q.set('tenant', state.tenant);
    var s = q.toString();
    return 'api/v1/' + path + (s ? '?' + s : '');
  }

  // request answers {ok, status, data, error}; it never throws.
  function request(method, url, body) {
    var opts = { method: method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD' && state.session) opts.headers['X-CSRF-Token'] = state.session.csrf_token;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    return fetch(url, opts).then(function (res) {
      var ct = res.headers.get('Content-Type') || '';
      var parse = ct.indexOf('application/json') >= 0 ? res.json().catch(function () { return null; }) : Promise.resolve(null);
      return parse.then(function (data) {
        var out = { ok: res.ok, status: res.status, data: data, error: '' };
        if (!res.ok) out.error = data && data.error ? data.error : 'HTTP ' + res.status;
        if (res.status === 401 && url.indexOf('api/') === 0 && state.session) signedOut('Your session has ended: sign in again.');
        return out;
      });
    }, function (err) {
      return { ok: false, status: 0, data: null, error: 'network error: ' + (err && err.message ? err.message : err) };
    });
  }

  function get(path, params, noTenant) { return request('GET', apiURL(path, params, noTenant)); }

  // ---- CSV -----------------------------------------------------------------------------------

  function csvCell(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') return isFinite(v) ? String(v) : '';
    var s = String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s; // a spreadsheet would run it as a formula
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function setCSV(key, name, header, rows) {
    state.csv[key] = { name: name, header: header, rows: rows };
  }

  function downloadCSV(key) {
    var t = state.csv[key];
    if (!t) return;
    var lines = [t.header.map(csvCell).join(',')].concat(t.rows.map(function (r) { return r.map(csvCell).join(','); }));
    var blob = new Blob([lines.join('\r\n') + '\r\n'], { type: 'text/csv;charset=utf-8' });
    var url = URL.createObjectURL(blob);
    var a = h('a', { href: url, download: (state.tenant || 'clvd') + '-' + t.name + '.csv' });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 2000);
  }

  // table builds a table from columns [{label, num}] and rows of cells (text, numbers or nodes).
  function table(columns, rows, opts) {
    var t = h('table', { class: opts && opts.class });
    t.appendChild(h('thead', null, h('tr', null, columns.map(function (c) {
      return h('th', { class: c.num ? 'num' : null, text: c.label, title: c.title || null });
    }))));
    var body = h('tbody');
    rows.forEach(function (r) {
      body.appendChild(h('tr', null, r.map(function (cell, i) {
        var col = columns[i] || {};
        var td = h('td', { class: (col.num ? 'num' : '') + (col.wrap ? ' wrap' : '') });
        if (cell instanceof Node) td.appendChild(cell);
        else td.textContent = cell === null || cell === undefined ? DASH : String(cell);
        return td;
      })));
    });
    t.appendChild(body);
    return opts && opts.scroll ? h('div', { class: 'scroll' }, t) : t;
  }

  function dataDetails(label, node) {
    return h('details', { class: 'data' }, h('summary', { text: label }), node);
  }

  // ---- session ---------------------------------------------------------------------------------

  function showLogin(msg) {
    document.body.removeAttribute('data-loaded');
    $('app').hidden = true;
    // Nothing of the previous session stays in the page.
    ['panel-summary', 'kpis-body', 'tiers-body', 'segments-body', 'clv-body', 'model-body', 'cohorts-body', 'at-risk-body',
      'outreach-body', 'settings-body'].forEach(function (id) { clear($(id)); });
    state.csv = {};
    state.summary = null;
    $('logout').hidden = true;
    $('refresh').hidden = true;
    $('tenant-picker-label').hidden = true;
    $('tenant-name').textContent = '';
    $('session-info').textContent = '';
    $('login').hidden = false;
    var e = $('login-error');
    e.hidden = !msg;
    e.textContent = msg || '';
    $('token').focus();
  }

  function signedOut(msg) {
    state.session = null;
    showLogin(msg);
  }

  function signIn(ev) {
    ev.preventDefault();
    var field = $('token');
    var token = field.value.trim();
    if (!token) return;
    var btn = ev.target.querySelector('button');
    btn.disabled = true;
    request('POST', 'session', { token: token }).then(function (res) {
      btn.disabled = false;
      field.value = ''; // the token is not kept anywhere
      if (!res.ok) {
        showLogin('Sign-in refused: ' + res.error);
        return;
      }
      start(res.data);
    });
  }

  function signOut() {
    request('DELETE', 'session').then(function () { signedOut('Signed out.'); });
  }

  function start(session) {
    document.body.removeAttribute('data-loaded');
    state.session = session;
    $('login').hidden = true;
    $('logout').hidden = false;
    $('refresh').hidden = false;
    var until = session.ends_at ? ' · until ' + dateTime(session.ends_at) + ' UTC' : '';
    $('session-info').textContent = session.role + (session.tenant ? ' · ' + session.tenant : '') + until;
    if (session.role === 'operator') {
      get('tenants', null, true).then(function (res) {
        var sel = $('tenant-picker');
        clear(sel);
        if (!res.ok) { showApp(); fill($('panel-summary'), errorBox('Tenants: ' + res.error)); return; }
        var tenants = res.data.tenants || [];
        tenants.forEach(function (t) { sel.appendChild(h('option', { value: t.id, text: t.name + ' (' + t.id + ')' })); });
        var saved = sessionStorage.getItem('clvd.dashboard.tenant');
        state.tenant = tenants.some(function (t) { return t.id === saved; }) ? saved : (tenants[0] ? tenants[0].id : '');
        sel.value = state.tenant;
        $('tenant-picker-label').hidden = false;
        showApp();
        if (state.tenant) loadAll(); else fill($('panel-summary'), empty('No tenants yet.'));
      });
    } else {
      state.tenant = session.tenant;
      showApp();
      loadAll();
    }
  }

  function showApp() { $('app').hidden = false; }

  // ---- panels --------------------------------------------------------------------------------

  function loadAll() {
    state.csv = {};
    var link = $('customers-csv');
    link.href = apiURL('customers', { format: 'csv' });
    ['kpis-body', 'tiers-body', 'segments-body', 'clv-body', 'model-body', 'cohorts-body', 'at-risk-body', 'outreach-body', 'settings-body']
      .forEach(function (id) { fill($(id), h('p', { class: 'note', text: 'Loading…' })); });
    return get('dashboard/summary').then(function (res) {
      if (!res.ok) {
        fill($('panel-summary'), errorBox('Summary: ' + res.error));
        return;
      }
      state.summary = res.data;
      state.currency = res.data.currencies && res.data.currencies.length ? res.data.currencies[0].currency : '';
      state.zendesk = res.data.tenant.zendesk_url || '';
      renderSummary(res.data);
      return Promise.all([loadKPIs(), loadTiers(), loadSegments(), loadCLV(), loadModel(), loadCohorts(), loadAtRisk(),
        loadOutreach(), loadSettings()]);
    }).then(function () { document.body.setAttribute('data-loaded', 'true'); });
  }

  function tile(label, value, sub) {
    return h('div', { class: 'tile' }, h('div', { class: 'label', text: label }), h('div', { class: 'value', text: value, title: value }),
      h('div', { class: 'sub', text: sub || '\u00a0', title: sub || '' }));
  }

  // spanOf says how long the history between two times is, in months or years.
  function spanOf(from, to) {
    var months = Math.max(0, Math.round((Date.parse(to) - Date.parse(from)) / (30.44 * 86400000)));
    if (months < 24) return months + (months === 1 ? ' month' : ' months');
    return (months / 12).toFixed(1) + ' years';
  }

  function renderSummary(s) {
    $('tenant-name').textContent = s.tenant.name;
    document.title = 'clvd · ' + s.tenant.name;
    var cur = s.currencies.map(function (c) { return c.currency; }).join(', ');
    fill($('panel-summary'),
      tile('Customers', num(s.customers.total), num(s.customers.scored) + ' scored'),
      tile('Rescores pending', num(s.customers.stale), 'changed since their last score'),
      tile('Purchases', num(s.purchases), 'open or paid orders'),
      tile('Purchase history', s.first_purchase ? spanOf(s.first_purchase, s.last_purchase) : DASH,
        s.first_purchase ? date(s.first_purchase) + ' → ' + date(s.last_purchase) : 'no purchases yet'),
      tile('Values counted in', cur || DASH, s.currencies.length ? num(s.currencies[0].customers) + ' customers in ' + s.currencies[0].currency : ''),
      tile('Zendesk', s.tenant.zendesk_url ? 'Connected' : 'Not connected', s.tenant.zendesk_url ? s.tenant.zendesk_url.replace(/^https?:\/\//, '') : 'no agent links'));
  }

  var KPI_DEFS = [
    { key: 'retention_rate', name: 'Retention rate', fmt: pct, help: 'of customers active at the month’s start, share still active at its end' },
    { key: 'repeat_purchase_rate', name: 'Repeat purchase rate', fmt: pct, help: 'buyers with 2+ purchases in the month' },
    { key: 'aov', name: 'Average order value', fmt: null, help: 'net of refunds' },
    { key: 'purchase_frequency', name: 'Purchase frequency', fmt: function (v) { return num(v, 2); }, help: 'purchases per buyer in the month' },
    { key: 'churn_rate', name: 'Churn rate', fmt: pct, help: 'of customers active at the start, share lapsed by its end' },
    { key: 'csat', name: 'CSAT', fmt: pct, help: 'good / (good + bad) ticket ratings' }
  ];

  function aovOf(m, currency) {
    var a = (m.average_order_value || []).filter(function (x) { return x.currency === currency; })[0];
    return a ? parseFloat(a.average_order.amount) : null;
  }

  function loadKPIs() {
    return get('dashboard/kpi-series', { months: 12 }).then(function (res) {
      var body = $('kpis-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var months = res.data.months || [];
      if (!months.length) { fill(body, empty('No months to show yet.')); return; }
      var cur = state.currency;
      if (!cur) { // no scores yet: the currency with the most orders
        var counts = {};
        months.forEach(function (m) { (m.average_order_value || []).forEach(function (a) { counts[a.currency] = (counts[a.currency] || 0) + a.orders; }); });
        cur = Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a]; })[0] || '';
      }
      var labels = months.map(function (m) { return monthShort(m.month) + (m.month.slice(5) === '01' || m === months[0] ? ' ' + m.month.slice(2, 4) : ''); });
      var titles = months.map(function (m) { return monthLong(m.month) + (m.partial ? ' (to ' + m.to + ')' : ''); });
      $('kpi-period').textContent = monthLong(months[0].month) + ' – ' + monthLong(months[months.length - 1].month) +
        (months[months.length - 1].partial ? ' (month to date)' : '') + ' · monthly';
      var grid = h('div', { class: 'kpi-grid' });
      KPI_DEFS.forEach(function (def) {
        var values = months.map(function (m) { return def.key === 'aov' ? aovOf(m, cur) : m[def.key]; });
        var fmt = def.fmt || function (v) { return money(v, cur); };
        var latest = null;
        for (var i = values.length - 1; i >= 0; i--) if (isNum(values[i])) { latest = values[i]; break; }
        var card = h('div', { class: 'kpi-card', 'data-kpi': def.key },
          h('div', { class: 'kpi-title' }, h('span', { class: 'kpi-name', text: def.name + (def.key === 'aov' && cur ? ' (' + cur + ')' : '') }),
            h('span', { class: 'kpi-latest', text: fmt(latest) })),
          h('div', { class: 'kpi-help', text: def.help }));
        Charts.line(card, { labels: labels, titles: titles, values: values, format: fmt, label: def.name, width: 420, height: 138,
          tickFormat: def.fmt === pct ? function (v, step) { return pct(v, Charts.stepDigits(step * 100)); } :
            function (v, step) { return num(v, Charts.stepDigits(step)); } });
        grid.appendChild(card);
      });
      var header = ['month', 'from', 'to', 'retention_rate', 'churn_rate', 'repeat_purchase_rate', 'purchase_frequency',
        'average_order_value', 'currency', 'csat', 'orders', 'buyers', 'new_customers', 'active_at_start'];
      var rows = months.map(function (m) {
        return [m.month, m.from, m.to, m.retention_rate, m.churn_rate, m.repeat_purchase_rate, m.purchase_frequency, aovOf(m, cur), cur,
          m.csat, m.orders, m.buyers, m.new_customers, m.active_at_start];
      });
      setCSV('kpis', 'kpis-monthly', header, rows);
      var tbl = table([{ label: 'Month' }, { label: 'Retention', num: true }, { label: 'Churn', num: true }, { label: 'Repeat rate', num: true },
        { label: 'Frequency', num: true }, { label: 'AOV' + (cur ? ' (' + cur + ')' : ''), num: true }, { label: 'CSAT', num: true },
        { label: 'Orders', num: true }, { label: 'Buyers', num: true }, { label: 'New customers', num: true }, { label: 'Active at start', num: true }],
      months.map(function (m) {
        return [monthLong(m.month) + (m.partial ? ' (to date)' : ''), pct(m.retention_rate), pct(m.churn_rate), pct(m.repeat_purchase_rate),
          num(m.purchase_frequency, 2), money(aovOf(m, cur), cur), pct(m.csat), num(m.orders), num(m.buyers), num(m.new_customers), num(m.active_at_start)];
      }));
      fill(body, grid, dataDetails('Monthly figures', tbl));
    });
  }

  function tierRank(t) { var i = TIERS.indexOf(t); return i < 0 ? TIERS.length : i; }

  function loadTiers() {
    return get('dashboard/tiers').then(function (res) {
      var body = $('tiers-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var rows = res.data.tiers || [];
      if (!rows.length) { fill(body, empty('No scored customers yet.')); return; }
      var cur = state.currency || rows[0].currency;
      var names = [];
      var customers = {}, revenue = {};
      rows.forEach(function (r) {
        if (names.indexOf(r.tier) < 0) names.push(r.tier);
        customers[r.tier] = (customers[r.tier] || 0) + r.customers;
        if (r.currency === cur) revenue[r.tier] = (revenue[r.tier] || 0) + parseFloat(r.historic.amount);
      });
      names.sort(function (a, b) { return tierRank(a) - tierRank(b); });
      var colors = names.map(function (t) { return TIER_COLORS[t] || '#2563eb'; });
      var totalCustomers = names.reduce(function (a, t) { return a + customers[t]; }, 0);
      var c1 = h('div', null, h('p', { class: 'chart-title', text: 'Customers' }));
      Charts.bars(c1, { labels: names.map(human), values: names.map(function (t) { return customers[t]; }), colors: colors,
        format: function (v) { return num(v); }, tickFormat: compact, width: 300, height: 190, label: 'Customers by tier',
        valueLabels: names.map(function (t) { return num(customers[t]) + ' · ' + pct(customers[t] / totalCustomers, 0); }) });
      var c2 = h('div', null, h('p', { class: 'chart-title', text: 'Net revenue to date (' + cur + ')' }));
      Charts.bars(c2, { labels: names.map(human), values: names.map(function (t) { return revenue[t] || 0; }), colors: colors,
        format: function (v) { return money(v, cur, 0); }, tickFormat: compact, width: 300, height: 190, label: 'Revenue by tier',
        valueLabels: names.map(function (t) { return compact(revenue[t] || 0); }) });
      var header = ['tier', 'currency', 'customers', 'high_churn', 'net_revenue', 'predicted_clv_sum', 'avg_predicted_clv'];
      setCSV('tiers', 'tiers', header, rows.map(function (r) {
        return [r.tier, r.currency, r.customers, r.high_churn, r.historic.amount, r.predicted_clv, r.avg_predicted_clv];
      }));
      var several = rows.some(function (r) { return r.currency !== rows[0].currency; });
      var cols = [{ label: 'Tier' }, { label: 'Customers', num: true }, { label: 'High churn', num: true, title: 'in churn band high' },
        { label: 'Net revenue', num: true }, { label: 'Predicted CLV', num: true, title: 'sum over the tier' }, { label: 'Avg CLV', num: true, title: 'average predicted CLV' }];
      if (several) cols.splice(1, 0, { label: 'Currency' });
      var tbl = table(cols, rows.map(function (r) {
        var row = [badge(r.tier), num(r.customers), num(r.high_churn), money(parseFloat(r.historic.amount), r.currency, 0),
          money(r.predicted_clv, r.currency, 0), money(r.avg_predicted_clv, r.currency)];
        if (several) row.splice(1, 0, r.currency);
        return row;
      }));
      fill(body, h('div', { class: 'chart-row' }, c1, c2), tbl);
    });
  }

  function loadSegments() {
    return get('dashboard/segments').then(function (res) {
      var body = $('segments-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var rows = res.data.segments || [];
      if (!rows.length) { fill(body, empty('No scored customers yet.')); return; }
      var chart = h('div');
      Charts.bars(chart, { horizontal: true, labels: rows.map(function (r) { return human(r.segment); }),
        values: rows.map(function (r) { return r.customers; }), colors: rows.map(function (r) { return SEGMENT_COLORS[r.segment]; }),
        format: function (v) { return num(v); }, width: 620, label: 'RFM segment sizes',
        valueLabels: rows.map(function (r) { return num(r.customers) + ' (' + pct(r.share) + ')'; }) });
      setCSV('segments', 'segments', ['segment', 'customers', 'share', 'avg_churn_probability', 'avg_p_alive'],
        rows.map(function (r) { return [r.segment, r.customers, r.share, r.avg_churn_probability, r.avg_p_alive]; }));
      var tbl = table([{ label: 'Segment' }, { label: 'Customers', num: true }, { label: 'Share', num: true },
        { label: 'Avg churn probability', num: true }, { label: 'Avg P(alive)', num: true }],
      rows.map(function (r) { return [human(r.segment), num(r.customers), pct(r.share), pct(r.avg_churn_probability), pct(r.avg_p_alive)]; }));
      fill(body, chart, tbl);
    });
  }

  function loadCLV(currency) {
    var params = { bins: 24 };
    if (currency) params.currency = currency;
    return get('dashboard/clv-histogram', params).then(function (res) {
      var body = $('clv-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var d = res.data, cur = d.currency;
      var sel = $('clv-currency');
      clear(sel);
      (d.currencies || []).forEach(function (c) { sel.appendChild(h('option', { value: c.currency, text: c.currency + ' (' + num(c.customers) + ')' })); });
      sel.value = cur;
      sel.hidden = (d.currencies || []).length < 2;
      if (!d.customers) { fill(body, empty('No scored customers' + (cur ? ' valued in ' + cur : '') + ' yet.')); return; }
      var chart = h('div');
      var wide = d.bin_width >= 10 || d.bins.length && d.bins[d.bins.length - 1].lo >= 100;
      var fx = function (v) { return wide ? compact(v) : num(v, d.bin_width < 1 ? 2 : 0); };
      Charts.histogram(chart, { bins: d.bins, formatX: fx, width: 620, height: 230, label: 'Predicted CLV histogram',
        xLabel: 'predicted CLV (' + cur + ')' });
      var stats = h('dl', { class: 'kv' },
        h('dt', { text: 'Customers' }), h('dd', { text: num(d.customers) }),
        h('dt', { text: 'Mean' }), h('dd', { text: money(d.mean, cur) }),
        h('dt', { text: 'Median' }), h('dd', { text: money(d.median, cur) }),
        h('dt', { text: '99th percentile' }), h('dd', { text: money(d.p99, cur) }),
        h('dt', { text: 'Largest' }), h('dd', { text: money(d.max, cur) }));
      setCSV('clv', 'predicted-clv-histogram-' + cur, ['currency', 'from', 'to', 'open_ended', 'customers'],
        d.bins.map(function (b) { return [cur, b.lo, b.open ? '' : b.hi, b.open ? 'yes' : 'no', b.count]; }));
      var tbl = table([{ label: 'Predicted CLV (' + cur + ')' }, { label: 'Customers', num: true }, { label: 'Share', num: true }],
        d.bins.map(function (b) {
          return [b.open ? '≥ ' + money(b.lo, cur, 0) : money(b.lo, cur, 0) + ' – ' + money(b.hi, cur, 0), num(b.count), pct(b.count / d.customers)];
        }), { scroll: true });
      fill(body, chart, h('div', { class: 'model-cols' }, stats, dataDetails('Bins', tbl)));
    });
  }

  // cohortMonths covers the history from the first purchase month to the anchor month, at least 12
  // and at most 24 months: a shop whose customers all arrived more than a year before its latest
  // purchase still sees its cohorts.
  function cohortMonths() {
    var s = state.summary;
    if (!s || !s.first_purchase || !s.anchor_month) return 12;
    var first = new Date(s.first_purchase), parts = s.anchor_month.split('-');
    var span = (Number(parts[0]) - first.getUTCFullYear()) * 12 + (Number(parts[1]) - 1 - first.getUTCMonth()) + 1;
    return Math.min(24, Math.max(12, span));
  }

  function loadCohorts() {
    return get('dashboard/cohorts', { months: cohortMonths() }).then(function (res) {
      var body = $('cohorts-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var d = res.data, co = d.cohorts || [];
      if (!co.some(function (c) { return c.customers > 0; })) { fill(body, empty('No customers made a first purchase in these months.')); return; }
      // The colour scale spans 0 to the highest share after the first month (the first is 100%).
      var top = 0;
      co.forEach(function (c) { (c.retention || []).forEach(function (r, k) { if (k > 0 && isNum(r) && r > top) top = r; }); });
      top = top || 1;
      var n = d.months;
      var head = [h('th', { text: 'First purchase' }), h('th', { class: 'num', text: 'Customers' })];
      for (var k = 0; k < n; k++) head.push(h('th', { class: 'num', text: 'M' + k, title: k + ' months after the first purchase' }));
      var tb = h('tbody');
      co.forEach(function (c) {
        var tr = h('tr', null, h('td', { text: monthLong(c.month) }), h('td', { class: 'num', text: num(c.customers) }));
        for (var k = 0; k < n; k++) {
          var r = c.retention ? c.retention[k] : undefined;
          var td = h('td', { class: 'cell' });
          if (k >= (c.active || []).length) {
            td.className = 'cell none';
          } else if (!isNum(r)) {
            td.className = 'cell none';
            td.textContent = DASH;
          } else {
            var color = Charts.heat(k === 0 ? 1 : r / top);
            td.style.backgroundColor = color.color;
            if (color.dark) td.className = 'cell dark';
            td.textContent = pct(r, k === 0 ? 0 : 1);
            td.title = monthLong(c.month) + ' cohort, month ' + k + ': ' + num(c.active[k]) + ' of ' + num(c.customers) + ' customers bought';
          }
          tr.appendChild(td);
        }
        tb.appendChild(tr);
      });
      var tbl = h('table', { class: 'cohort' }, h('thead', null, h('tr', null, head)), tb);
      var legend = h('div', { class: 'legend' }, h('span', { text: '0%' }));
      [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
        var sw = h('span', { class: 'swatch' });
        sw.style.backgroundColor = Charts.heat(t).color;
        legend.appendChild(sw);
      });
      legend.appendChild(h('span', { text: pct(top) + ' (months after the first; the first month is 100% by definition)' }));
      var header = ['cohort', 'customers'];
      for (var j = 0; j < n; j++) header.push('m' + j + '_share');
      for (var j2 = 0; j2 < n; j2++) header.push('m' + j2 + '_customers');
      setCSV('cohorts', 'cohort-retention', header, co.map(function (c) {
        var row = [c.month, c.customers];
        for (var i = 0; i < n; i++) row.push(c.retention && i < c.retention.length ? c.retention[i] : null);
        for (var i2 = 0; i2 < n; i2++) row.push(c.active && i2 < c.active.length ? c.active[i2] : null);
        return row;
      }));
      fill(body, tbl, legend);
    });
  }

  function zendeskLink(url, label) {
    if (!url || !/^https?:\/\//.test(url)) return null;
    return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: label });
  }

  function loadAtRisk() {
    return get('dashboard/at-risk', { limit: 50 }).then(function (res) {
      var body = $('at-risk-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var rows = res.data.customers || [];
      setCSV('atRisk', 'at-risk', ['id', 'name', 'email', 'tier', 'segment', 'churn_band', 'churn_probability', 'p_alive', 'predicted_clv',
        'historic', 'currency', 'orders', 'last_order', 'churn_reasons', 'zendesk_user_id', 'zendesk_url'], rows.map(function (c) {
        var s = c.score || {};
        return [c.id, c.name, c.email, s.tier, s.segment, s.churn_band, s.churn_probability, s.p_alive, s.predicted_clv, s.historic, s.currency,
          s.orders, s.last_order, (s.churn_reasons || []).join('; '), c.zendesk_user_id, c.zendesk_url];
      }));
      if (!rows.length) { fill(body, empty('No platinum or gold customers are at high risk of churning.')); return; }
      var tbl = table([{ label: 'Customer' }, { label: 'Tier' }, { label: 'Segment' }, { label: 'Predicted CLV', num: true },
        { label: 'Spent', num: true, title: 'net spend to date' }, { label: 'Churn', num: true, title: 'churn probability' },
        { label: 'P(alive)', num: true }, { label: 'Orders', num: true }, { label: 'Last order' }, { label: 'Why', wrap: true }, { label: 'Zendesk' }],
      rows.map(function (c) {
        var s = c.score || {};
        var who = h('div', { class: 'who' }, h('strong', { text: c.name || c.email || ('#' + c.id) }),
          c.name && c.email ? h('div', { class: 'note', text: c.email }) : null);
        var zd = zendeskLink(c.zendesk_url, 'Open ↗') || h('span', { class: 'note', text: DASH, title: c.zendesk_user_id ? 'Zendesk is not connected' : 'no Zendesk user' });
        return [who, badge(s.tier), human(s.segment), money(s.predicted_clv, s.currency), money(parseFloat(s.historic), s.currency, 0),
          pct(s.churn_probability, 0), pct(s.p_alive, 0), num(s.orders), date(s.last_order), (s.churn_reasons || []).join('; ') || DASH, zd];
      }), { scroll: true, class: 'compact' });
      var note = res.data.more ? h('p', { class: 'note', text: 'The ' + rows.length + ' with the highest predicted CLV; export all customers for the rest.' }) : null;
      fill(body, tbl, note);
    });
  }

  function loadOutreach() {
    return get('outreach', { limit: 50 }).then(function (res) {
      var body = $('outreach-body');
      var none = empty('No outreach yet.');
      setCSV('outreach', 'outreach', ['id', 'created_at', 'customer_id', 'name', 'email', 'tier', 'churn_band', 'predicted_clv', 'currency', 'rules',
        'reasons', 'status', 'dry_run', 'zendesk_ticket_id', 'webhook_status', 'completed_at', 'error'], []);
      if (res.status === 404) { fill(body, none); return; }
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var rows = res.data.outreach || [];
      state.csv.outreach.rows = rows.map(function (o) {
        return [o.id, o.created_at, o.customer_id, o.name, o.email, o.tier, o.churn_band, o.predicted_clv, o.currency, (o.rules || []).join('; '),
          (o.reasons || []).join('; '), o.status, o.dry_run ? 'yes' : 'no', o.zendesk_ticket_id, o.webhook_status, o.completed_at, o.error];
      });
      if (!rows.length) { fill(body, none); return; }
      var tbl = table([{ label: 'When' }, { label: 'Customer' }, { label: 'Tier' }, { label: 'Churn' }, { label: 'Predicted CLV', num: true },
        { label: 'Rules' }, { label: 'Reasons', wrap: true }, { label: 'Status' }, { label: 'Zendesk ticket' }, { label: 'Webhook', num: true }, { label: 'Error', wrap: true }],
      rows.map(function (o) {
        var ticket = o.zendesk_ticket_id ? (zendeskLink(state.zendesk && /^\d+$/.test(o.zendesk_ticket_id) ? state.zendesk + '/agent/tickets/' + o.zendesk_ticket_id : '',
          '#' + o.zendesk_ticket_id) || '#' + o.zendesk_ticket_id) : DASH;
        var status = h('span', null, badge(o.status), o.dry_run && o.status !== 'dry_run' ? h('span', { class: 'note', text: ' dry run' }) : null);
        return [dateTime(o.created_at), o.name || o.email || ('#' + o.customer_id), badge(o.tier), badge(o.churn_band), money(o.predicted_clv, o.currency),
          (o.rules || []).join(', '), (o.reasons || []).join('; ') || DASH, status, ticket, o.webhook_status ? String(o.webhook_status) : DASH, o.error || ''];
      }), { scroll: true, class: 'compact' });
      fill(body, tbl, res.data.next_cursor ? h('p', { class: 'note', text: 'The latest ' + rows.length + '.' }) : null);
    });
  }

  // flatten turns nested JSON into [path, value] pairs.
  function flatten(v, prefix, out) {
    out = out || [];
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      Object.keys(v).forEach(function (k) { flatten(v[k], prefix ? prefix + '.' + k : k, out); });
    } else if (Array.isArray(v) && v.some(function (x) { return x && typeof x === 'object'; })) {
      out.push([prefix, JSON.stringify(v)]);
    } else {
      out.push([prefix, Array.isArray(v) ? v.join(', ') : v]);
    }
    return out;
  }

  function kv(pairs) {
    var dl = h('dl', { class: 'kv' });
    pairs.forEach(function (p) {
      dl.appendChild(h('dt', { text: p[0] }));
      dl.appendChild(h('dd', { text: isNum(p[1]) ? sig(p[1]) : (p[1] === null || p[1] === undefined || p[1] === '' ? DASH : String(p[1])) }));
    });
    return dl;
  }

  function loadModel() {
    return get('model', { limit: 10 }).then(function (res) {
      var body = $('model-body');
      if (!res.ok) { fill(body, errorBox(res.error)); return; }
      var models = res.data.models || [];
      setCSV('model', 'model-fits', ['id', 'kind', 'fitted_at', 'customers', 'repeat_customers', 'log_likelihood', 'converged', 'seconds', 'params', 'quality'],
        models.map(function (m) {
          return [m.id, m.kind, m.fitted_at, m.customers, m.repeat_customers, m.log_likelihood, m.converged ? 'yes' : 'no', m.seconds,
            JSON.stringify(m.params), JSON.stringify(m.quality)];
        }));
      if (!models.length) { fill(body, empty('No model fitted yet: scores are heuristic until there is enough purchase history.')); return; }
      var m = models[0];
      var params = flatten(m.params).filter(function (p) { return p[0] !== 'fitted_at'; });
      var quality = flatten(m.quality);
      var left = h('div', null, h('h3', { text: 'Latest fit' }), kv([
        ['Kind', m.kind], ['Fitted', dateTime(m.fitted_at) + ' UTC'], ['Customers', num(m.customers)], ['Repeat customers', num(m.repeat_customers)],
        ['Log-likelihood', m.log_likelihood], ['Converged', m.converged ? 'yes' : 'no'], ['Fit time', isNum(m.seconds) ? m.seconds.toFixed(2) + ' s' : DASH]
      ]), h('h3', { text: 'Parameters' }), params.length ? kv(params) : empty('none (heuristic scoring)'));
      var right = h('div', null, h('h3', { text: 'Fit quality' }), quality.length ? h('div', { class: 'scroll' }, kv(quality)) : empty('not recorded'));
      var hist = table([{ label: 'Fitted' }, { label: 'Kind' }, { label: 'Customers', num: true }, { label: 'Repeat', num: true },
        { label: 'Log-likelihood', num: true }, { label: 'Converged' }, { label: 'Seconds', num: true }], models.map(function (x) {
        return [dateTime(x.fitted_at), x.kind, num(x.customers), num(x.repeat_customers), sig(x.log_likelihood), x.converged ? 'yes' : 'no',
          isNum(x.seconds) ? x.seconds.toFixed(2) : DASH];
      }));
      fill(body, h('div', { class: 'model-cols' }, left, right), dataDetails('Fit history (' + models.length + ')', hist));
    });
  }

  // ---- settings ------------------------------------------------------------------------------

  function settingsField(path, value) {
    var id = 'set-' + path.replace(/\./g, '-');
    var label = h('label', { for: id, text: human(path.split('.').pop()) });
    var input;
    if (typeof value === 'boolean') {
      input = h('input', { type: 'checkbox', id: id, 'data-path': path, 'data-kind': 'bool' });
      input.checked = value;
      return h('div', { class: 'field check' }, input, label);
    }
    if (typeof value === 'number') {
      input = h('input', { type: 'number', step: 'any', id: id, 'data-path': path, 'data-kind': 'number' });
      input.value = String(value);
    } else if (Array.isArray(value) && value.every(function (x) { return typeof x === 'string'; })) {
      input = h('input', { type: 'text', id: id, 'data-path': path, 'data-kind': 'list', placeholder: 'comma-separated' });
      input.value = value.join(', ');
    } else if (value !== null && typeof value === 'object') {
      input = h('textarea', { id: id, 'data-path': path, 'data-kind': 'json', rows: 2, spellcheck: 'false' });
      input.value = JSON.stringify(value);
      label.textContent += ' (JSON)';
      return h('div', { class: 'field json' }, label, input);
    } else {
      input = h('input', { type: 'text', id: id, 'data-path': path, 'data-kind': 'string' });
      input.value = value === null || value === undefined ? '' : String(value);
    }
    return h('div', { class: 'field' }, label, input);
  }

  // settingsGroup renders an object's primitive fields, then a fieldset for each nested object.
  function settingsGroup(obj, prefix, legend) {
    var fs = h('fieldset', null, h('legend', { text: legend }));
    var fields = h('div', { class: 'fields' });
    var nested = [];
    Object.keys(obj).forEach(function (k) {
      var v = obj[k], path = prefix ? prefix + '.' + k : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) nested.push([path, v]);
      else fields.appendChild(settingsField(path, v));
    });
    if (fields.childNodes.length) fs.appendChild(fields);
    nested.forEach(function (n) { fs.appendChild(settingsGroup(n[1], n[0], human(n[0].split('.').pop()))); });
    return fs;
  }

  function setPath(obj, path, value) {
    var parts = path.split('.');
    var o = obj;
    for (var i = 0; i < parts.length - 1; i++) {
      if (!o[parts[i]] || typeof o[parts[i]] !== 'object') o[parts[i]] = {};
      o = o[parts[i]];
    }
    o[parts[parts.length - 1]] = value;
  }

  function getPath(obj, path) {
    return path.split('.').reduce(function (o, k) { return o && typeof o === 'object' ? o[k] : undefined; }, obj);
  }

  // readSettingsForm returns the stored document with the fields the form changed (compared with
  // the effective settings) set: fields left alone stay out of it, so they keep following the
  // defaults.
  function readSettingsForm(form, stored, effective) {
    var doc = JSON.parse(JSON.stringify(stored && typeof stored === 'object' && !Array.isArray(stored) ? stored : {}));
    var inputs = form.querySelectorAll('[data-path]');
    for (var i = 0; i < inputs.length; i++) {
      var inp = inputs[i], path = inp.getAttribute('data-path'), kind = inp.getAttribute('data-kind'), v;
      switch (kind) {
        case 'bool': v = inp.checked; break;
        case 'number':
          if (inp.value.trim() === '') throw new Error(path + ': enter a number');
          v = Number(inp.value);
          if (!isFinite(v)) throw new Error(path + ': "' + inp.value + '" is not a number');
          break;
        case 'list': v = inp.value.split(',').map(function (s) { return s.trim(); }).filter(function (s) { return s !== ''; }); break;
        case 'json':
          try { v = JSON.parse(inp.value); } catch (e) { throw new Error(path + ': not valid JSON (' + e.message + ')'); }
          break;
        default: v = inp.value;
      }
      if (JSON.stringify(v) !== JSON.stringify(getPath(effective, path))) setPath(doc, path, v);
    }
    return doc;
  }

  function renderSettings(d, message) {
    var body = $('settings-body');
    var status = h('div', { class: 'status', id: 'settings-status', 'aria-live': 'polite' });
    if (message) status.appendChild(message);
    var form = null;
    var nodes = [];
    if (d.problem) nodes.push(errorBox('The stored settings are not valid: ' + d.problem + '. Fix them in the JSON document below.'));
    if (d.effective) {
      form = h('form', { class: 'settings', id: 'settings-form', novalidate: true });
      var top = {}, groups = [];
      Object.keys(d.effective).forEach(function (k) {
        var v = d.effective[k];
        if (v && typeof v === 'object' && !Array.isArray(v)) groups.push(k); else top[k] = v;
      });
      form.appendChild(settingsGroup(top, '', 'General'));
      groups.forEach(function (g) { form.appendChild(settingsGroup(d.effective[g], g, human(g))); });
      var save = h('button', { type: 'submit', id: 'settings-save', text: 'Save settings' });
      form.appendChild(h('div', { class: 'actions' }, save, status));
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var doc;
        try { doc = readSettingsForm(form, d.settings, d.effective); } catch (e) { fill(status, errorBox(e.message)); return; }
        putSettings(doc, save, status);
      });
      nodes.push(form);
    }
    var raw = h('textarea', { id: 'settings-json', rows: 10, spellcheck: 'false' });
    raw.value = JSON.stringify(d.settings || {}, null, 2);
    var rawStatus = h('div', { class: 'status', 'aria-live': 'polite' });
    var rawSave = h('button', { type: 'button', class: 'ghost', text: 'Save JSON' });
    rawSave.addEventListener('click', function () { putSettings(raw.value, rawSave, rawStatus); });
    var advanced = h('details', { class: 'data settings' }, h('summary', { text: 'Stored document (JSON): what is left out follows the defaults' }),
      raw, h('div', { class: 'actions' }, rawSave, rawStatus));
    if (d.problem || !d.effective) advanced.open = true;
    nodes.push(advanced);
    if (!d.effective) nodes.push(status);
    fill.apply(null, [body].concat(nodes));
  }

  function putSettings(doc, button, status) {
    button.disabled = true;
    fill(status, h('span', { class: 'note', text: 'Saving…' }));
    request('PUT', apiURL('settings'), doc).then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        fill(status, errorBox('Not saved: ' + res.error));
        return;
      }
      renderSettings(res.data, h('p', { class: 'ok', text: 'Saved. ' + (res.data.refit_requested ?
        'A refit was requested: the model and every score are updated with these settings shortly.' : '') }));
    });
  }

  function loadSettings() {
    return get('settings').then(function (res) {
      if (!res.ok) { fill($('settings-body'), errorBox(res.error)); return; }
      renderSettings(res.data);
    });
  }

  // ---- wiring --------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', function () {
    $('login-form').addEventListener('submit', signIn);
    $('logout').addEventListener('click', signOut);
    $('refresh').addEventListener('click', function () { document.body.removeAttribute('data-loaded'); loadAll(); });
    $('tenant-picker').addEventListener('change', function (ev) {
      state.tenant = ev.target.value;
      sessionStorage.setItem('clvd.dashboard.tenant', state.tenant); // a tenant id, not a secret
      document.body.removeAttribute('data-loaded');
      loadAll();
    });
    $('clv-currency').addEventListener('change', function (ev) { loadCLV(ev.target.value); });
    document.addEventListener('click', function (ev) {
      var b = ev.target.closest ? ev.target.closest('[data-csv]') : null;
      if (b) downloadCSV(b.getAttribute('data-csv'));
    });
    request('GET', 'session').then(function (res) {
      if (res.ok) start(res.data); else showLogin('');
    });
  });
})();
