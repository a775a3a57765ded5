/* Live pages: the response units on the city map (SPEC section 11), drawn straight from the socket's frames into
 * an SVG layer over the map (#unit-layer, rendered empty by the server; no callback writes it), not through a Dash
 * store and a Plotly redraw: 2,000 units reporting every 5 s would redraw the map's figure many times a second.
 *
 * At city scale units are aggregated: the map is cut into cells of CELL_PX and each cell shows one marker per
 * status present (coloured by status, assets/units.css), at the mean place of its units, its size and its number
 * saying how many. A marker that stands for a single unit names it (data-unit, data-status, data-pos: what tests
 * and bench/units.py look for). Markers are pooled and reused, never rebuilt: the layer's DOM is bounded by the
 * number of cells on the screen, however long the page runs and however many reports arrive. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const SVG_NS = 'http://www.w3.org/2000/svg';
    const CELL_PX = 26;
    const STATUSES = ['available', 'en_route', 'on_scene', 'off_duty'];  // dashboard.core.units.STATUSES
    const MAX_UNITS = 10000;  // fleet.MAX_UNITS of the gateway: beyond any city's fleet

    const units = new Map();  // unit id -> its latest view (messages.UnitView), insertion order = recency
    const st = {scheduled: false, pool: [], drawnKey: null};

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

    /** Units, projection, size -> the markers: one per cell and status, {status, n, x, y, unit?, pos?}. Pure. */
    function cluster(list, project, w, h, cell) {
        const cells = new Map();
        for (const u of list) {
            if (typeof u.lat !== 'number' || typeof u.lon !== 'number') {
                continue;
            }
            const [x, y] = project(u.lon, u.lat);
            if (!(x >= 0 && x <= w && y >= 0 && y <= h)) {
                continue;
            }
            const status = STATUSES.includes(u.status) ? u.status : 'available';
            const key = Math.floor(x / cell) + ',' + Math.floor(y / cell) + ',' + status;
            const c = cells.get(key);
            if (c) {
                c.n += 1;
                c.sx += x;
                c.sy += y;
            } else {
                cells.set(key, {status: status, n: 1, sx: x, sy: y, unit: u.unit,
                    pos: u.lat.toFixed(5) + ',' + u.lon.toFixed(5)});
            }
        }
        const out = [];
        for (const c of cells.values()) {
            const one = c.n === 1;
            // statuses of one cell side by side, so an en-route unit is not hidden under available ones
            const shift = (STATUSES.indexOf(c.status) - 1.5) * 5;
            out.push({status: c.status, n: c.n, x: c.sx / c.n + (one ? 0 : shift), y: c.sy / c.n,
                unit: one ? c.unit : null, pos: one ? c.pos : null});
        }
        return out;
    }

    /** A frame -> the units it carries folded in (a snapshot replaces them all); a redraw is scheduled. */
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
        schedule();
        return true;
    }

    function schedule() {
        if (!st.scheduled) {
            st.scheduled = true;
            if (root.requestAnimationFrame) {
                root.requestAnimationFrame(draw);
            } else {
                setTimeout(draw, 16);
            }
        }
    }

    function marker(svg) {
        const g = document.createElementNS(SVG_NS, 'g');
        const dot = document.createElementNS(SVG_NS, 'circle');
        const label = document.createElementNS(SVG_NS, 'text');
        label.setAttribute('text-anchor', 'middle');
        label.setAttribute('dy', '0.35em');
        g.appendChild(dot);
        g.appendChild(label);
        svg.appendChild(g);
        return {g: g, dot: dot, label: label, sig: null};
    }

    /** Draw the units over the map now: the layer placed on the map's plot, the pool's markers rewritten. */
    function draw() {
        st.scheduled = false;
        const layer = document.getElementById('unit-layer');
        const gd = layer && document.querySelector('#city-map .js-plotly-plot');
        if (!gd || !gd._fullLayout) {
            return;
        }
        const plot = gd.querySelector('.main-svg');  // the plot's own box (the graph's div may be taller or 0 high)
        if (!plot) {
            return;
        }
        const box = plot.getBoundingClientRect();
        const parent = layer.offsetParent ? layer.offsetParent.getBoundingClientRect() : {left: 0, top: 0};
        const w = Math.round(box.width);
        const h = Math.round(box.height);
        // Plotly's own projection of the geo subplot (px from the plot's top left: the map has no margins), which
        // fits the figure's ranges into the box; before it exists, the figure's view as figures.geo_view means it
        const sub = gd._fullLayout.geo && gd._fullLayout.geo._subplot;
        const project = sub && typeof sub.projection === 'function'
            ? (lon, lat) => sub.projection([lon, lat]) || [NaN, NaN]
            : viewOf(gd.layout && gd.layout.geo, w, h);
        if (!project) {
            return;
        }
        let svg = layer.firstElementChild;
        if (!svg) {
            svg = document.createElementNS(SVG_NS, 'svg');
            layer.appendChild(svg);
        }
        layer.style.left = Math.round(box.left - parent.left) + 'px';
        layer.style.top = Math.round(box.top - parent.top) + 'px';
        svg.setAttribute('width', w);
        svg.setAttribute('height', h);
        const marks = cluster(units.values(), project, w, h, CELL_PX);
        while (st.pool.length < marks.length) {
            st.pool.push(marker(svg));
        }
        marks.forEach((m, i) => {
            const p = st.pool[i];
            const r = m.n === 1 ? 4 : Math.min(16, 5 + 2.2 * Math.log2(m.n));
            const sig = [m.status, m.n, Math.round(m.x), Math.round(m.y), m.unit, m.pos].join('|');
            if (p.sig === sig) {
                return;  // a slot is rewritten only when what it shows changed
            }
            p.sig = sig;
            p.g.setAttribute('class', 'unit-mark u-' + m.status);
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
            p.dot.setAttribute('r', r.toFixed(1));
            p.label.textContent = m.n > 1 ? String(m.n) : '';
        });
        for (let i = marks.length; i < st.pool.length; i++) {
            const p = st.pool[i];
            if (p.sig !== null) {
                p.sig = null;
                p.g.setAttribute('display', 'none');
                delete p.g.dataset.unit;
            }
        }
        layer.dataset.units = String(units.size);
    }

    // The map's size and view change with the window (live_figures.js refits it): draw again after.
    if (typeof root.addEventListener === 'function') {
        root.addEventListener('resize', () => setTimeout(schedule, 300));
    }

    const api = {take: take, draw: draw, cluster: cluster, viewOf: viewOf, units: units, CELL_PX: CELL_PX};
    dc.panoramaUnits = api;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = api;
    }
})(typeof window !== 'undefined' ? window : globalThis);
