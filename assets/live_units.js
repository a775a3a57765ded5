/* Live pages: the response units on the maps (SPEC section 11), drawn straight from the socket's frames into SVG
 * layers over the maps, not through a Dash store and a Plotly redraw: 2,000 units reporting every 5 s would redraw
 * a map's figure many times a second. Two layers (LAYERS), each a div the server renders empty and no callback
 * writes: every unit over the city map (#unit-layer), and over a major incident's command view (#major-unit-layer)
 * only the units sent to it, the ones its task list names (li.major-unit[data-unit], layouts/major.py); that list's
 * statuses and straight-line distances are kept current here too.
 *
 * At city scale units are aggregated: the map is cut into cells of CELL_PX and each cell shows one marker per
 * status present (coloured by status, assets/units.css), at the mean place of its units, its size and its number
 * saying how many. A marker that stands for a single unit names it (data-unit, data-status, data-pos: what tests
 * and bench/units.py look for). Markers are pooled and reused, never rebuilt, and a marker is rewritten only when
 * what it shows changed: a layer's DOM is bounded by the number of cells on the screen, however long the page runs
 * and however many reports arrive. A frame's units are drawn in the socket's message task, and frames that come
 * faster than the animation frames together at the next one (request()). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const SVG_NS = 'http://www.w3.org/2000/svg';
    const CELL_PX = 26;
    const EDGE_PX = 8;  // a unit sent from beyond the command view's map waits at its edge, this far in
    const STATUSES = ['available', 'en_route', 'on_scene', 'off_duty'];  // dashboard.core.units.STATUSES
    const MAX_UNITS = 10000;  // fleet.MAX_UNITS of the gateway: beyond any city's fleet

    const RETRY_MS = 300;  // a layer whose map has not drawn yet is tried again after this
    const RETRIES = 20;
    // the layers: over which graph, and which units (null: all; else the ids the page's task list names)
    const LAYERS = [
        {layer: 'unit-layer', graph: '#city-map .js-plotly-plot', only: null},
        {layer: 'major-unit-layer', graph: '#major-map .js-plotly-plot', only: '#major-view li.major-unit[data-unit]',
            clamp: true},
    ];

    const units = new Map();  // unit id -> its latest view (messages.UnitView), insertion order = recency
    // pools by layer element: a command view redrawn by Dash brings a new element, and its old pool goes with it
    const pools = new WeakMap();
    const geoms = new WeakMap();  // layer element -> where its map was last measured (placeOf)
    // drawn: a draw ran since the last animation frame; scheduled: an animation frame will draw (units came since)
    const st = {drawn: false, scheduled: false, framing: false, retries: 0, retryTimer: null, slot: null,
        slotObserver: null};

    function mx(lon) {
        return (lon + 180) / 360;
    }

    function my(lat) {
        const s = Math.sin(lat * Math.PI / 180);
        return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
    }

    /** The map's Mercator view on w x h px from its figure's layout.geo (centre and longitude range), as
     *  figures.geo_view set it: lon/lat -> px. Null before the map has drawn. */
    function viewOf(geo, w, h) {
        if (!geo || !geo.center || !geo.lonaxis || !geo.lonaxis.range || !(w > 0 && h > 0)) {
            return null;
        }
        const [west, east] = geo.lonaxis.range;
        const k = w / (mx(east) - mx(west));
        const cx = mx(geo.center.lon);
        const cy = my(geo.center.lat);
        return (lon, lat) => [(mx(lon) - cx) * k + w / 2, (my(lat) - cy) * k + h / 2];
    }

    /** Units, projection, size -> the markers: one per cell and status, {status, n, x, y, unit?, pos?, edge?}.
     *  Units off the map are left out, or with ``clamp`` held at its edge (``edge``: the side they come from);
     *  ``clamp`` may be the map's drawn frame [left, top, right, bottom] within the w x h box. */
    function cluster(list, project, w, h, cell, clamp) {
        const cells = new Map();
        const [x0, y0, x1, y1] = Array.isArray(clamp) ? clamp : [0, 0, w, h];
        for (const u of list) {
            if (typeof u.lat !== 'number' || typeof u.lon !== 'number') {
                continue;
            }
            let [x, y] = project(u.lon, u.lat);
            let edge = false;
            if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1)) {
                if (!clamp || !Number.isFinite(x) || !Number.isFinite(y) || !(x1 > x0 && y1 > y0)) {
                    continue;
                }
                const m = Math.min(EDGE_PX, (x1 - x0) / 2, (y1 - y0) / 2);
                x = Math.min(Math.max(x, x0 + m), x1 - m);
                y = Math.min(Math.max(y, y0 + m), y1 - m);
                edge = true;
            }
            const status = STATUSES.includes(u.status) ? u.status : 'available';
            const key = Math.floor(x / cell) + ',' + Math.floor(y / cell) + ',' + status;
            const c = cells.get(key);
            if (c) {
                c.n += 1;
                c.sx += x;
                c.sy += y;
                c.edge = c.edge && edge;
            } else {
                cells.set(key, {key: key, status: status, n: 1, sx: x, sy: y, unit: u.unit, edge: edge,
                    pos: u.lat.toFixed(5) + ',' + u.lon.toFixed(5)});
            }
        }
        const out = [];
        for (const c of cells.values()) {
            const one = c.n === 1;
            // statuses of one cell side by side, so an en-route unit is not hidden under available ones
            const shift = (STATUSES.indexOf(c.status) - 1.5) * 5;
            out.push({key: c.key, status: c.status, n: c.n, x: c.sx / c.n + (one ? 0 : shift), y: c.sy / c.n,
                unit: one ? c.unit : null, pos: one ? c.pos : null, edge: c.edge});
        }
        return out;
    }

    /** km between two places, straight line (as dashboard.dispatch.units.km_between: roads are not known). */
    function kmBetween(lat1, lon1, lat2, lon2) {
        const rad = Math.PI / 180;
        const a = Math.sin((lat2 - lat1) * rad / 2) ** 2
            + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin((lon2 - lon1) * rad / 2) ** 2;
        return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
    }

    /** A unit sent and the scene's words (the view's data-*) -> its line's status class and texts. Pure. */
    function lineOf(u, words) {
        const status = STATUSES.includes(u.status) ? u.status : 'available';
        const placed = typeof u.lat === 'number' && typeof u.lon === 'number' && Number.isFinite(words.lat)
            && Number.isFinite(words.lon);
        return {status: status, said: (words.statuses && words.statuses[status]) || status,
            km: placed ? words.km.replace('{km}', kmBetween(words.lat, words.lon, u.lat, u.lon).toFixed(1))
                : words.nokm};
    }

    /** A frame -> the units it carries folded in (a snapshot replaces them all) and drawn: now, in the socket's
     *  message task, unless a draw already ran since the last animation frame (then at the next one). */
    function take(msg) {
        if (msg.type === 'snapshot') {
            units.clear();
            for (const u of (msg.state && msg.state.units) || []) {
                units.set(u.unit, u);
            }
            if (msg.state) {
                delete msg.state.units;  // held here only: the page's merged state need not keep a second copy
            }
        } else if (msg.units && msg.units.length) {
            for (const u of msg.units) {
                units.delete(u.unit);  // re-inserted last: the oldest fall off first if ever over the cap
                units.set(u.unit, u);
            }
            while (units.size > MAX_UNITS) {
                units.delete(units.keys().next().value);
            }
        } else {
            return false;
        }
        request();
        return true;
    }

    /** Draw now if nothing was drawn since the last animation frame, else at the next animation frame: a frame's
     *  units reach the DOM in the task that brought them, not after a requestAnimationFrame that the page's other
     *  work (the map's and panels' Dash redraws, each a long task) holds back; frames that come faster than the
     *  animation frames are drawn together at the next one, so a burst costs one draw per frame rendered. */
    function request() {
        watchSlot();
        if (st.scheduled) {
            return;  // the next animation frame draws the latest
        }
        if (st.drawn) {
            st.scheduled = true;
        } else {
            draw(false);
            st.drawn = true;
        }
        nextFrame();
    }

    /** One animation frame callback at a time: it opens the next frame to a draw, draws what came since, and
     *  measures the maps again (a message task's draw used the last measure): drawn again if one moved. */
    function nextFrame() {
        if (st.framing) {
            return;
        }
        st.framing = true;
        const onFrame = () => {
            st.framing = false;
            st.drawn = false;
            if (st.scheduled || (typeof document !== 'undefined' && LAYERS.some((spec) => {
                const at = placeOf(spec, true);
                return at && at.changed;
            }))) {
                draw(true);
            }
        };
        if (root.requestAnimationFrame) {
            root.requestAnimationFrame(onFrame);
        } else {
            setTimeout(onFrame, 16);
        }
    }

    /** Draw at the next animation frame (a resize, the command view redrawn, a map not drawn yet). */
    function schedule() {
        watchSlot();
        st.scheduled = true;
        nextFrame();
    }

    /** A layer whose map is not drawn yet (the command view just arrived) is drawn again a little later. */
    function retry() {
        if (st.retryTimer === null && st.retries < RETRIES) {
            st.retries += 1;
            st.retryTimer = setTimeout(() => {
                st.retryTimer = null;
                schedule();
            }, RETRY_MS);
        }
    }

    /** The command view comes and goes, and its units with it, when Dash redraws the major-incident slot: draw
     *  after each redraw that adds or removes elements (not a countdown's text, not the layers' own markers). */
    function watchSlot() {
        const slot = typeof document !== 'undefined' && document.getElementById && document.getElementById('major-slot');
        if (!slot || slot === st.slot || typeof root.MutationObserver !== 'function') {
            return;
        }
        if (st.slotObserver) {
            st.slotObserver.disconnect();  // the page was drawn anew: its old slot is gone
        }
        st.slot = slot;
        st.slotObserver = new root.MutationObserver((records) => {
            if (records.some(redrawn)) {
                st.retries = 0;
                schedule();
            }
        });
        st.slotObserver.observe(slot, {childList: true, subtree: true});
    }

    function redrawn(r) {
        if (r.target.closest && r.target.closest('.unit-layer')) {
            return false;
        }
        const element = (n) => n.nodeType === 1;
        return Array.prototype.some.call(r.addedNodes || [], element)
            || Array.prototype.some.call(r.removedNodes || [], element);
    }

    function marker(svg) {
        const g = document.createElementNS(SVG_NS, 'g');
        const dot = document.createElementNS(SVG_NS, 'circle');
        const label = document.createElementNS(SVG_NS, 'text');
        label.setAttribute('text-anchor', 'middle');
        label.setAttribute('dy', '0.35em');
        // the count is this one text node's data, changed in place: a text node inserted anywhere in the page makes
        // Blink re-check the wall's html:has() / body:has() rules (wall.css, shell.css), a restyle of the whole page
        const text = document.createTextNode('');
        label.appendChild(text);
        g.appendChild(dot);
        g.appendChild(label);
        svg.appendChild(g);
        return {g: g, dot: dot, text: text, sig: null, key: null, cls: null, r: null};
    }

    /** Marks -> the pooled marker each is drawn with (in order). A cell and status keeps its marker from draw to
     *  draw (``slots``: key -> marker), so a cluster that moves rewrites only its place and count, not its class; a
     *  new one takes a marker let go of, one of its status first, else a new one. Markers left are let go of
     *  (``key`` null). Pure but for ``make``. */
    function assign(marks, pool, slots, make) {
        const out = new Array(marks.length);
        const keep = new Set();
        marks.forEach((m, i) => {
            const p = slots.get(m.key);
            if (p) {
                out[i] = p;
                keep.add(m.key);
            }
        });
        const free = {};  // status -> markers let go of
        for (const [key, p] of slots) {
            if (!keep.has(key)) {
                slots.delete(key);
                p.key = null;
            }
        }
        for (const p of pool) {
            if (p.key === null) {
                const status = p.cls === null ? '' : p.cls.split(' ')[1];
                (free[status] = free[status] || []).push(p);
            }
        }
        marks.forEach((m, i) => {
            if (out[i]) {
                return;
            }
            const same = free['u-' + m.status];
            const any = Object.values(free).find((list) => list.length);
            let p = (same && same.pop()) || (any && any.pop());
            if (!p) {
                p = make();
                pool.push(p);
            }
            p.key = m.key;
            slots.set(m.key, p);
            out[i] = p;
        });
        return out;
    }

    /** The units a layer shows: all, or those its page's list names (null: that list is not on the page). */
    function unitsFor(spec) {
        if (spec.only === null) {
            return units.values();
        }
        const out = [];
        for (const li of document.querySelectorAll(spec.only)) {
            const u = units.get(li.dataset.unit);
            if (u) {
                out.push(u);
            }
        }
        return out;
    }

    /** Where a layer's map is drawn: {layer, gd, geom, changed} (geom: the plot's box within the layer's parent
     *  and, for a clamped layer, the drawn map's frame), measured now when ``fresh`` or not yet measured for this
     *  plot, else as last measured; null: no such layer on the page; false: its map is not drawn yet. Measuring
     *  forces the page's style and layout, which is free in an animation frame (the rendering that follows needs
     *  them) but in a socket's message task would redo the page's pending restyle first: there the last one is used,
     *  and the animation frame after the draw measures again (and draws again if the map moved). */
    function placeOf(spec, fresh) {
        const layer = document.getElementById(spec.layer);
        if (!layer) {
            return null;
        }
        const gd = document.querySelector(spec.graph);
        if (!gd || !gd._fullLayout) {
            return false;
        }
        const plot = gd.querySelector('.main-svg');  // the plot's own box (the graph's div may be taller or 0 high)
        if (!plot) {
            return false;
        }
        const was = geoms.get(layer);
        if (!fresh && was && was.plot === plot) {
            return {layer: layer, gd: gd, geom: was, changed: false};
        }
        const box = plot.getBoundingClientRect();
        const parent = layer.offsetParent ? layer.offsetParent.getBoundingClientRect() : {left: 0, top: 0};
        // units held at the edge are held at the drawn map's (a geo subplot keeps its aspect inside the graph's box)
        let clamp = spec.clamp || false;
        const bg = clamp && gd.querySelector('g.geo g.bg rect');
        if (bg) {
            const r = bg.getBoundingClientRect();
            clamp = [r.left - box.left, r.top - box.top, r.right - box.left, r.bottom - box.top];
        }
        const geom = {plot: plot, x: Math.round(box.left - parent.left), y: Math.round(box.top - parent.top),
            w: Math.round(box.width), h: Math.round(box.height), clamp: clamp};
        geom.key = [geom.x, geom.y, geom.w, geom.h, String(clamp)].join(',');
        geoms.set(layer, geom);
        return {layer: layer, gd: gd, geom: geom, changed: !was || was.plot !== plot || was.key !== geom.key};
    }

    /** Draw one layer over its map now (``fresh``: measuring where the map is); false when its map is on the page
     *  but not drawn yet. */
    function drawLayer(spec, fresh) {
        const at = placeOf(spec, fresh);
        if (at === null) {
            return true;
        }
        if (at === false) {
            return false;
        }
        const {layer, gd, geom} = at;
        const {w, h, clamp} = geom;
        // Plotly's own projection of the geo subplot (px from the plot's top left: the map has no margins), which
        // fits the figure's ranges into the box; before it exists, the figure's view as figures.geo_view means it
        const sub = gd._fullLayout.geo && gd._fullLayout.geo._subplot;
        const project = sub && typeof sub.projection === 'function'
            ? (lon, lat) => sub.projection([lon, lat]) || [NaN, NaN]
            : viewOf(gd.layout && gd.layout.geo, w, h);
        if (!project) {
            return false;
        }
        let held = pools.get(layer);
        if (!held || held.svg.parentNode !== layer) {
            const svg = document.createElementNS(SVG_NS, 'svg');
            layer.appendChild(svg);
            held = {svg: svg, pool: [], place: null, slots: new Map()};
            pools.set(layer, held);
        }
        const {svg, pool, slots} = held;
        if (held.place !== geom.key) {  // the layer moves and sizes with its map only when that changed
            held.place = geom.key;
            layer.style.left = geom.x + 'px';
            layer.style.top = geom.y + 'px';
            svg.setAttribute('width', w);
            svg.setAttribute('height', h);
        }
        // a map hidden (the city map behind a command view) shows nothing: no unit is projected for it
        const marks = w > 0 && h > 0 ? cluster(unitsFor(spec), project, w, h, CELL_PX, clamp) : [];
        const placed = assign(marks, pool, slots, () => marker(svg));
        marks.forEach((m, i) => {
            const p = placed[i];
            const r = (m.n === 1 ? 4 : Math.min(16, 5 + 2.2 * Math.log2(m.n))).toFixed(1);
            const sig = [m.status, m.n, Math.round(m.x), Math.round(m.y), m.unit, m.pos, m.edge].join('|');
            if (p.sig === sig) {
                return;  // a slot is rewritten only when what it shows changed
            }
            p.sig = sig;
            // each attribute written only when it changed: a class or size written restyles the marker
            const cls = 'unit-mark u-' + m.status + (m.edge ? ' is-edge' : '');
            if (p.cls !== cls) {
                p.cls = cls;
                p.g.setAttribute('class', cls);
            }
            p.g.setAttribute('transform', 'translate(' + m.x.toFixed(1) + ',' + m.y.toFixed(1) + ')');
            p.g.removeAttribute('display');
            p.g.dataset.status = m.status;
            p.g.dataset.n = String(m.n);
            if (m.unit) {
                p.g.dataset.unit = m.unit;
                p.g.dataset.pos = m.pos;
            } else {
                delete p.g.dataset.unit;
                delete p.g.dataset.pos;
            }
            if (p.r !== r) {
                p.r = r;
                p.dot.setAttribute('r', r);
            }
            const count = m.n > 1 ? String(m.n) : '';
            if (p.text.data !== count) {
                p.text.data = count;
            }
        });
        for (const p of pool) {
            if (p.key === null && p.sig !== null) {
                p.sig = null;
                p.g.setAttribute('display', 'none');
                delete p.g.dataset.unit;
            }
        }
        layer.dataset.units = String(spec.only === null ? units.size : marks.reduce((n, m) => n + m.n, 0));
        return true;
    }

    /** The command view's lines of the units sent: each one's status and distance as its latest report says. */
    function drawLines() {
        const view = document.getElementById('major-view');
        if (!view) {
            return;
        }
        const lines = view.querySelectorAll('li.major-unit[data-unit]');
        if (!lines.length) {
            return;
        }
        let statuses = {};
        try {
            statuses = JSON.parse(view.dataset.statuses || '{}');
        } catch (err) {
            statuses = {};
        }
        const words = {lat: parseFloat(view.dataset.lat), lon: parseFloat(view.dataset.lon), statuses: statuses,
            km: view.dataset.km || '{km} km', nokm: view.dataset.nokm || ''};
        for (const li of lines) {
            const u = units.get(li.dataset.unit);
            if (!u) {
                continue;
            }
            const line = lineOf(u, words);
            const cls = 'major-unit u-' + line.status;
            if (li.className !== cls) {
                li.className = cls;
                const dot = li.querySelector('.dot');
                if (dot) {
                    dot.className = 'dot u-' + line.status;
                }
            }
            for (const [sel, text] of [['.unit-status', line.said], ['.unit-km', line.km]]) {
                const el = li.querySelector(sel);
                if (el && el.textContent !== text) {
                    el.textContent = text;
                }
            }
        }
    }

    /** Draw the units over every map of the page now, and the command view's lines; ``fresh`` (the default):
     *  measuring where each map is, false: where it was last measured (placeOf). */
    function draw(fresh) {
        st.scheduled = false;
        if (typeof document === 'undefined') {
            return;
        }
        let ready = true;
        for (const spec of LAYERS) {
            ready = drawLayer(spec, fresh !== false) && ready;
        }
        drawLines();
        if (!ready) {
            retry();
        }
    }

    // The map's size and view change with the window (live_figures.js refits it): draw again after.
    if (typeof root.addEventListener === 'function') {
        root.addEventListener('resize', () => setTimeout(schedule, 300));
    }

    const api = {take: take, draw: draw, cluster: cluster, assign: assign, viewOf: viewOf, lineOf: lineOf,
        kmBetween: kmBetween,
        units: units, CELL_PX: CELL_PX, LAYERS: LAYERS};
    dc.panoramaUnits = api;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = api;
    }
})(typeof window !== 'undefined' ? window : globalThis);
