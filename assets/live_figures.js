/* Live pages: patch the map and the trend (dash_clientside.Patch), never rebuild them.
 * Figure structure comes from dashboard/figures.py: map data[0] = districts (border arrays mark the
 * spotlight); trend data[i] = domain i. The map's labels are HTML over it (#map-labels, layouts/common.py
 * map_label_layer), written here straight into the DOM: a label in the figure made every redraw of the colours
 * lay out all the labels' text again, the live map's costliest part (docs/performance.md, issue 15). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const TILE_PX = 512;  // keep in step with dashboard/figures.py
    const MAP_PAD = 0.04;

    const U = () => dc.panoramaUtil;
    const last = {map: null, mapAt: 0, trend: null, trendAt: 0, trendX: {key: null, x: null}};

    /** True when a figure drawn at `at` may not be redrawn yet for new values (config.figure_ms; the
     *  next store write after that asks again). */
    function tooSoon(at, config) {
        return Date.now() - at < (config.figure_ms || 0);
    }

    /* The figures' callbacks run when their data is written, and again only when asked: values that came too soon
     * after the last redraw (config.figure_ms) are drawn when the limit ends, a graph whose box changed is refitted
     * (ResizeObserver). The ask is a write of the live-redraw store (layouts/common.py live_components). The page's
     * one-second tick ran both callbacks every second instead, nearly always to find nothing to draw, and each run is
     * several passes of Dash over every component of the page (docs/performance.md, issue 15). */
    const RESIZE_MS = 100;  // a window dragged to a new size is refitted once it rests
    const due = {timer: null, at: 0, seen: typeof WeakSet === 'function' ? new WeakSet() : null};

    /** Run the figures' callbacks again in `ms` (one timer for all of them: the earliest asked wins). */
    function redrawIn(ms) {
        const wait = Math.max(0, ms);
        if (due.timer !== null && due.at <= Date.now() + wait) {
            return;
        }
        if (due.timer !== null) {
            root.clearTimeout(due.timer);
        }
        due.at = Date.now() + wait;
        due.timer = root.setTimeout(() => {
            due.timer = null;
            // only where the page still has its figures and their store (Dash throws on a store it has not):
            // the page may have been left for another since (a drill-down, a sign-out)
            const live = document.getElementById('live-indicator');
            if (live && (document.getElementById('city-map') || document.getElementById('trend-chart'))) {
                dc.set_props('live-redraw', {data: Date.now()});
            }
        }, wait);
    }

    /** Refit `el`'s figure whenever its box changes size (once per element: a page drawn anew brings new ones). */
    function watchSize(el) {
        if (!el || !due.seen || due.seen.has(el) || typeof root.ResizeObserver !== 'function') {
            return;
        }
        due.seen.add(el);
        new root.ResizeObserver(() => redrawIn(RESIZE_MS)).observe(el);
    }

    /** Type scale of the page: the wall is designed at 1920 px wide and grows with the screen. */
    function scale(config) {
        return config.page === 'wall' ? Math.max(0.6, Math.min(4, root.innerWidth / 1920)) : 1;
    }

    function mx(lon) {
        return (lon + 180) / 360;
    }

    function my(lat) {
        const s = Math.sin(lat * Math.PI / 180);
        return 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
    }

    /** Mirror of figures.fit_view. */
    function fitView(box, w, h) {
        const [west, south, east, north] = box;
        const dx = mx(east) - mx(west);
        const dy = my(south) - my(north);
        const zoom = Math.log2(Math.min(w * (1 - 2 * MAP_PAD) / (TILE_PX * dx), h * (1 - 2 * MAP_PAD) / (TILE_PX * dy)));
        const cx = (mx(west) + mx(east)) / 2;
        const cy = (my(north) + my(south)) / 2;
        const lat = Math.atan(Math.sinh(Math.PI * (1 - 2 * cy))) * 180 / Math.PI;
        return {center: {lon: cx * 360 - 180, lat: lat}, zoom: zoom};
    }

    function lonOf(x) {
        return x * 360 - 180;
    }

    function latOf(y) {
        return Math.atan(Math.sinh(Math.PI * (1 - 2 * y))) * 180 / Math.PI;
    }

    /** Mirror of figures.geo_view's centre and ranges: the SVG map's geo subplot showing `view` on w x h px. */
    function geoView(view, w, h) {
        const k = TILE_PX * Math.pow(2, view.zoom);
        const cx = mx(view.center.lon);
        const cy = my(view.center.lat);
        return {center: view.center, lon: [lonOf(cx - w / 2 / k), lonOf(cx + w / 2 / k)],
            lat: [latOf(cy + h / 2 / k), latOf(cy - h / 2 / k)]};
    }

    /** Mirror of figures.project: paper fractions, y from the bottom. */
    function project(lon, lat, view, w, h) {
        const k = TILE_PX * Math.pow(2, view.zoom);
        const px = (mx(lon) - mx(view.center.lon)) * k + w / 2;
        const py = (my(lat) - my(view.center.lat)) * k + h / 2;
        return [px / w, 1 - py / h];
    }

    /** The labels' layer over the map `gd` (w x h px, showing `fit`): laid over the graph's box, each label at
     *  its district's centre, the type `px` (the labels' offsets are in em: they grow with it). */
    function placeLabels(layer, gd, fit, w, h, px, config) {
        const parent = layer.offsetParent ? layer.offsetParent.getBoundingClientRect() : {left: 0, top: 0};
        const box = gd.getBoundingClientRect();
        layer.style.left = Math.round(box.left - parent.left) + 'px';
        layer.style.top = Math.round(box.top - parent.top) + 'px';
        layer.style.width = w + 'px';
        layer.style.height = h + 'px';
        layer.style.fontSize = px + 'px';
        for (const el of Array.from(layer.children)) {
            const d = config.districts[el.dataset.code];
            if (!d) {
                continue;
            }
            const [x, y] = project(d.lon, d.lat, fit, w, h);
            el.style.left = (x * w).toFixed(1) + 'px';
            el.style.top = ((1 - y) * h).toFixed(1) + 'px';
        }
        layer.classList.add('is-placed');
    }

    /** Each label's number, as text (written only where it changed: a text node, no layout of the others). */
    function writeLabels(layer, values) {
        for (const el of Array.from(layer.children)) {
            const n = el.lastChild;
            const text = el.dataset.code in values ? String(values[el.dataset.code]) : null;
            if (n && text !== null && n.textContent !== text) {
                n.textContent = text;
            }
        }
    }

    /** Live state, view, redraw asked -> a patch of the map (values, outline; refit when resized), its labels'
     *  numbers written at once (placed on a refit). Values that came too soon after the last redraw are drawn when
     *  the limit ends (redrawIn), a resized map is refitted (watchSize). */
    ns.cityMap = function (store, view, _asked, fig, config) {
        const u = U();
        const fired = u.triggered();
        const meta = (fig && fig.layout && fig.layout.meta) || {};
        const gd = document.getElementById('city-map');
        watchSize(gd);
        const w = gd ? gd.clientWidth : 0;
        const h = gd ? gd.clientHeight : 0;
        const sizeKey = w > 0 && h > 0 ? w + 'x' + h : null;
        const resized = sizeKey !== null && sizeKey !== meta.size;
        const measure = (view && view.measure) || 'all';
        const win = u.windowOf(store, view);
        const entries = (win && win.districts) || {};
        const z = config.codes.map((c) => u.measure(entries[c], measure, config.domains));
        const risk = measure === 'risk';
        const hl = view && view.highlight;
        // Nothing to redraw when the values, the measure, the spotlight and the size are what the map shows.
        // Risk is compared as its labels show it (whole points of a 0-100 scale; a tenth changes no colour one
        // can see): a map redraw is the page's costliest task, and risk moves slowly.
        // No baseline yet (state.py's risk_basis 'population'): the risk's title says so.
        const basis = risk && win && win.risk_basis === 'population' ? 'population' : 'baseline';
        const shown = risk ? z.map(Math.round) : z;
        const layer = document.getElementById('map-labels');
        if (layer) {  // the numbers at once, whatever the redraw limit: text alone costs next to nothing
            const values = {};
            config.codes.forEach((c, i) => {
                values[c] = shown[i];
            });
            writeLabels(layer, values);
        }
        const key = JSON.stringify([shown, measure, hl, basis]);
        const same = meta.measure === measure && meta.highlight === hl && (meta.basis || 'baseline') === basis;
        if (!resized && fired.length && same && (key === last.map || tooSoon(last.mapAt, config))) {
            if (key !== last.map) {  // held back: drawn when the limit ends
                redrawIn(last.mapAt + (config.figure_ms || 0) - Date.now());
            }
            return dc.no_update;
        }
        last.map = key;
        last.mapAt = Date.now();
        const p = new dc.Patch();
        p.assign(['data', 0, 'z'], z);
        p.assign(['data', 0, 'zmin'], 0);
        p.assign(['data', 0, 'zmax'], risk ? 100 : Math.max(1, ...z));
        if (meta.measure !== measure || (meta.basis || 'baseline') !== basis) {
            const riskLabel = basis === 'population' ? config.labels.m_risk_population : config.labels.m_risk;
            const label = risk ? riskLabel : measure === 'all' ? config.labels.m_all : config.labels[measure];
            p.assign(['data', 0, 'colorscale'], risk ? config.scales.risk : config.scales.counts);
            p.assign(['data', 0, 'colorbar', 'title', 'text'], label);
            p.assign(['data', 0, 'hovertemplate'], '%{customdata}<br>' + label + ': %{z}<extra></extra>');
            p.assign(['layout', 'meta', 'measure'], measure);
            p.assign(['layout', 'meta', 'basis'], basis);
        }
        if (hl !== meta.highlight) {
            p.assign(['data', 0, 'marker', 'line', 'color'], config.codes.map((c) => (c === hl ? config.outline.accent : config.outline.line)));
            p.assign(['data', 0, 'marker', 'line', 'width'], config.codes.map((c) => (c === hl ? config.outline.highlight : config.outline.width)));
            p.assign(['layout', 'meta', 'highlight'], hl || null);
        }
        if (resized && meta.bounds) {
            const k = scale(config);
            const fit = fitView(meta.bounds, w, h);
            const geo = geoView(fit, w, h);
            p.assign(['layout', 'geo', 'center'], geo.center);
            p.assign(['layout', 'geo', 'lonaxis', 'range'], geo.lon);
            p.assign(['layout', 'geo', 'lataxis', 'range'], geo.lat);
            p.assign(['layout', 'font', 'size'], Math.round(12 * k));
            if (layer) {
                placeLabels(layer, gd, fit, w, h, Math.round((config.page === 'wall' ? 15 : 12) * k), config);
            }
            // every colour bar shown: the districts' (data[0]) or, on a district's wall, its streets' (the last
            // trace, figures/district_map.py add_street_areas, where data[0] shows none)
            ((fig && fig.data) || []).forEach((tr, i) => {
                if (tr && tr.colorbar && tr.showscale !== false) {
                    p.assign(['data', i, 'colorbar', 'thickness'], Math.round(10 * k));
                }
            });
            p.assign(['layout', 'meta', 'size'], sizeKey);
        }
        return p.build();
    };

    /** True when the figure's traces show x and these y values, trace i for series i. */
    function sameLines(fig, x, ys) {
        const data = (fig && fig.data) || [];
        return data.length === ys.length && ys.every((y, i) => data[i] && JSON.stringify(data[i].y) === JSON.stringify(y)
            && JSON.stringify(data[i].x) === JSON.stringify(x));
    }

    /** Live state, redraw asked -> a patch of the trend lines' x and y (the figure keeps its shape); values that
     *  came too soon after the last redraw are drawn when the limit ends, the type resized with the wall's box. */
    ns.trend = function (store, _asked, config, fig) {
        const u = U();
        watchSize(document.getElementById('trend-chart'));
        const tr = store && store.state && store.state.trend;
        if (!tr || !tr.series) {
            return dc.no_update;
        }
        const n = (tr.series[config.domains[0]] || []).length;
        const size = Math.round(12 * scale(config));
        const key = JSON.stringify([tr.start, tr.step_ms, config.domains.map((d) => tr.series[d] || [])]);
        const sized = fig && fig.layout && fig.layout.font && fig.layout.font.size === size;
        if (sized && u.triggered().length && (key === last.trend || tooSoon(last.trendAt, config))) {
            if (key !== last.trend) {
                redrawIn(last.trendAt + (config.figure_ms || 0) - Date.now());
            }
            return dc.no_update;
        }
        last.trend = key;
        last.trendAt = Date.now();
        const xKey = tr.start + '|' + tr.step_ms + '|' + n + '|' + config.tz;
        if (last.trendX.key !== xKey) {  // 60 formatted stamps: only when the axis moved
            const xs = [];
            for (let i = 0; i < n; i++) {
                xs.push(u.stamp(tr.start + i * tr.step_ms, config.tz).slice(0, 16));
            }
            last.trendX = {key: xKey, x: xs};
        }
        const x = last.trendX.x;
        // The page's first call: the figure the server drew has these very lines (a redraw of the same lines was
        // one of the page's long tasks as it loads), unless its minute passed between the page and this call.
        if (sized && !u.triggered().length && sameLines(fig, x, config.domains.map((d) => tr.series[d] || []))) {
            return dc.no_update;
        }
        const p = new dc.Patch();
        config.domains.forEach((d, i) => {
            p.assign(['data', i, 'x'], x);
            p.assign(['data', i, 'y'], tr.series[d] || []);
        });
        if (!sized) {
            p.assign(['layout', 'font', 'size'], size);
        }
        return p.build();
    };

    /** Spotlight data (one per spotlight), view -> a patch of each spotlight trend's lines and type size; no
     *  update until the data is the spotlit district's (the server reads it when the spotlight moves). */
    ns.spotTrend = function (datas, view, config) {
        const u = U();
        return (datas || []).map((data) => {
            const tr = data && data.trend;
            if (!tr || !tr.series || !view || data.code !== view.highlight) {
                return dc.no_update;
            }
            const n = (tr.series[config.domains[0]] || []).length;
            const x = [];
            for (let i = 0; i < n; i++) {
                x.push(u.stamp(tr.start + i * tr.step_ms, config.tz).slice(0, 16));
            }
            const p = new dc.Patch();
            config.domains.forEach((d, i) => {
                p.assign(['data', i, 'x'], x);
                p.assign(['data', i, 'y'], tr.series[d] || []);
            });
            p.assign(['layout', 'font', 'size'], Math.round(12 * scale(config)));
            return p.build();
        });
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {tooSoon: tooSoon, redrawIn: redrawIn, due: due, scale: scale, mx: mx, my: my, fitView: fitView, geoView: geoView, project: project,
            cityMap: ns.cityMap, placeLabels: placeLabels, writeLabels: writeLabels, sameLines: sameLines,
            trend: ns.trend, spotTrend: ns.spotTrend, last: last};
    }
})(typeof window !== 'undefined' ? window : globalThis);
