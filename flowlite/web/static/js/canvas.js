/* flowlite canvas: nodes are absolutely positioned boxes inside a "world" element, connections
   are SVG cubic curves from named outputs to inputs; pan and zoom transform the world.
   The canvas edits the workflow document it is given in place and reports through callbacks:
   onSelect(name|null), onChange() after every edit (undo/redo keep JSON snapshots). */
(function () {
  'use strict';
  var NODE_W = 200, HEAD_H = 52, PORT_GAP = 24, GRID = 10, COL = 300, ROW = 110;
  var esc = function (s) {
    return String(s).replace(/[&<>"']/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  };

  function Canvas(el, doc, types, opts) {
    this.el = el; this.doc = doc; this.types = types; this.opts = opts || {};
    this.readonly = !!this.opts.readonly;
    this.view = { x: 40, y: 40, k: 1 };
    this.selected = null; this.selectedEdge = -1; this.statuses = {};
    this.past = []; this.future = []; this.snapshot = JSON.stringify(doc);
    this.world = document.createElement('div'); this.world.className = 'world';
    el.appendChild(this.world);
    this.bind();
    if (this.doc.nodes.some(function (n) { return !n.position; })) this.layout(true);
    this.render();
    this.fit(0.5);
  }
  var C = Canvas.prototype;

  /* --- the shape of a node: its inputs, outputs and geometry ------------------------- */
  C.type = function (n) { return this.types[n.type] || { outputs: ['main'], inputs: 1, display_name: n.type, category: 'other', icon: 'box' }; };
  C.inputsOf = function (n) {
    var t = this.type(n), p = n.parameters || {};
    if (t.inputs > 1 && Number.isInteger(p.inputs)) return Math.max(2, Math.min(10, p.inputs));
    return t.inputs;
  };
  C.outputsOf = function (n) {
    var t = this.type(n), p = n.parameters || {}, out = t.outputs.slice();
    if (!out.length) { // outputs named by the parameters (switch rules)
      var names = Array.isArray(p.rules) ? p.rules.map(function (r) { return r && r.output; }) : (p.outputs || []);
      out = names.filter(function (s) { return typeof s === 'string'; });
      if (p.fallback === 'output') out.push('fallback');
    }
    if (n.on_error === 'error_output') out.push('error');
    return out;
  };
  C.height = function (n) {
    return Math.max(HEAD_H, (Math.max(this.outputsOf(n).length, this.inputsOf(n)) + 1) * PORT_GAP);
  };
  C.portY = function (n, i, count) { return this.height(n) / 2 + (i - (count - 1) / 2) * PORT_GAP; };
  C.node = function (name) {
    for (var i = 0; i < this.doc.nodes.length; i++) if (this.doc.nodes[i].name === name) return this.doc.nodes[i];
    return null;
  };
  C.outputIndex = function (n, edge) {
    var outs = this.outputsOf(n);
    if (edge.output === undefined) return 0;
    return typeof edge.output === 'number' ? edge.output : outs.indexOf(String(edge.output));
  };
  C.subtitle = function (n) {
    var t = this.type(n), p = n.parameters || {};
    if (n.type === 'webhook' && p.path) return (p.method || 'POST') + ' /' + String(p.path).replace(/^\//, '');
    if ((this.opts.hints || {})[n.name]) return this.opts.hints[n.name];
    if (n.type === 'schedule_trigger' && p.cron) return 'cron ' + p.cron;
    return t.display_name;
  };

  /* --- rendering ------------------------------------------------------------------------ */
  C.render = function () {
    var self = this, html = [];
    this.doc.nodes.forEach(function (n) { html.push(self.nodeHtml(n)); });
    this.world.innerHTML = '<svg class="edges" width="1" height="1"></svg>' + html.join('');
    this.svg = this.world.firstChild;
    this.renderEdges();
    this.applyView();
    var empty = this.el.querySelector('.canvas-empty');
    if (empty) empty.hidden = this.doc.nodes.length > 0;
  };
  C.nodeHtml = function (n) {
    var t = this.type(n), self = this, pos = n.position || [0, 0], h = this.height(n);
    var ins = this.inputsOf(n), outs = this.outputsOf(n), st = this.statuses[n.name] || {};
    var cls = 'node' + (n.name === this.selected ? ' selected' : '') + (n.disabled ? ' disabled' : '') +
      ((this.doc.pinned || {})[n.name] ? ' pinned' : '') + (st.status ? ' st-' + st.status : '');
    var ports = '';
    for (var i = 0; i < ins; i++) {
      ports += '<span class="port" data-in="' + i + '" style="left:-7px;top:' + (this.portY(n, i, ins) - 6) + 'px" aria-hidden="true"></span>';
    }
    outs.forEach(function (name, i) {
      var count = st.items && st.items[name] !== undefined ? ' <span class="n">' + st.items[name] + '</span>' : '';
      var label = outs.length > 1 || name !== 'main' ? '<span class="port-label">' + esc(name) + count + '</span>' : '';
      ports += '<span class="port" data-out="' + i + '" title="' + esc(name) + ': drag to a node input to connect" style="right:-7px;top:' + (self.portY(n, i, outs.length) - 6) + 'px">' + label + '</span>';
    });
    var total = st.items ? Object.keys(st.items).reduce(function (a, k) { return a + st.items[k]; }, 0) : '';
    return '<div class="' + cls + '" data-name="' + esc(n.name) + '" tabindex="0" role="button" aria-label="' +
      esc(t.display_name + ' node ' + n.name + (n.disabled ? ', disabled' : '') + (st.status ? ', ' + st.status : '')) +
      '" style="transform:translate(' + pos[0] + 'px,' + pos[1] + 'px);height:' + h + 'px"' +
      (n.notes ? ' title="' + esc(n.notes) + '"' : '') + '>' +
      '<div class="node-head"><div class="node-icon c-' + esc(t.category) + '"><svg class="i"><use href="#i-' + esc(t.icon) + '"/></svg></div>' +
      '<div class="node-title"><div class="node-name">' + esc(n.name) + '</div><div class="node-sub">' + esc(this.subtitle(n)) + '</div></div></div>' +
      '<span class="st">' + (st.status === 'error' ? '!' : st.status === 'success' ? '✓ ' + total : '') + '</span>' +
      '<span class="pin" title="Output pinned"><svg class="i"><use href="#i-pin"/></svg></span>' +
      '<div class="node-error" style="position:absolute;top:100%;left:0;right:0">' + esc(st.error || '') + '</div>' +
      ports + '</div>';
  };
  C.edgeEnds = function (edge) {
    var a = this.node(edge.from), b = this.node(edge.to);
    if (!a || !b) return null;
    var oi = this.outputIndex(a, edge), outs = this.outputsOf(a).length, pa = a.position || [0, 0], pb = b.position || [0, 0];
    if (oi < 0) return null;
    return [pa[0] + NODE_W + 1, pa[1] + this.portY(a, oi, outs), pb[0] - 1, pb[1] + this.portY(b, edge.input || 0, this.inputsOf(b))];
  };
  C.curve = function (x1, y1, x2, y2) {
    var dx = Math.max(40, Math.abs(x2 - x1) / 2);
    return 'M' + x1 + ' ' + y1 + 'C' + (x1 + dx) + ' ' + y1 + ',' + (x2 - dx) + ' ' + y2 + ',' + x2 + ' ' + y2;
  };
  C.renderEdges = function () {
    var self = this, out = [];
    (this.doc.connections || []).forEach(function (e, i) {
      var p = self.edgeEnds(e);
      if (!p) return;
      var d = self.curve(p[0], p[1], p[2], p[3]), st = self.statuses[e.from], a = self.node(e.from);
      // a node with several outputs shows its counts on its output labels already
      var outs = self.outputsOf(a), name = outs[self.outputIndex(a, e)], n = st && st.items && outs.length === 1 ? st.items[name] : undefined;
      out.push('<g data-edge="' + i + '"><path class="edge-hit" d="' + d + '"/><path class="edge' +
        (i === self.selectedEdge ? ' selected' : '') + (n ? ' ran' : '') + '" d="' + d + '"/>' +
        (n !== undefined ? '<text class="edge-label" x="' + ((p[0] + p[2]) / 2) + '" y="' + ((p[1] + p[3]) / 2 - 6) + '" text-anchor="middle">' + n + ' item' + (n === 1 ? '' : 's') + '</text>' : '') + '</g>');
    });
    this.svg.innerHTML = out.join('');
  };
  C.applyView = function () {
    var v = this.view;
    this.world.style.transform = 'translate(' + v.x + 'px,' + v.y + 'px) scale(' + v.k + ')';
  };
  C.refreshNode = function (name) {
    var el = this.nodeEl(name), n = this.node(name);
    if (!el || !n) return this.render();
    el.outerHTML = this.nodeHtml(n);
    this.renderEdges();
  };
  C.nodeEl = function (name) {
    return this.world.querySelector('.node[data-name="' + CSS.escape(name) + '"]');
  };

  /* --- selection and statuses ----------------------------------------------------------- */
  C.select = function (name, focus) {
    var prev = this.selected && this.nodeEl(this.selected);
    if (prev) prev.classList.remove('selected');
    this.selected = name; this.selectedEdge = -1;
    this.svg.querySelectorAll('.edge.selected').forEach(function (e) { e.classList.remove('selected'); });
    var el = name && this.nodeEl(name);
    if (el) { el.classList.add('selected'); if (focus) el.focus({ preventScroll: true }); }
    if (this.opts.onSelect) this.opts.onSelect(name);
  };
  C.setStatuses = function (statuses) { this.statuses = statuses || {}; this.render(); };
  C.setStatus = function (name, st) {
    this.statuses[name] = st;
    if (this.node(name)) this.refreshNode(name);
  };

  /* --- edits (each ends with commit(): one undo step) ----------------------------------- */
  C.commit = function () {
    var now = JSON.stringify(this.doc);
    if (now === this.snapshot) return;
    this.past.push(this.snapshot); this.future = []; this.snapshot = now;
    if (this.past.length > 200) this.past.shift();
    if (this.opts.onChange) this.opts.onChange();
  };
  C.restore = function (from, to) {
    if (this.opts.flush) this.opts.flush();
    if (!from.length) return;
    to.push(this.snapshot); this.snapshot = from.pop();
    var doc = JSON.parse(this.snapshot);
    Object.keys(this.doc).forEach(function (k) { delete this.doc[k]; }, this);
    Object.assign(this.doc, doc);
    if (this.selected && !this.node(this.selected)) this.selected = null;
    this.render();
    if (this.opts.onChange) this.opts.onChange();
    if (this.opts.onSelect) this.opts.onSelect(this.selected);
  };
  C.undo = function () { this.restore(this.past, this.future); };
  C.redo = function () { this.restore(this.future, this.past); };
  C.uniqueName = function (base) {
    var name = base, i = 2;
    while (this.node(name)) name = base + ' ' + i++;
    return name;
  };
  C.addNode = function (typeName) {
    var t = this.types[typeName], from = this.selected && this.node(this.selected), pos;
    var n = { name: this.uniqueName(t.display_name), type: typeName, parameters: {} };
    var last = this.doc.nodes[this.doc.nodes.length - 1];
    if (from) pos = [from.position[0] + COL, from.position[1]];
    else if (last) pos = [Math.max.apply(null, this.doc.nodes.map(function (o) { return o.position[0]; })) + COL, last.position[1]];
    else {
      var r = this.el.getBoundingClientRect();
      pos = [(r.width / 3 - this.view.x) / this.view.k - NODE_W / 2, (r.height / 2 - this.view.y) / this.view.k - HEAD_H / 2];
    }
    pos = [Math.round(pos[0] / GRID) * GRID, Math.round(pos[1] / GRID) * GRID];
    while (this.doc.nodes.some(function (o) { return Math.abs(o.position[0] - pos[0]) < NODE_W && Math.abs(o.position[1] - pos[1]) < 70; })) pos[1] += ROW;
    n.position = pos;
    this.doc.nodes.push(n);
    this.doc.connections = this.doc.connections || [];
    if (from && t.inputs > 0 && this.outputsOf(from).length) this.doc.connections.push({ from: from.name, to: n.name });
    this.render(); this.reveal(n); this.select(n.name, true); this.commit();
    return n;
  };
  C.connect = function (from, outIndex, to, input) {
    if (from === to) return;
    var a = this.node(from), edge = { from: from, to: to };
    if (outIndex > 0) edge.output = this.outputsOf(a)[outIndex];
    if (input > 0) edge.input = input;
    var dup = this.doc.connections.some(function (e) {
      return e.from === from && e.to === to && (e.output || 0) === (edge.output || 0) && (e.input || 0) === (edge.input || 0);
    });
    if (!dup) { this.doc.connections.push(edge); this.renderEdges(); this.commit(); }
  };
  C.remove = function () {
    var name = this.selected, self = this;
    if (this.selectedEdge >= 0) {
      this.doc.connections.splice(this.selectedEdge, 1); this.selectedEdge = -1;
    } else if (name) {
      this.doc.nodes = this.doc.nodes.filter(function (n) { return n.name !== name; });
      this.doc.connections = this.doc.connections.filter(function (e) { return e.from !== name && e.to !== name; });
      if (this.doc.pinned) delete this.doc.pinned[name];
      this.select(null);
    } else return;
    this.render(); this.commit();
    self.el.focus();
  };
  C.rename = function (old, name) {
    name = name.trim();
    if (!name || name === old || this.node(name)) return false;
    this.node(old).name = name;
    this.doc.connections.forEach(function (e) { if (e.from === old) e.from = name; if (e.to === old) e.to = name; });
    if (this.doc.pinned && this.doc.pinned[old]) { this.doc.pinned[name] = this.doc.pinned[old]; delete this.doc.pinned[old]; }
    if (this.statuses[old]) { this.statuses[name] = this.statuses[old]; delete this.statuses[old]; }
    if (this.selected === old) this.selected = name;
    this.render(); this.commit();
    return true;
  };
  C.duplicate = function () {
    var n = this.node(this.selected);
    if (!n) return;
    var copy = JSON.parse(JSON.stringify(n));
    copy.name = this.uniqueName(n.name);
    copy.position = [n.position[0] + 30, n.position[1] + 80];
    this.doc.nodes.push(copy);
    this.render(); this.select(copy.name, true); this.commit();
  };
  C.toggleDisabled = function () {
    var n = this.node(this.selected);
    if (!n) return;
    if (n.disabled) delete n.disabled; else n.disabled = true;
    this.refreshNode(n.name); this.commit();
  };
  C.moveBy = function (dx, dy) {
    var n = this.node(this.selected);
    if (!n) return;
    n.position = [n.position[0] + dx, n.position[1] + dy];
    this.refreshNode(n.name); this.nodeEl(n.name).focus(); this.commit();
  };

  /* --- auto layout: columns by longest path from the start, rows by parents' order ------ */
  C.layout = function (missingOnly) {
    var self = this, rank = {}, parents = {}, order = {};
    this.doc.nodes.forEach(function (n, i) { rank[n.name] = 0; parents[n.name] = []; order[n.name] = i; });
    (this.doc.connections || []).forEach(function (e) { if (parents[e.to] && e.from in rank) parents[e.to].push(e.from); });
    for (var pass = 0; pass < this.doc.nodes.length; pass++) {
      var changed = false;
      this.doc.nodes.forEach(function (n) {
        parents[n.name].forEach(function (p) {
          if (rank[p] + 1 > rank[n.name]) { rank[n.name] = rank[p] + 1; changed = true; }
        });
      });
      if (!changed) break;
    }
    var columns = [];
    this.doc.nodes.forEach(function (n) { (columns[rank[n.name]] = columns[rank[n.name]] || []).push(n); });
    columns.forEach(function (col, c) {
      col.forEach(function (n) {
        var ps = parents[n.name];
        n._key = ps.length ? ps.reduce(function (a, p) { return a + order[p]; }, 0) / ps.length : order[n.name];
      });
      col.sort(function (a, b) { return a._key - b._key; });
      col.forEach(function (n, r) {
        order[n.name] = r;
        delete n._key;
        if (!missingOnly || !n.position) n.position = [60 + c * COL, 60 + (r - (col.length - 1) / 2) * ROW + 200];
      });
    });
    if (!missingOnly) { this.render(); this.fit(); this.commit(); }
  };

  /* --- pan and zoom ----------------------------------------------------------------------- */
  C.zoomAt = function (factor, cx, cy) {
    var v = this.view, k = Math.max(0.2, Math.min(2, v.k * factor));
    v.x = cx - (cx - v.x) * (k / v.k); v.y = cy - (cy - v.y) * (k / v.k); v.k = k;
    this.applyView();
  };
  C.zoom = function (factor) {
    var r = this.el.getBoundingClientRect();
    this.zoomAt(factor, r.width / 2, r.height / 2);
  };
  // show every node; with `least`, never zoom out below it and show the start of the flow instead
  C.fit = function (least) {
    var nodes = this.doc.nodes, r = this.el.getBoundingClientRect();
    if (!nodes.length || !r.width) return;
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    nodes.forEach(function (n) {
      var p = n.position || [0, 0];
      x0 = Math.min(x0, p[0]); y0 = Math.min(y0, p[1]); x1 = Math.max(x1, p[0] + NODE_W); y1 = Math.max(y1, p[1] + 80);
    });
    var k = Math.max(0.2, Math.min(1.2, Math.min((r.width - 120) / (x1 - x0), (r.height - 100) / (y1 - y0))));
    this.view = { k: k, x: (r.width - (x1 - x0) * k) / 2 - x0 * k, y: (r.height - (y1 - y0) * k) / 2 - y0 * k + 10 };
    if (least && k < least) {
      k = least;
      this.view = { k: k, x: 60 - x0 * k, y: (r.height - Math.min(y1 - y0, r.height / k) * k) / 2 - y0 * k + 10 };
    }
    this.applyView();
  };
  // pan so that a node out of sight comes into view
  C.reveal = function (n) {
    var r = this.el.getBoundingClientRect(), v = this.view, x = n.position[0] * v.k + v.x, y = n.position[1] * v.k + v.y;
    if (x < 20 || y < 50 || x + NODE_W * v.k > r.width - 20 || y + HEAD_H * v.k > r.height - 20) {
      v.x = r.width / 2 - (n.position[0] + NODE_W / 2) * v.k; v.y = r.height / 2 - (n.position[1] + HEAD_H / 2) * v.k;
      this.applyView();
    }
  };
  C.toWorld = function (ev) {
    var r = this.el.getBoundingClientRect(), v = this.view;
    return [(ev.clientX - r.left - v.x) / v.k, (ev.clientY - r.top - v.y) / v.k];
  };

  /* --- pointer and keyboard ---------------------------------------------------------------- */
  C.bind = function () {
    var self = this, el = this.el, drag = null;
    el.addEventListener('pointerdown', function (ev) {
      if (ev.button !== 0 || ev.target.closest('.canvas-tools')) return;
      var port = ev.target.closest('.port'), nodeEl = ev.target.closest('.node'), edge = ev.target.closest('[data-edge]');
      var start = self.toWorld(ev);
      if (port && port.dataset.out !== undefined && !self.readonly) {
        var from = port.closest('.node').dataset.name, a = self.node(from), oi = +port.dataset.out;
        var temp = document.createElementNS('http://www.w3.org/2000/svg', 'path');
        temp.setAttribute('class', 'edge temp'); self.svg.appendChild(temp);
        drag = { kind: 'connect', from: from, out: oi, temp: temp, x: a.position[0] + NODE_W, y: a.position[1] + self.portY(a, oi, self.outputsOf(a).length) };
      } else if (nodeEl) {
        var name = nodeEl.dataset.name, n = self.node(name);
        if (self.selected !== name) self.select(name);
        if (!self.readonly) drag = { kind: 'move', name: name, dx: start[0] - n.position[0], dy: start[1] - n.position[1], moved: false };
      } else if (edge) {
        self.select(null); self.selectedEdge = +edge.dataset.edge;
        edge.querySelector('.edge').classList.add('selected');
      } else {
        self.select(null);
        drag = { kind: 'pan', x: ev.clientX - self.view.x, y: ev.clientY - self.view.y };
        el.classList.add('panning');
      }
      if (drag) el.setPointerCapture(ev.pointerId);
    });
    el.addEventListener('pointermove', function (ev) {
      if (!drag) return;
      var p = self.toWorld(ev);
      if (drag.kind === 'pan') {
        self.view.x = ev.clientX - drag.x; self.view.y = ev.clientY - drag.y; self.applyView();
      } else if (drag.kind === 'move') {
        var n = self.node(drag.name);
        n.position = [Math.round((p[0] - drag.dx) / GRID) * GRID, Math.round((p[1] - drag.dy) / GRID) * GRID];
        self.nodeEl(drag.name).style.transform = 'translate(' + n.position[0] + 'px,' + n.position[1] + 'px)';
        drag.moved = true;
        self.renderEdges();
      } else if (drag.kind === 'connect') {
        drag.temp.setAttribute('d', self.curve(drag.x, drag.y, p[0], p[1]));
        var hot = self.world.querySelector('.port.hot'), over = document.elementFromPoint(ev.clientX, ev.clientY);
        if (hot) hot.classList.remove('hot');
        over = over && self.inputAt(over);
        if (over) over.classList.add('hot');
      }
    });
    el.addEventListener('pointerup', function (ev) {
      if (!drag) return;
      var d = drag; drag = null;
      el.classList.remove('panning');
      if (d.kind === 'move' && d.moved) self.commit();
      if (d.kind === 'connect') {
        d.temp.remove();
        var port = self.inputAt(document.elementFromPoint(ev.clientX, ev.clientY));
        if (port) self.connect(d.from, d.out, port.closest('.node').dataset.name, +port.dataset.in);
        else self.renderEdges();
      }
    });
    el.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      if (ev.ctrlKey || ev.metaKey) {
        var r = el.getBoundingClientRect();
        self.zoomAt(Math.exp(-ev.deltaY * 0.002), ev.clientX - r.left, ev.clientY - r.top);
      } else { self.view.x -= ev.deltaX; self.view.y -= ev.deltaY; self.applyView(); }
    }, { passive: false });
    el.addEventListener('focusin', function (ev) {
      var nodeEl = ev.target.closest && ev.target.closest('.node');
      if (nodeEl && nodeEl.dataset.name !== self.selected) self.select(nodeEl.dataset.name);
    });
    el.addEventListener('dblclick', function (ev) {
      var nodeEl = ev.target.closest('.node');
      if (nodeEl && self.opts.onOpen) self.opts.onOpen(nodeEl.dataset.name);
    });
    el.addEventListener('click', function (ev) {
      var b = ev.target.closest('[data-act]');
      if (b && self.actions[b.dataset.act]) self.actions[b.dataset.act].call(self);
    });
  };
  // an input port under the pointer, or the first input of the node under it
  C.inputAt = function (target) {
    if (!target || !target.closest) return null;
    var port = target.closest('.port');
    if (port && port.dataset.in !== undefined) return port;
    var nodeEl = target.closest('.node');
    return nodeEl ? nodeEl.querySelector('.port[data-in]') : null;
  };
  C.actions = {
    undo: C.undo, redo: C.redo, fit: function () { this.fit(); }, layout: function () { this.layout(false); },
    'zoom-in': function () { this.zoom(1.2); }, 'zoom-out': function () { this.zoom(1 / 1.2); }
  };
  // keys on the canvas; returns true when handled
  C.key = function (ev) {
    var mod = ev.ctrlKey || ev.metaKey, k = ev.key;
    if (mod && k.toLowerCase() === 'z') { ev.shiftKey ? this.redo() : this.undo(); return true; }
    if (mod && k.toLowerCase() === 'y') { this.redo(); return true; }
    if (k === '+' || k === '=') { this.zoom(1.2); return true; }
    if (k === '-') { this.zoom(1 / 1.2); return true; }
    if (k === '0') { this.fit(); return true; }
    if (this.readonly) return false;
    if (k === 'Delete' || k === 'Backspace') { this.remove(); return true; }
    if (mod && k.toLowerCase() === 'd') { this.duplicate(); return true; }
    if (!mod && k.toLowerCase() === 'd') { this.toggleDisabled(); return true; }
    var step = ev.shiftKey ? 50 : GRID;
    var moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[k] && this.selected) { this.moveBy(moves[k][0], moves[k][1]); return true; }
    return false;
  };

  Canvas.esc = esc;
  window.FlowCanvas = Canvas;
})();
