/* Live pages: render the stored live state into tiles and lists (figures: live_figures.js). Lists are
 * rebuilt from capped data with stable keys, so the DOM stays the same size for days. */
(function () {
    'use strict';
    const dc = (window.dash_clientside = window.dash_clientside || {});
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

    /** Live state, view -> 4 counts (plain integers), 4 change texts, 4 change classes. */
    ns.kpis = function (store, view, config) {
        const w = U().windowOf(store, view);
        const counts = [];
        const texts = [];
        const classes = [];
        for (const d of config.domains) {
            if (!w) {
                counts.push('–');
                texts.push('');
                classes.push('kpi-delta');
                continue;
            }
            const cur = (w.totals || {})[d] || 0;
            const [text, cls] = deltaOf(cur, (w.previous || {})[d] || 0);
            counts.push(String(cur));
            texts.push(text);
            classes.push(cls);
        }
        const out = counts.concat(texts, classes);
        if (unchanged('kpis', out.join('\u0000'))) {
            return out.map(() => dc.no_update);
        }
        return out;
    };

    /** Live state -> one list item per event, newest first; titles are text, never HTML.
     *  Kept cheap: one Li and four Spans per event (three on the wall, which hides the domain badge),
     *  keyed by event, and nothing is returned when the list did not change. */
    ns.ticker = function (store, config) {
        const u = U();
        // Newest first by event time; events that arrived together keep their arrival order.
        const events = ((store && store.state && store.state.events) || []).slice(0, 30)
            .map((e, i) => [e, i]).sort((a, b) => (b[0].ts - a[0].ts) || (a[1] - b[1])).map((pair) => pair[0]);
        if (unchanged('ticker', events.map((e) => e.domain + ':' + e.id + ':' + e.ts).join('|'))) {
            return dc.no_update;
        }
        const wall = config.page === 'wall';
        return events.map((e) => {
            const d = config.districts[e.district];
            const name = d ? d.name : e.district;
            const children = [u.el('Span', {className: 'ticker-time'}, u.timeOfDay(e.ts, config.tz))];
            if (!wall) {
                children.push(u.el('Span', {className: 'ticker-dom'}, config.labels[e.domain] || e.domain));
            }
            children.push(u.el('Span', {className: 'ticker-place'}, wall || !e.street ? name : name + ' · ' + e.street));
            children.push(u.el('Span', {className: 'ticker-title'}, e.title || config.kinds[e.kind] || e.kind));
            return u.el('Li', {key: e.domain + ':' + e.id, className: 'ticker-item sev-' + e.severity + ' dom-' + e.domain},
                children);
        });
    };

    /** Live state, tick -> each domain's freshness; a silent feed reads 'stale'. */
    ns.feeds = function (store, _tick, config) {
        const u = U();
        const L = config.labels;
        const feeds = u.feedsNow(store, config, Date.now()).map((f) => Object.assign(f, {text: u.ago(f.age, L)}));
        if (unchanged('feeds', JSON.stringify(feeds.map((f) => [f.text, f.stale, Math.round(f.rate * 10)])))) {
            return dc.no_update;
        }
        return feeds.map((f) => {
            const age = f.text;
            return u.el('Li', {key: f.domain, className: 'feed ' + (f.stale ? 'stale' : 'fresh')}, [
                u.el('Span', {className: 'feed-dot'}),
                u.el('Span', {className: 'feed-name'}, L[f.domain]),
                u.el('Span', {className: 'feed-rate'}, u.fmt(L.per_min, {n: Math.round(f.rate * 10) / 10})),
                u.el('Span', {className: 'feed-state'}, f.stale ? 'stale · ' + age : age),
            ]);
        });
    };

    /** Live state, view -> the districts at highest risk, with their score and event count. */
    ns.riskTop = function (store, view, config) {
        const u = U();
        const win = u.windowOf(store, view);
        if (!win) {
            return [];
        }
        const rows = config.codes.map((c) => ({code: c, risk: (win.districts[c] || {}).risk || 0,
            n: u.measure(win.districts[c], 'all', config.domains)}));
        rows.sort((a, b) => b.risk - a.risk || b.n - a.n);
        if (unchanged('riskTop', JSON.stringify(rows.slice(0, TOP_N)))) {
            return dc.no_update;
        }
        return rows.slice(0, TOP_N).map((r, i) => u.el('Li', {key: r.code, className: 'risk-item'}, [
            u.el('Span', {className: 'risk-rank'}, String(i + 1)),
            u.el('Span', {className: 'risk-name'}, config.districts[r.code].name),
            u.el('Span', {className: 'risk-bar'}, [u.el('Span', {className: 'risk-fill',
                style: {width: Math.max(2, Math.min(100, r.risk)) + '%'}})]),
            u.el('Span', {className: 'risk-score'}, r.risk.toFixed(1)),
            u.el('Span', {className: 'risk-count'}, r.n + ' ' + config.labels.events),
        ]));
    };

    /** Window and measure selectors -> view. */
    ns.viewControls = function (windowName, measure, view) {
        return Object.assign({}, view, {window: windowName, measure: measure});
    };

    /** Wall timer -> the next district in the spotlight. */
    ns.cycle = function (_n, view, config) {
        const i = config.codes.indexOf(view && view.highlight);
        return Object.assign({}, view, {highlight: config.codes[(i + 1) % config.codes.length]});
    };

    /** Spotlight district, live state -> the wall's spotlight panel ([] where there is none). */
    ns.spotlight = function (view, store, events, config) {
        const u = U();
        const code = view && view.highlight;
        if (config.page !== 'wall' || !code) {
            return [];
        }
        const L = config.labels;
        const d = config.districts[code];
        const win = u.windowOf(store, view);
        const entry = (win && win.districts && win.districts[code]) || {counts: {}, risk: 0};
        const latest = ((events && events.state && events.state.events) || []).filter((e) => e.district === code)
            .slice(0, 3);
        if (unchanged('spotlight', JSON.stringify([code, entry, win && win.districts && Object.keys(win.districts).map(
            (c) => win.districts[c]), latest.map((e) => [e.domain, e.id])]))) {
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
            // only what the city ticker holds: a quiet district simply shows none
            u.el('Ul', {className: 'spot-latest'}, latest.map((e) => u.el('Li', {key: e.domain + ':' + e.id,
                className: 'sev-' + e.severity}, [
                u.el('Span', {className: 'spot-latest-time'}, u.timeOfDay(e.ts, config.tz)),
                u.el('Span', {className: 'spot-latest-title'}, e.title || config.kinds[e.kind] || e.kind)]))),
        ]];
    };

    /** District click -> its drill-down (not on the unattended wall). */
    ns.drillDown = function (clickData, config) {
        const point = clickData && clickData.points && clickData.points[0];
        if (!point || !point.location || (config && config.page === 'wall')) {
            return dc.no_update;
        }
        return '/district/' + encodeURIComponent(point.location);
    };
})();
