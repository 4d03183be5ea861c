/* flowlite editor: wires the canvas to the page. The draft document lives here; it is saved with
   the JSON API, run with POST /editor/run, and followed live with server-sent events. The node
   panel, expression previews and the data panel are HTML fragments fetched with htmx. */
(function () {
  'use strict';
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var json = function (id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; };

  function api(method, url, body) {
    var init = { method: method, headers: { Accept: 'application/json' } };
    if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(url, init).then(function (r) {
      if (r.status === 204) return null;
      return r.json().then(function (data) {
        if (!r.ok) { var e = new Error(data.detail || r.statusText); e.problem = data; throw e; }
        return data;
      });
    });
  }
  var flashTimer;
  function flash(message, kind, list) {
    var box = $('#flash'), div = document.createElement('div');
    div.className = 'alert' + (kind ? ' alert-' + kind : '');
    div.textContent = message;
    if (list && list.length) {
      var ul = document.createElement('ul');
      list.forEach(function (t) { var li = document.createElement('li'); li.textContent = t; ul.appendChild(li); });
      div.appendChild(ul);
    }
    box.replaceChildren(div);
    clearTimeout(flashTimer);
    flashTimer = setTimeout(function () { box.replaceChildren(); }, kind === 'error' ? 9000 : 3500);
  }
  function debounce(fn, ms) {
    var t; return function () { var a = arguments; clearTimeout(t); t = setTimeout(function () { fn.apply(null, a); }, ms); };
  }
  function typing(el) { return el && (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) || el.isContentEditable); }

  /* An execution record's per-node statuses, as the canvas shows them. */
  function statusesOf(record) {
    var out = {};
    Object.keys(record.nodes || {}).forEach(function (name) {
      var runs = record.nodes[name].runs || [], last = runs[runs.length - 1] || {}, items = {};
      runs.forEach(function (r) {
        Object.keys(r.outputs || {}).forEach(function (o) {
          var cut = r.truncated && r.truncated[o];
          items[o] = (items[o] || 0) + (cut ? cut.total : r.outputs[o].length);
        });
      });
      out[name] = { status: last.status, items: items, error: last.error && last.error.message };
    });
    return out;
  }
  function sourcesOf(doc, canvas, name) {
    return (doc.connections || []).filter(function (e) { return e.to === name; }).map(function (e) {
      var a = canvas.node(e.from);
      return [e.from, a ? canvas.outputsOf(a)[canvas.outputIndex(a, e)] : 'main'];
    });
  }
  function showData(canvas, doc, execution, name) {
    if (!execution || !name) return;
    var q = new URLSearchParams({ execution: execution, node: name, sources: JSON.stringify(sourcesOf(doc, canvas, name)) });
    htmx.ajax('GET', '/editor/data?' + q, { target: '#data', swap: 'innerHTML' });
  }
  /* Follow an execution's events; `done(record)` gets the stored record at the end. */
  function follow(canvas, id, done) {
    var source = new EventSource('/api/v1/executions/' + encodeURIComponent(id) + '/events'), ended = false;
    source.addEventListener('node_started', function (ev) {
      var e = JSON.parse(ev.data); canvas.setStatus(e.node, { status: 'running' });
    });
    source.addEventListener('node_finished', function (ev) {
      var e = JSON.parse(ev.data);
      canvas.setStatus(e.node, { status: e.status, items: e.items, error: e.error && e.error.message });
    });
    function finish() {
      if (ended) return;
      ended = true; source.close();
      api('GET', '/api/v1/executions/' + encodeURIComponent(id) + '?items=20').then(function (record) {
        canvas.setStatuses(statusesOf(record)); done(record);
      }, function (err) { flash(err.message, 'error'); });
    }
    source.addEventListener('execution_finished', finish);
    source.onerror = function () { if (source.readyState === EventSource.CLOSED || !ended) finish(); };
    // an execution that ended before the stream was subscribed sends nothing more: look
    (function check() {
      setTimeout(function () {
        if (ended) return;
        api('GET', '/api/v1/executions/' + encodeURIComponent(id) + '?items=0').then(function (r) {
          if (['running', 'queued', 'waiting'].indexOf(r.status) < 0) finish(); else check();
        }, check);
      }, 1000);
    })();
  }

  /* --- the node panel's form, read back into the node ---------------------------------- */
  function loose(text) {
    if (text.trim() === '') return undefined;
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  function rowsOf(f) { return Array.prototype.slice.call(f.querySelectorAll(':scope > .rows > .row')); }
  function readFields(box) {
    var out = {};
    box.querySelectorAll(':scope > .fld').forEach(function (f) {
      var v = readField(f);
      if (v !== undefined) out[f.dataset.p] = v;
    });
    return out;
  }
  function readField(f) {
    var k = f.dataset.k, input = f.querySelector(':scope > input, :scope > select, :scope > textarea, :scope > label > input'), v;
    if (k === 'boolean') v = input.checked;
    else if (k === 'number' || k === 'integer') {
      v = input.value.trim();
      if (v === '') return undefined;
      if (isFinite(+v)) v = +v;
    } else if (k === 'json') v = loose(input.value);
    else if (k === 'raw') {
      if (!input.value.trim()) return undefined;
      try { v = JSON.parse(input.value); f.classList.remove('bad'); } catch (e) { f.classList.add('bad'); throw new Error(f.dataset.p + ' is not valid JSON'); }
    } else if (k === 'map') {
      v = {};
      rowsOf(f).forEach(function (r) {
        var key = r.querySelector('[data-mk]').value.trim(), val = loose(r.querySelector('[data-mv]').value);
        if (key) v[key] = val === undefined ? '' : val;
      });
      if (!Object.keys(v).length) return undefined;
    } else if (k === 'list') {
      v = rowsOf(f).map(function (r) {
        var t = r.querySelector('[data-le]').value;
        return f.dataset.e === 'string' ? t : f.dataset.e === 'json' ? loose(t) : (t.trim() === '' ? undefined : isFinite(+t) ? +t : t);
      }).filter(function (x) { return x !== undefined && x !== ''; });
      if (!v.length) return undefined;
    } else if (k === 'rows') {
      v = rowsOf(f).map(readFields);
      if (!v.length) return undefined;
    } else if (k === 'object') {
      v = readFields(f.querySelector(':scope > .obj'));
      if (!Object.keys(v).length) return undefined;
    } else {
      v = input.value;
      if (v === '') return undefined;
    }
    if (f.dataset.d !== undefined && JSON.stringify(v) === JSON.stringify(JSON.parse(f.dataset.d))) return undefined;
    return v;
  }
  var SETTINGS = ['on_error', 'retry', 'timeout', 'execute_once', 'always_output'];

  /* --- the editor page ------------------------------------------------------------------- */
  function Editor(root) {
    var self = this;
    this.root = root; this.doc = json('doc-data'); this.id = root.dataset.workflowId || null;
    this.version = root.dataset.version ? +root.dataset.version : null;
    this.doc.connections = this.doc.connections || [];
    var types = {};
    json('catalog-data').forEach(function (t) { types[t.type] = t; });
    this.shortcuts = $('#panel').innerHTML;
    this.types = types; this.dirty = false; this.execution = null; this.record = null;
    this.canvas = new window.FlowCanvas($('#canvas'), this.doc, types, {
      onSelect: function (name) { self.select(name); },
      onOpen: function () { var f = $('#panel input, #panel select, #panel textarea'); if (f) f.focus(); },
      hints: json('hints-data'),
      onChange: function () { self.changed(); },
      flush: function () { self.flushForm(); }
    });
    this.bind();
    window.flowReadyAt = performance.now(); // read by benchmarks/editor.py
    document.body.dataset.ready = 'true';
  }
  var E = Editor.prototype;
  E.changed = function () {
    this.dirty = true;
    var s = $('#save-state'); s.textContent = 'Unsaved changes'; s.classList.add('dirty');
    if (this.canvas.selected && !$('#node-form')) this.select(this.canvas.selected);
    else this.renderLinks();
  };
  /* The selected node's connections in the panel: remove one, or connect an output to a node
     (the keyboard's way to connect). */
  E.renderLinks = function () {
    var box = $('#node-links'), c = this.canvas, name = c.selected, n = name && c.node(name);
    if (!box || !n) return;
    var esc = window.FlowCanvas.esc, outs = c.outputsOf(n), items = '';
    this.doc.connections.forEach(function (e, i) {
      if (e.from !== name && e.to !== name) return;
      var label = e.from === name ? '→ ' + e.to + (outs.length > 1 ? ' (' + outs[c.outputIndex(n, e)] + ')' : '') : '← ' + e.from;
      items += '<li>' + esc(label) + ' <button type="button" class="btn btn-sm btn-icon" data-unlink="' + i + '" aria-label="Remove the connection ' + esc(label) + '">×</button></li>';
    });
    var targets = this.doc.nodes.filter(function (o) { return o.name !== name && c.inputsOf(o) > 0; }), add = '';
    if (outs.length && targets.length) {
      var opts = function (list) { return list.map(function (v, i) { return '<option value="' + i + '">' + esc(v) + '</option>'; }).join(''); };
      add = '<div class="link-add">' + (outs.length > 1 ? '<label class="sr" for="link-out">Output</label><select id="link-out">' + opts(outs) + '</select>' : '') +
        '<label class="sr" for="link-to">Connect to</label><select id="link-to">' + opts(targets.map(function (o) { return o.name; })) + '</select>' +
        '<button type="button" class="btn btn-sm" data-link>Connect</button></div>';
    }
    box.innerHTML = (items ? '<ul>' + items + '</ul>' : '<p class="muted small">Not connected.</p>') + add;
  };
  E.flushForm = function () { if (this.formDirty) this.applyForm(); };
  E.select = function (name) {
    this.flushForm();
    var panel = $('#panel'), self = this, node = name && this.canvas.node(name);
    if (!node) { panel.innerHTML = this.shortcuts; return; }
    htmx.ajax('POST', '/editor/panel', { target: '#panel', swap: 'innerHTML', values: { node: JSON.stringify(node) } }).then(function () {
      var form = $('#node-form');
      if (form && form.dataset.node !== self.canvas.selected) return;
      if (form) { self.previewAll(form); self.renderLinks(); }
    });
    if (this.execution) showData(this.canvas, this.doc, this.execution, name);
  };
  E.applyForm = function () {
    this.formDirty = false;
    var form = $('#node-form'), node = form && this.canvas.node(form.dataset.node);
    if (!node) return;
    try {
      var params = readFields($('[data-root=parameters]', form)), settings = readFields($('[data-root=node]', form));
    } catch (err) { return; }
    node.parameters = params;
    SETTINGS.forEach(function (k) { if (settings[k] === undefined) delete node[k]; else node[k] = settings[k]; });
    var notes = $('[data-root=notes]', form).value;
    if (notes.trim()) node.notes = notes; else delete node.notes;
    this.canvas.refreshNode(node.name);
    this.canvas.commit();
  };
  /* Sample items for expression previews: the selected node's input in the last run, else
     its parents' pinned data. */
  E.sampleItems = function (name) {
    var self = this, items = [];
    sourcesOf(this.doc, this.canvas, name).forEach(function (s) {
      var runs = self.record && self.record.nodes[s[0]] ? self.record.nodes[s[0]].runs : [];
      if (runs.length) runs.forEach(function (r) { items = items.concat((r.outputs || {})[s[1]] || []); });
      else if (self.doc.pinned && self.doc.pinned[s[0]]) items = items.concat(self.doc.pinned[s[0]]);
    });
    return items.slice(0, 20);
  };
  E.preview = function (input) {
    var pv = input.parentNode.querySelector(':scope > .pv');
    if (!pv) return;
    if (input.value.indexOf('{{') < 0) { pv.replaceChildren(); return; }
    var form = $('#node-form');
    htmx.ajax('POST', '/editor/preview', { target: pv, swap: 'innerHTML', values: { value: input.value, items: JSON.stringify(this.sampleItems(form.dataset.node)), index: 0 } });
  };
  E.previewAll = function (form) {
    var self = this;
    form.querySelectorAll('.expr').forEach(function (i) { if (i.value.indexOf('{{') >= 0) self.preview(i); });
  };

  E.save = function () {
    var self = this;
    this.flushForm(); // a change typed a moment ago is not applied yet (the form is debounced)
    this.doc.name = $('#wf-name').value.trim() || 'My workflow';
    var url = this.id ? '/api/v1/workflows/' + this.id : '/api/v1/workflows';
    return api(this.id ? 'PUT' : 'POST', url, this.doc).then(function (saved) {
      self.id = saved.id; self.version = saved.version; self.dirty = false;
      self.root.dataset.workflowId = saved.id;
      if (location.pathname !== '/workflows/' + saved.id) history.replaceState(null, '', '/workflows/' + saved.id);
      $('#active').disabled = false;
      var s = $('#save-state'); s.textContent = 'Saved · v' + saved.version; s.classList.remove('dirty');
      if (self.marked) { self.marked = false; self.canvas.setStatuses({}); }
      return saved;
    }, function (err) {
      var problems = self.showProblems(err);
      flash(problems.length ? 'Not saved: the workflow has problems' : 'Not saved: ' + err.message, 'error', problems);
      err.shown = true;
      throw err;
    });
  };
  /* A refused document's problems as text, each also shown on its node ("node 'X'..."). */
  E.showProblems = function (err) {
    var canvas = this.canvas, found = {};
    var list = (err.problem && err.problem.problems || []).map(function (p) {
      var m = /^node '((?:[^'\\]|\\.)*)'/.exec(p.location || '');
      if (m && canvas.node(m[1])) found[m[1]] = (found[m[1]] ? found[m[1]] + '; ' : '') + p.location.slice(m[0].length).replace(/^\.?(parameters\.)?/, '') + ': ' + p.message;
      return (p.location ? p.location + ': ' : '') + p.message;
    });
    canvas.setStatuses({});
    Object.keys(found).forEach(function (name) { canvas.setStatus(name, { status: 'error', error: found[name] }); });
    this.marked = list.length > 0;
    return list;
  };
  E.roots = function () {
    var self = this, targets = {};
    this.doc.connections.forEach(function (e) { targets[e.to] = true; });
    return this.doc.nodes.filter(function (n) { return !targets[n.name]; })
      .sort(function (a, b) { return (self.types[b.type] || {}).inputs === 0 ? 1 : (self.types[a.type] || {}).inputs === 0 ? -1 : 0; });
  };
  E.openRun = function (until) {
    if (!this.doc.nodes.length) { flash('Add a node first.', 'error'); return; }
    var dialog = $('#run-dialog'), select = $('#run-start'), key = 'flowlite-run-' + (this.id || 'new');
    select.replaceChildren();
    this.roots().forEach(function (n) { var o = document.createElement('option'); o.textContent = n.name; select.appendChild(o); });
    $('#run-items').value = localStorage.getItem(key) || '{}';
    $('#run-error').textContent = '';
    $('#run-title').textContent = until ? 'Run to “' + until + '”' : 'Run with test data';
    this.until = until || null;
    dialog.showModal();
    $('#run-items').focus();
  };
  E.run = function () {
    this.flushForm();
    var self = this, text = $('#run-items').value, items;
    try { items = text.trim() ? JSON.parse(text) : null; } catch (e) { $('#run-error').textContent = 'The input is not valid JSON: ' + e.message; return false; }
    localStorage.setItem('flowlite-run-' + (this.id || 'new'), text);
    var body = { document: this.doc, items: items, start: $('#run-start').value || null, until: this.until };
    var start = this.id ? Promise.resolve() : this.save(); // a draft runs as an execution of its workflow
    start.then(function () {
      body.workflow_id = self.id;
      return api('POST', '/editor/run', body);
    }).then(function (started) { self.watch(started.id);     }).catch(function (err) {
      if (err.problem && !err.shown) {
        var problems = self.showProblems(err);
        flash('Cannot run: ' + (problems.length ? 'the workflow has problems' : err.message), 'error', problems);
      }
    });
    return true;
  };
  /* Show an execution of the draft live on the canvas, then its data. */
  E.watch = function (id) {
    var self = this, s = $('#run');
    this.execution = id; this.marked = false;
    this.canvas.setStatuses({});
    s.disabled = true; s.textContent = 'Running…';
    follow(this.canvas, id, function (record) {
      self.record = record;
      s.disabled = false; s.innerHTML = '<svg class="i"><use href="#i-play"/></svg> Run workflow';
      var names = Object.keys(record.nodes || {}), err = record.error;
      flash(err ? 'The run failed' + (err.node ? ' at “' + err.node + '”' : '') + ': ' + err.message : 'Run finished: ' + record.status, err ? 'error' : '');
      showData(self.canvas, self.doc, id, self.canvas.selected || (err && err.node) || names[names.length - 1]);
      var form = $('#node-form');
      if (form) self.previewAll(form);
    });
  };
  /* Listen on the webhook nodes' test URLs for one call that runs the draft. */
  E.listen = function (button) {
    var self = this, events, timer;
    var done = function () { events.close(); button.textContent = 'Listen for a test call'; button.disabled = false; };
    this.flushForm();
    (this.id ? Promise.resolve() : this.save()).then(function () {
      // subscribed before listening starts, so that no call can come first
      events = new EventSource('/api/v1/executions/events');
      events.addEventListener('execution_started', function (ev) {
        var e = JSON.parse(ev.data);
        if (e.workflow_id === self.id) { clearTimeout(timer); done(); self.watch(e.id); }
      });
      return new Promise(function (resolve) { events.onopen = resolve; });
    }).then(function () {
      return api('POST', '/api/v1/workflows/' + self.id + '/test-webhook', self.doc);
    }).then(function (listening) {
      var until = new Date(listening.expires_at);
      button.textContent = 'Listening…'; button.disabled = true;
      timer = setTimeout(done, until - Date.now());
      flash('Waiting for one call until ' + until.toLocaleTimeString() + ':', '',
        listening.webhooks.map(function (h) { return h.method + ' ' + h.url; }));
    }).catch(function (err) {
      if (events) events.close();
      if (!err.shown) flash('Cannot listen: ' + err.message, 'error');
    });
  };
  E.setActive = function (on) {
    var self = this, button = $('#active');
    var ready = this.dirty ? this.save() : Promise.resolve();
    ready.then(function () { return api('PATCH', '/api/v1/workflows/' + self.id, { active: on }); }).then(function (w) {
      button.setAttribute('aria-checked', String(w.active));
      flash(w.active ? 'Active: triggers now start this workflow.' : 'Inactive: only manual runs start it.');
    }, function (err) { flash('Could not change: ' + err.message, 'error'); });
  };
  E.pin = function (button) {
    var self = this, name = button.dataset.pin;
    if (this.doc.pinned && this.doc.pinned[name]) {
      delete this.doc.pinned[name];
      this.canvas.refreshNode(name); this.canvas.commit(); button.textContent = 'Pin output';
      flash('Unpinned “' + name + '”: it runs again in the next run.');
      return;
    }
    var url = '/api/v1/executions/' + encodeURIComponent(button.dataset.exec) + '/nodes/' + encodeURIComponent(name) +
      '/runs/' + button.dataset.run + '/outputs/' + encodeURIComponent(button.dataset.output) + '?limit=10000';
    api('GET', url).then(function (page) {
      self.doc.pinned = self.doc.pinned || {};
      self.doc.pinned[name] = page.items;
      self.canvas.refreshNode(name); self.canvas.commit(); button.textContent = 'Unpin output';
      flash('Pinned ' + page.items.length + ' item(s) of “' + name + '”: manual runs use them instead of running the node.');
    }, function (err) { flash(err.message, 'error'); });
  };

  E.bind = function () {
    var self = this, canvas = this.canvas, panel = $('#panel');
    var flushLater = debounce(function () { self.flushForm(); }, 250);
    var commitForm = function () { self.formDirty = true; flushLater(); }, previewLater = debounce(function (i) { self.preview(i); }, 250);
    $('#save').addEventListener('click', function () { self.save().catch(function () {}); });
    $('#run').addEventListener('click', function () { self.openRun(null); });
    $('#active').addEventListener('click', function () { self.setActive(this.getAttribute('aria-checked') !== 'true'); });
    $('#run-dialog').addEventListener('close', function () { if (this.returnValue === 'run') this.returnValue = ''; });
    $('#run-form').addEventListener('submit', function (ev) {
      if (ev.submitter && ev.submitter.value === 'run' && !self.run()) ev.preventDefault();
    });
    $('#wf-name').addEventListener('input', function () { self.doc.name = this.value; canvas.commit(); });
    $('#wf-tags').addEventListener('input', debounce(function () {
      var tags = $('#wf-tags').value.split(',').map(function (t) { return t.trim(); }).filter(Boolean);
      if (tags.length) self.doc.tags = tags; else delete self.doc.tags;
      canvas.commit();
    }, 300));
    // palette: search, then click or Enter to add
    var search = $('#palette-search');
    search.addEventListener('input', function () {
      var q = this.value.toLowerCase();
      document.querySelectorAll('.palette-group').forEach(function (g) {
        var any = false;
        g.querySelectorAll('.palette-item').forEach(function (b) {
          var hit = !q || (b.textContent + ' ' + b.dataset.type + ' ' + b.title).toLowerCase().indexOf(q) >= 0;
          b.hidden = !hit; any = any || hit;
        });
        g.hidden = !any;
      });
    });
    search.addEventListener('keydown', function (ev) {
      var first = document.querySelector('.palette-item:not([hidden])');
      if (ev.key === 'Escape') { this.value = ''; this.dispatchEvent(new Event('input')); }
      if (ev.key === 'Enter' && first) {
        ev.preventDefault(); first.click();
        this.value = ''; this.dispatchEvent(new Event('input'));
      }
      if (ev.key === 'ArrowDown' && first) { ev.preventDefault(); first.focus(); }
    });
    $('#palette-list').addEventListener('click', function (ev) {
      var b = ev.target.closest('.palette-item');
      if (b) canvas.addNode(b.dataset.type);
    });
    // the node panel
    panel.addEventListener('input', function (ev) {
      if (ev.target.id === 'node-name') return;
      commitForm();
      if (ev.target.classList.contains('expr')) previewLater(ev.target);
    });
    panel.addEventListener('change', function (ev) {
      if (ev.target.id !== 'node-name') { self.applyForm(); return; }
      var form = $('#node-form'), old = form.dataset.node;
      if (canvas.rename(old, ev.target.value)) { form.dataset.node = ev.target.value.trim(); ev.target.value = form.dataset.node; }
      else { flash('A node name must be unique and not empty.', 'error'); ev.target.value = old; }
    });
    panel.addEventListener('click', function (ev) {
      var b = ev.target.closest('button');
      if (!b) return;
      if (b.hasAttribute('data-unlink')) {
        self.doc.connections.splice(+b.dataset.unlink, 1);
        canvas.renderEdges(); canvas.commit();
        var first = $('#node-links button'); if (first) first.focus();
      } else if (b.hasAttribute('data-link')) {
        var out = $('#link-out'), to = $('#link-to');
        var target = to.options[to.selectedIndex].textContent;
        canvas.connect(canvas.selected, out ? +out.value : 0, target, 0);
        var again = $('#link-to'); if (again) again.focus();
      } else if (b.hasAttribute('data-add')) {
        var f = b.closest('.fld'), tpl = f.querySelector(':scope > template'), rows = f.querySelector(':scope > .rows');
        var n = Date.now() % 100000, html = tpl.innerHTML.replace(/__i__/g, String(n));
        rows.insertAdjacentHTML('beforeend', html);
        var first = rows.lastElementChild.querySelector('input, select, textarea');
        if (first) first.focus();
        commitForm();
      } else if (b.hasAttribute('data-del')) {
        var fld = b.closest('.fld'); b.closest('.row').remove();
        var next = fld.querySelector('input, select, [data-add]'); if (next) next.focus();
        commitForm();
      } else if (b.dataset.act === 'close') { canvas.select(null); canvas.el.focus(); }
      else if (b.dataset.act === 'run-to') self.openRun(canvas.selected);
      else if (b.dataset.act === 'listen') self.listen(b);
      else if (b.dataset.act === 'duplicate') canvas.duplicate();
      else if (b.dataset.act === 'disable') { canvas.toggleDisabled(); self.select(canvas.selected); }
      else if (b.dataset.act === 'delete') canvas.remove();
    });
    document.addEventListener('click', function (ev) {
      var b = ev.target.closest('[data-pin]');
      if (b) self.pin(b);
    });
    document.body.addEventListener('htmx:afterSwap', function (ev) {
      var b = ev.target.id === 'data' && ev.target.querySelector('[data-pin]');
      if (b && self.doc.pinned && self.doc.pinned[b.dataset.pin]) b.textContent = 'Unpin output';
    });
    document.addEventListener('keydown', function (ev) {
      var mod = ev.ctrlKey || ev.metaKey, k = ev.key;
      if (mod && k.toLowerCase() === 's') { ev.preventDefault(); self.save().catch(function () {}); return; }
      if (mod && k === 'Enter') { ev.preventDefault(); self.openRun(null); return; }
      if ($('#run-dialog').open) return;
      if (k === 'Escape' && ev.target !== search) { canvas.select(null); canvas.el.focus(); return; }
      if (typing(ev.target)) return;
      if (k === '/') { ev.preventDefault(); search.focus(); search.select(); return; }
      if (k === 'F2' && canvas.selected) { ev.preventDefault(); var nm = $('#node-name'); if (nm) { nm.focus(); nm.select(); } return; }
      if (k === 'Enter' && ev.target.closest('.node')) { ev.preventDefault(); var f = $('#panel .params input, #panel .params select, #panel .params textarea'); if (f) f.focus(); return; }
      if (canvas.key(ev)) ev.preventDefault();
    });
    window.addEventListener('beforeunload', function (ev) {
      if (self.dirty) { ev.preventDefault(); ev.returnValue = ''; }
    });
  };

  /* --- an execution on the canvas (read-only), followed live while it runs -------------- */
  function ExecutionView(root) {
    var doc = json('doc-data'), types = {}, id = root.dataset.executionId;
    json('catalog-data').forEach(function (t) { types[t.type] = t; });
    doc.connections = doc.connections || [];
    var canvas = new window.FlowCanvas($('#canvas'), doc, types, {
      readonly: true, onSelect: function (name) { showData(canvas, doc, id, name); }
    });
    canvas.setStatuses(json('status-data') || {});
    document.addEventListener('keydown', function (ev) { if (!typing(ev.target) && canvas.key(ev)) ev.preventDefault(); });
    if (root.dataset.running === 'true') {
      follow(canvas, id, function () {
        htmx.ajax('GET', '/executions/' + encodeURIComponent(id), { target: '#ex-summary', swap: 'outerHTML' });
      });
    }
    window.flowReadyAt = performance.now(); // read by benchmarks/editor.py
    document.body.dataset.ready = 'true';
  }

  /* --- the executions list: refresh on every execution that starts or ends ----------------- */
  function liveList() {
    var source = new EventSource('/api/v1/executions/events');
    // at most one refresh a second, and always one after the last event
    var pending = false, last = 0;
    var changed = function () {
      if (pending) return;
      pending = true;
      setTimeout(function () {
        pending = false; last = Date.now();
        htmx.trigger(document.body, 'executions-changed');
      }, Math.max(300, 1000 - (Date.now() - last))); // 300 ms: the writer commits in batches
    };
    source.addEventListener('execution_started', changed);
    source.addEventListener('execution_finished', changed);
    // whatever started between the page and the subscription (or during a reconnection)
    source.onopen = function () { changed(); document.body.dataset.live = 'true'; };
    window.addEventListener('pagehide', function () { source.close(); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    var root = $('#editor');
    if (root && root.dataset.executionId) new ExecutionView(root);
    else if (root) window.flowEditor = new Editor(root);
    if ($('#ex-rows')) liveList();
  });
})();
