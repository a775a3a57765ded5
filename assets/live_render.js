/* Live pages: render the stored live state into tiles and lists (figures: live_figures.js), and draw the
 * event ticker. Lists are rebuilt from capped data with stable keys, so the DOM stays the same size for days. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const TOP_N = 5;

    const U = () => dc.panoramaUtil;
    const last = {};  // renderer -> key of what it last returned (the page is redrawn only when that changes)

    /** True when `name` would return the same as last time; its initial call always renders. */
    function unchanged(name, key) {
        const initial = !U().triggered().length;
        if (!initial && last[name] === key) {
            return true;
        }
        last[name] = key;
        return false;
    }

    function deltaOf(cur, prev) {
        const diff = cur - prev;
        if (diff === 0) {
            return ['— 0', 'kpi-delta flat'];
        }
        const pct = prev ? ' · ' + (diff > 0 ? '+' : '−') + Math.round(Math.abs(diff) / prev * 100) + '%' : '';
        return [(diff > 0 ? '▲ ' : '▼ ') + Math.abs(diff) + pct, 'kpi-delta ' + (diff > 0 ? 'up' : 'down')];
    }

    /** Live state, view -> each domain's tile: its count (a plain integer), its change text and class, drawn now
     *  straight into #kpi-<domain> and #kpi-<domain>-delta (the layout's tiles: layouts/common.py kpi_tile), a text
     *  or class only where it changed; nothing through Dash (its outputs are the tiles it draws). Through Dash,
     *  each tile's text was a `children` written, and each one a pass over every component of the page: six to
     *  eight of them a second on a busy city (docs/performance.md, issue 15). */
    ns.kpis = function (store, view, config) {
        const w = U().windowOf(store, view);
        for (const d of config.domains) {
            let shown = ['–', '', 'kpi-delta'];
            if (w) {
                const cur = (w.totals || {})[d] || 0;
                shown = [String(cur)].concat(deltaOf(cur, (w.previous || {})[d] || 0));
            }
            const count = document.getElementById('kpi-' + d);
            const delta = document.getElementById('kpi-' + d + '-delta');
            if (count) {
                put(count, shown[0], null);
            }
            if (delta) {
                put(delta, shown[1], shown[2]);
            }
        }
        return config.domains.concat(config.domains, config.domains).map(() => dc.no_update);
    };

    /** Set an element's text and class only where they changed (each write would be a style and layout pass). */
    function put(el, text, className) {
        if (text !== null && el.textContent !== text) {
            el.textContent = text;  // text, never HTML
        }
        if (className && el.className !== className) {
            el.className = className;
        }
    }

    /* The ticker is drawn straight into the DOM from the socket's frame handler (live_conn.js), not through a
     * Dash store and React: that path waited for the next store flush (<= 250 ms) and a React pass, and was
     * most of the publish-to-screen time. #event-ticker is rendered by the server with the rows it knew (the
     * same parts as rowParts: layouts/common.py live_ticker_rows) and no callback writes its children, so
     * React, which drew those rows once, never touches them again. Rows are plain elements whose text is set with
     * textContent (an event's title is never parsed as HTML), at most TICKER_ROWS: the list stays the same
     * size however long the page runs.
     *
     * Rows are slots: the first row always shows the newest event, and a new event rewrites the rows' text
     * rather than inserting a row above the others. Inserting moved every row below it, and each move is a
     * layout shift (the browser's measure of a page jumping under the reader's eyes: 0.27-0.42 of CLS on /,
     * bench.lighthouse); text rewritten in place moves nothing. A slot is rewritten only when what it shows
     * changed. */
    const TICKER_ROWS = 30;
    const drawn = new WeakMap();  // ticker element -> key of the rows it shows (freed with the element)
    const shows = new WeakMap();  // row -> the event (key and content) it shows

    function rowSig(e, config) {
        return [config.lang, e.ts, e.severity, e.district, e.street, e.kind, e.title].join('\u0001');
    }

    function span(className, text) {
        const el = document.createElement('span');
        el.className = className;
        el.textContent = text;
        return el;
    }

    /** An event's street (by name or code) as the page's language names it: its pinyin name in English. Events
     * carry the street as the publisher sent it; a street the city pack does not know is shown as it came. */
    function streetName(e, config) {
        if (!e.street) {
            return '';
        }
        const names = (config.streets || {})[e.district];
        return (names && Object.prototype.hasOwnProperty.call(names, e.street)) ? names[e.street] : e.street;
    }

    /** An event -> its row's parts: [className, text] of each span, in order. */
    function rowParts(e, config) {
        const d = config.districts[e.district];
        const name = d ? d.name : e.district;
        const wall = config.page === 'wall';
        const street = streetName(e, config);
        const parts = [['ticker-time', U().timeOfDay(e.ts, config.tz)]];
        if (!wall) {  // the wall hides the domain badge: the row's colour says it
            parts.push(['ticker-dom', config.labels[e.domain] || e.domain]);
        }
        // a district wall's rows are all its district's: the place they name is the street
        const place = wall && config.district ? (street || name) : wall || !street ? name : name + ' \u00b7 ' + street;
        parts.push(['ticker-place', place]);
        parts.push(['ticker-title', e.title || config.kinds[e.kind] || e.kind]);
        return parts;
    }

    /* A row's spans are kept and their text rewritten, not rebuilt: a new element is a new candidate for the
     * page's largest paint (Chromium's LCP records each text block once), and a ticker title rebuilt seconds
     * after load was the panorama's LCP; rewriting also spares the browser elements it must create and lay out. */
    function fillRow(li, e, key, config) {
        const parts = rowParts(e, config);
        const cls = 'ticker-item sev-' + e.severity + ' dom-' + e.domain;
        if (li.className !== cls) {
            li.className = cls;
        }
        li.dataset.key = key;
        const spans = li.children;
        const same = spans.length === parts.length && parts.every(([c], i) => spans[i].className === c);
        if (!same) {
            li.textContent = '';
            parts.forEach(([c, text]) => li.appendChild(span(c, text)));
            return li;
        }
        parts.forEach(([, text], i) => {
            if (spans[i].textContent !== text) {
                spans[i].textContent = text;  // text, never HTML
            }
        });
        return li;
    }

    /** Events (newest first), config -> #event-ticker's rows, drawn now; false when there is no ticker. */
    function drawTicker(events, config) {
        const el = document.getElementById('event-ticker');
        if (!el || !config) {
            return false;
        }
        // Newest first by event time; events that arrived together keep their arrival order.
        const rows = (events || []).slice(0, TICKER_ROWS).map((e, i) => [e, i])
            .sort((a, b) => (b[0].ts - a[0].ts) || (a[1] - b[1])).map((pair) => pair[0]);
        const keys = rows.map((e) => e.domain + ':' + e.id);
        const sigs = rows.map((e, i) => keys[i] + '\u0002' + rowSig(e, config));
        const key = sigs.join('\u0003');
        if (drawn.get(el) === key) {
            return true;
        }
        drawn.set(el, key);
        rows.forEach((e, i) => {
            let li = el.children[i];
            if (!li || li.tagName !== 'LI') {
                li = el.insertBefore(document.createElement('li'), li || null);
            }
            if (shows.get(li) !== sigs[i]) {
                shows.set(li, sigs[i]);
                fillRow(li, e, keys[i], config);
            }
        });
        while (el.children.length > rows.length) {  // fewer events than rows, and anything else in the list
            el.children[el.children.length - 1].remove();
        }
        return true;
    }

    dc.panoramaTicker = {draw: drawTicker, rows: TICKER_ROWS};

    /* The clock and the feeds' ages change every second. Drawn by Dash callbacks on the page's tick, each was an
     * output written every second, and every output Dash writes is a pass over every component of the page
     * (react-redux's subscribers: 3-5 s of main thread in 20 s of /, docs/performance.md issue 15). They are
     * written here straight into the DOM, as the ticker is, by a timer of the page's own that rewrites a text or a
     * class only where it changed. #clock and #feed-status are rendered empty and no callback writes them: the
     * page's configuration and live state reach the timer from callbacks that run anyway (clockStart on the
     * configuration, live_conn.js status on the live state), so React, which never drew their content, never
     * touches it. */
    const every = {config: null, store: null, timer: null};
    const SECOND_MS = 1000;

    /** Live state, config, now -> #feed-status's rows, drawn now: each domain's freshness, a silent feed 'stale'. */
    function drawFeeds(store, config, now) {
        const el = document.getElementById('feed-status');
        if (!el || !config) {
            return false;
        }
        const u = U();
        const L = config.labels;
        u.feedsNow(store, config, now).forEach((f, i) => {
            let li = el.children[i];
            if (!li || li.dataset.domain !== f.domain) {
                li = el.insertBefore(document.createElement('li'), li || null);
                li.dataset.domain = f.domain;
                ['feed-dot', 'feed-name', 'feed-rate', 'feed-state'].forEach((c) => li.appendChild(span(c, '')));
            }
            const age = u.ago(f.age, L);
            const [, name, rate, state] = li.children;
            // before any live state the feed is unknown: neither fresh nor stale, no age (u.feedsNow)
            put(li, null, 'feed ' + (f.stale ? 'stale' : (f.known ? 'fresh' : 'unknown')));
            put(name, L[f.domain], null);
            put(rate, f.known ? u.fmt(L.per_min, {n: Math.round(f.rate * 10) / 10}) : '', null);
            put(state, f.known ? (f.stale ? 'stale · ' + age : age) : '—', null);
        });
        while (el.children.length > config.domains.length) {
            el.children[el.children.length - 1].remove();
        }
        return true;
    }

    /** Config -> #clock's text, drawn now (the replayed time on a replayed page: live_conn.js clock). */
    function drawClock(config) {
        const el = document.getElementById('clock');
        if (el && config && ns.clock) {
            put(el, ns.clock(null, config), null);
        }
    }

    function everySecond() {
        drawClock(every.config);
        drawFeeds(every.store, every.config, Date.now());
    }

    /** Start the page's one-second timer (once per page load: a page Dash draws anew keeps it). */
    function keepTime() {
        if (every.timer === null && typeof root.setInterval === 'function') {
            every.timer = root.setInterval(everySecond, SECOND_MS);
        }
    }

    /** Config -> the clock drawn now and every second after; writes nothing through Dash. */
    ns.clockStart = function (config) {
        every.config = config;
        drawClock(config);
        keepTime();
        return dc.no_update;
    };

    /** Live state, config -> the feeds drawn now with it and counted on every second after. Called by the status
     *  callback (live_conn.js), which runs on every write of the live state already: a callback of the feeds' own
     *  was a fifth of the page's callback runs (each one several passes of Dash over the page). */
    function takeFeeds(store, config) {
        every.store = store;
        every.config = config;
        drawFeeds(store, config, Date.now());
        keepTime();
    }

    dc.panoramaFeeds = {take: takeFeeds};

    const RISK_PARTS = ['risk-rank', 'risk-name', 'risk-bar', 'risk-score', 'risk-count'];

    /** Rows -> #risk-top's items, kept from one draw to the next: a text, or a bar's width, rewritten only where
     *  it changed. */
    function drawRisk(el, rows, config) {
        rows.forEach((r, i) => {
            let li = el.children[i];
            if (!li) {
                li = el.appendChild(document.createElement('li'));
                li.className = 'risk-item';
                RISK_PARTS.forEach((c) => li.appendChild(span(c, '')));
                li.children[2].appendChild(span('risk-fill', ''));
            }
            const [rank, name, bar, score, count] = li.children;
            li.dataset.code = r.code;
            put(rank, String(i + 1), null);
            put(name, config.districts[r.code].name, null);
            const width = Math.max(2, Math.min(100, r.risk)) + '%';
            if (bar.firstElementChild.style.width !== width) {
                bar.firstElementChild.style.width = width;
            }
            put(score, r.risk.toFixed(1), null);
            put(count, r.n + ' ' + config.labels.events, null);
        });
        while (el.children.length > rows.length) {
            el.children[el.children.length - 1].remove();
        }
    }

    /** Live state, view -> the districts at highest risk, with their score and event count, drawn now into
     *  #risk-top (rendered empty; no callback writes its children); nothing through Dash. Through Dash the list was
     *  new components on every write, and each new component is a dispatch of Dash's (a pass over the page): some
     *  thirty a write, the most of any part of the page (docs/performance.md, issue 15). */
    ns.riskTop = function (store, view, config) {
        const u = U();
        const win = u.windowOf(store, view);
        const el = document.getElementById('risk-top');
        if (!el) {
            return dc.no_update;
        }
        const rows = win ? config.codes.map((c) => ({code: c, risk: (win.districts[c] || {}).risk || 0,
            n: u.measure(win.districts[c], 'all', config.domains)})) : [];
        rows.sort((a, b) => b.risk - a.risk || b.n - a.n);
        drawRisk(el, rows.slice(0, TOP_N), config);
        return dc.no_update;
    };

    /** Window and measure selectors -> view. */
    ns.viewControls = function (windowName, measure, view) {
        return Object.assign({}, view, {window: windowName, measure: measure});
    };

    /** A district wall's streets as its refresh last sent them (layouts/wall.py street_data), or null. */
    function streetData(datas) {
        return (datas && datas[0]) || null;
    }

    /** Wall timer (, a district wall's streets) -> the next district, or on a district wall the next of its busiest
     *  streets, in the spotlight. */
    ns.cycle = function (_n, view, config, datas) {
        // a district centre's wall goes round its busiest streets as they now stand (config.cycle: as first drawn)
        const streets = config.district ? streetData(datas) : null;
        const codes = (streets && streets.cycle && streets.cycle.length ? streets.cycle : config.cycle) || config.codes;
        const i = codes.indexOf(view && view.highlight);
        return Object.assign({}, view, {highlight: codes[(i + 1) % codes.length]});
    };

    /** A district wall's spotlit street -> its panel: name, counts of the wall's window per domain, its rank among
     *  the district's streets and its share of the district's events. */
    function streetSpot(code, streets, config) {
        const u = U();
        const L = config.labels;
        const rows = (streets && streets.streets) || [];
        const k = rows.findIndex((s) => s.name === code);
        const row = rows[k] || {counts: {}, total: 0, open: 0};
        if (unchanged('spotlight', JSON.stringify([code, row, rows.length]))) {
            return [dc.no_update];
        }
        const names = (config.streets || {})[config.district] || {};
        const name = Object.prototype.hasOwnProperty.call(names, code) ? names[code] : code;
        const all = rows.reduce((sum, s) => sum + (s.total || 0), 0);
        const share = all ? Math.round((row.total || 0) / all * 1000) / 10 : 0;
        return [[
            u.el('Div', {className: 'spot-head'}, [
                u.el('Span', {className: 'spot-label'}, L.spotlight),
                u.el('H2', {className: 'spot-name'}, name),
                u.el('Span', {className: 'spot-risk'}, u.fmt(L.street_open, {n: row.open || 0})),
            ]),
            u.el('Div', {className: 'spot-meta'}, [config.districts[config.district].name,
                u.fmt(L.street_rank, {rank: k < 0 ? rows.length : k + 1, n: rows.length}),
                u.fmt(L.district_share, {p: share})].join(' · ')),
            u.el('Div', {className: 'spot-grid'}, config.domains.map((dom) => u.el('Div', {key: dom, className: 'spot-kpi dom-' + dom}, [
                u.el('Span', {className: 'spot-kpi-label'}, L[dom]),
                u.el('Span', {className: 'spot-kpi-value'}, String((row.counts || {})[dom] || 0)),
            ]))),
        ]];
    }

    /** Spotlight district (a district wall: street), live state, a district wall's streets -> the wall's
     *  spotlight panel ([] where there is none). */
    ns.spotlight = function (view, store, datas, config) {
        const u = U();
        const code = view && view.highlight;
        if (config.page !== 'wall' || !code) {
            return [];
        }
        if (config.district) {
            return streetSpot(code, streetData(datas), config);
        }
        const L = config.labels;
        const d = config.districts[code];
        const win = u.windowOf(store, view);
        const entry = (win && win.districts && win.districts[code]) || {counts: {}, risk: 0};
        if (unchanged('spotlight', JSON.stringify([code, entry, win && win.districts && Object.keys(win.districts).map(
            (c) => win.districts[c])]))) {
            return [dc.no_update];
        }
        const pop = config.lang === 'en' ? d.population.toLocaleString('en') : u.fmt(L.ten_thousand, {n: (d.population / 10000).toFixed(1)});
        const all = (c) => u.measure(win && win.districts && win.districts[c], 'all', config.domains);
        const cityTotal = config.codes.reduce((sum, c) => sum + all(c), 0);
        const share = cityTotal ? Math.round(all(code) / cityTotal * 1000) / 10 : 0;
        const rank = 1 + config.codes.filter((c) => ((win && win.districts && win.districts[c]) || {}).risk > (entry.risk || 0)).length;
        return [[
            u.el('Div', {className: 'spot-head'}, [
                u.el('Span', {className: 'spot-label'}, L.spotlight),
                u.el('H2', {className: 'spot-name'}, d.name),
                u.el('Span', {className: 'spot-risk'}, L.risk + ' ' + (entry.risk || 0).toFixed(1)),
            ]),
            u.el('Div', {className: 'spot-meta'}, [L.population + ' ' + pop,
                u.fmt(L.risk_rank, {rank: rank, n: config.codes.length}), u.fmt(L.city_share, {p: share})].join(' · ')),
            u.el('Div', {className: 'spot-grid'}, config.domains.map((dom) => u.el('Div', {key: dom, className: 'spot-kpi dom-' + dom}, [
                u.el('Span', {className: 'spot-kpi-label'}, L[dom]),
                u.el('Span', {className: 'spot-kpi-value'}, String((entry.counts || {})[dom] || 0)),
            ]))),
            // the district's latest events are not repeated here: the ticker beside shows them, and the panel's
            // room goes to the district's last hour and its open incidents
        ]];
    };

    /** Spotlight data (one per spotlight), view -> the spotlit district's open incidents: severity, title (as
     *  text, never HTML), status in the page's language; nothing until the data is the spotlit district's. */
    ns.spotIncidents = function (datas, view, config) {
        const u = U();
        const L = config.labels;
        return (datas || []).map((data) => {
            if (!data || !view || data.code !== view.highlight) {
                return [];
            }
            const rows = data.incidents || [];
            if (!rows.length) {
                return [u.el('Li', {key: 'none', className: 'spot-incident-empty'}, L.no_open_incidents)];
            }
            const more = (data.open || 0) - rows.length;
            return rows.map((r) => u.el('Li', {key: String(r.id), className: 'spot-incident sev-' + r.severity}, [
                u.el('Span', {className: 'spot-incident-sev'}, L['sev_' + r.severity] || String(r.severity)),
                u.el('Span', {className: 'spot-incident-title'}, r.title || config.kinds[r.kind] || r.kind),
                u.el('Span', {className: 'spot-incident-status st-' + r.status}, L['status_' + r.status] || r.status),
            ])).concat(more > 0 ? [u.el('Li', {key: 'more', className: 'spot-incident-rest'},
                u.fmt(L.incidents_rest, {n: more}))] : []);
        });
    };

    /** District click -> its drill-down (not on the unattended wall). */
    ns.drillDown = function (clickData, config) {
        const point = clickData && clickData.points && clickData.points[0];
        if (!point || !point.location || (config && config.page === 'wall')) {
            return dc.no_update;
        }
        return '/district/' + encodeURIComponent(point.location);
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {deltaOf: deltaOf, rowSig: rowSig, rowParts: rowParts, fillRow: fillRow, streetName: streetName, drawTicker: drawTicker,
            TICKER_ROWS: TICKER_ROWS, kpis: ns.kpis, takeFeeds: takeFeeds, drawFeeds: drawFeeds, clockStart: ns.clockStart,
            every: every, riskTop: ns.riskTop, viewControls: ns.viewControls, cycle: ns.cycle,
            spotlight: ns.spotlight, streetSpot: streetSpot, spotIncidents: ns.spotIncidents, drillDown: ns.drillDown, last: last};
    }
})(typeof window !== 'undefined' ? window : globalThis);
