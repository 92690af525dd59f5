/*
 * clvd's ZAF client: a small stand-in for Zendesk's zaf_sdk.min.js, served by clvd itself so the
 * sidebar page loads nothing from third parties.
 *
 * It speaks the Zendesk Apps Framework v2 postMessage protocol with the Zendesk frame that hosts the
 * app's iframe, for the subset the sidebar uses:
 *   - the frame's origin and the app's guid come from the page's query (?origin=…&app_guid=…),
 *     which Zendesk adds to the app URL;
 *   - the client posts {key:"iframe.handshake", message:{version}, appGuid, instanceGuid} to
 *     window.parent (target origin = origin); the frame answers {key:"zaf.app.registered",
 *     message:{metadata, context}}, and only then are requests sent;
 *   - get/set/invoke post {id, request:"get"|"set"|"invoke", params, appGuid, instanceGuid} and
 *     the frame answers {id, result} or {id, error};
 *   - on(name) posts {key:"iframe.on:"+name, message:{subscriberCount}}; events arrive as
 *     {key:"zaf."+name, message}.
 * Messages are JSON strings; only messages from window.parent with the expected origin are read.
 */
(function (w) {
  'use strict';

  var VERSION = '2.0.0';
  var TIMEOUT_MS = 10000;

  function toError(e) {
    if (e instanceof Error) { return e; }
    var err = new Error((e && (e.path ? '"' + e.path + '" ' : '') + (e.message || e.msg)) || String(e));
    if (e && e.name) { err.name = e.name; }
    return err;
  }

  function Client(origin, appGuid) {
    this._origin = origin;
    this._appGuid = appGuid;
    this._handlers = {};
    this._pending = {};
    this._seq = 0;
    this._queue = [];
    this._context = null;
    this._metadata = null;
    this.ready = false;

    var self = this;
    w.addEventListener('message', function (e) { self._receive(e); });
    this.on('app.registered', function (data) {
      self.ready = true;
      self._context = data && data.context || null;
      self._metadata = data && data.metadata || null;
      var queued = self._queue;
      self._queue = [];
      queued.forEach(function (m) { self._post(m, true); });
    });
    this.on('context.updated', function (ctx) { self._context = ctx; });
    this._post({ key: 'iframe.handshake', message: { version: VERSION } }, true);
  }

  Client.prototype._post = function (msg, force) {
    msg.appGuid = this._appGuid;
    msg.instanceGuid = this._appGuid;
    if (!this.ready && !force) {
      this._queue.push(msg);
      return;
    }
    w.parent.postMessage(JSON.stringify(msg), this._origin);
  };

  Client.prototype._receive = function (e) {
    if (e.source !== w.parent || e.origin !== this._origin) { return; }
    var data = e.data;
    if (typeof data === 'string') {
      try { data = JSON.parse(data); } catch (err) { return; }
    }
    if (!data || typeof data !== 'object') { return; }
    if (data.id && this._pending[data.id]) {
      var p = this._pending[data.id];
      delete this._pending[data.id];
      clearTimeout(p.timer);
      if (data.error) { p.reject(toError(data.error)); } else { p.resolve(data.result); }
      return;
    }
    if (typeof data.key === 'string' && data.key.indexOf('zaf.') === 0) {
      var name = data.key.slice(4);
      if (data.needsReply) {
        this._post({ key: 'iframe.reply:' + name });
      }
      (this._handlers[name] || []).slice().forEach(function (fn) {
        try { fn(data.message); } catch (err) { setTimeout(function () { throw err; }); }
      });
    }
  };

  Client.prototype._request = function (name, params) {
    var self = this;
    var id = ++this._seq;
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        delete self._pending[id];
        reject(new Error('Zendesk did not answer ' + name + ' in time'));
      }, TIMEOUT_MS);
      self._pending[id] = { resolve: resolve, reject: reject, timer: timer };
      self._post({ id: id, request: name, params: params });
    });
  };

  function singleResult(path, result) {
    if (typeof path === 'string' && result && result.errors && result.errors[path]) {
      throw toError(result.errors[path]);
    }
    return result;
  }

  Client.prototype.get = function (path) {
    var paths = Array.isArray(path) ? path : [path];
    return this._request('get', paths).then(function (r) { return singleResult(path, r); });
  };

  Client.prototype.set = function (key, value) {
    var obj = key;
    if (typeof key === 'string') { obj = {}; obj[key] = value; }
    return this._request('set', obj).then(function (r) { return singleResult(key, r); });
  };

  Client.prototype.invoke = function (name) {
    var obj = {};
    obj[name] = Array.prototype.slice.call(arguments, 1);
    return this._request('invoke', obj).then(function (r) { return singleResult(name, r); });
  };

  Client.prototype.on = function (name, handler) {
    if (typeof handler !== 'function') { return; }
    (this._handlers[name] = this._handlers[name] || []).push(handler);
    if (name !== 'app.registered') {
      this._post({ key: 'iframe.on:' + name, message: { subscriberCount: this._handlers[name].length } });
    }
  };

  Client.prototype.context = function () {
    var self = this;
    if (this._context) { return Promise.resolve(this._context); }
    return new Promise(function (resolve) { self.on('app.registered', function (d) { resolve(d && d.context); }); });
  };

  Client.prototype.metadata = function () {
    var self = this;
    if (this._metadata) { return Promise.resolve(this._metadata); }
    return new Promise(function (resolve) { self.on('app.registered', function (d) { resolve(d && d.metadata); }); });
  };

  w.ZAFClient = {
    // init returns a client, or false when the page is not inside a Zendesk app frame.
    init: function (callback) {
      var q = new URLSearchParams(w.location.search);
      var origin = q.get('origin');
      var guid = q.get('app_guid');
      if (!origin || !guid || w.parent === w) { return false; }
      try {
        var u = new URL(origin);
        if (u.protocol !== 'https:' && u.protocol !== 'http:') { return false; }
        origin = u.origin;
      } catch (err) {
        return false;
      }
      var client = new Client(origin, guid);
      if (typeof callback === 'function') { client.on('app.registered', callback.bind(client)); }
      return client;
    }
  };
})(window);
