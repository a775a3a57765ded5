/* The alert-list's live updates on /, /wall and /m, and the trail's on /alerts. assets/live_conn.js hands every gateway frame to
 * `panorama.dispatchFrame`; that hook is wrapped here, not replaced (dispatch_live.js, loaded before this file,
 * set it; mobile.js, loaded after, wraps this one).
 *
 * The alert-list is drawn here from the frames at once: a snapshot's open alerts, then each delta's changes (the
 * gateway scopes both to the reader, as GET /api/alerts), in the order and words the server draws them with
 * (layouts/alerts.py: alert_items; its words, places and room come in the list's data-words). A new red alert is
 * then on the wall when its frame arrives, not after a callback's round trip that queues behind the page's
 * other callbacks (bench/alerts.py measured that wait at up to 0.55 s at p99).
 * The server still draws the list afterwards, from the database (callbacks/alerts.py), and its drawing wins: a
 * frame that carries alerts, or a snapshot (after a reconnect anything may have changed), writes the
 * `alert-bump` store at most once per BUMP_MS. On /alerts the same frames write `alerts-live` instead, and the
 * trail is read again (callbacks/alerts_page.py).
 * The first frame after a quiet spell bumps at once (a new red alert on a calm wall must not wait out a burst
 * window that has nothing to coalesce); the frames that follow within BUMP_MS of a bump are one more bump at
 * the window's end. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const BUMP_MS = 300;  // the frames of one burst cause one redraw
    const acc = {timer: null, n: 0, seq: null, last: -Infinity};  // last: when the store was last written
    const OPEN = ['firing', 'acknowledged'];  // layouts/alerts.py OPEN
    const RANK = {red: 0, orange: 1, yellow: 2, blue: 3};  // red first (layouts/alerts.py ordered)
    // the open alerts the frames told of, by id; known once a snapshot came (before it the server's list stands)
    const held = {open: new Map(), known: false};

    /** Return the store the alerts of this page follow: the alert-list's, /alerts' trail's, or none. */
    function alertStore() {
        if (document.getElementById('alert-list') !== null) {
            return 'alert-bump';
        }
        return document.getElementById('alerts-trail') !== null ? 'alerts-live' : null;
    }

    function onAlertPage() {
        return alertStore() !== null;
    }

    /** Tell whether a frame may change the alert-list: a snapshot, or a delta with alerts. */
    function carriesAlerts(msg) {
        if (!msg) {
            return false;
        }
        return msg.type === 'snapshot' || (msg.type === 'delta' && Array.isArray(msg.alerts) && msg.alerts.length > 0);
    }

    /** A frame -> its alerts folded into the open ones: a snapshot replaces them, a delta's resolved ones leave,
     *  and an older version of an alert never overwrites a newer. */
    function fold(msg) {
        if (msg.type === 'snapshot') {
            held.open.clear();
            held.known = true;
        }
        const list = msg.type === 'snapshot' ? (msg.state && msg.state.alerts) || [] : msg.alerts || [];
        for (const a of list) {
            const had = held.open.get(a.id);
            if (had && (had.version || 0) > (a.version || 0)) {
                continue;
            }
            if (OPEN.includes(a.status)) {
                held.open.set(a.id, a);
            } else {
                held.open.delete(a.id);
            }
        }
    }

    function rank(a) {
        return a.level in RANK ? RANK[a.level] : 4;
    }

    /** Open alerts -> in the screens' order: red first, then by level; firing before acknowledged; newest first. */
    function ordered(list) {
        return list.slice().sort((a, b) => rank(a) - rank(b)
            || (a.status !== 'firing') - (b.status !== 'firing')
            || (Date.parse(b.started_at) || 0) - (Date.parse(a.started_at) || 0) || b.id - a.id);
    }

    /** An alert and the list's words -> its row, as layouts/alerts.py alert_item draws it (text, never HTML). */
    function itemOf(a, w, util) {
        const title = w.lang === 'en' ? (a.title_en || a.title) : a.title;
        const place = (a.zone && w.zones[a.zone]) || (a.district && (w.districts[a.district] || a.district)) || w.city;
        const parts = [
            util.el('Span', {className: 'alert-level'}, w.levels[a.level] || a.level),
            util.el('Span', {className: 'alert-title'}, title || ''),
            util.el('Span', {className: 'alert-place'}, place),
            // started_at is RFC 3339 with the city's offset: its time of day is the city's
            util.el('Span', {className: 'alert-since'}, util.fmt(w.since, {time: String(a.started_at || '').slice(11, 19)})),
            util.el('Span', {className: 'alert-status'}, w.statuses[a.status] || a.status),
        ];
        if (w.can_ack && a.status === 'firing') {
            parts.push(util.el('Button', {id: {'alert-ack': a.id, v: a.version}, n_clicks: 0, className: 'alert-ack'},
                w.ack));
        }
        return util.el('Li', {key: 'alert:' + a.id + ':' + a.version, className: 'alert-item lvl-' + a.level + ' st-'
            + a.status, 'data-alert': String(a.id)}, parts);
    }

    /** The open alerts and the list's words -> its rows (what fits) and the line under it. */
    function listOf(open, w, util) {
        const rows = ordered(Array.from(open.values()));
        const shown = rows.slice(0, w.slots);
        const rest = rows.length - shown.length;
        const more = rest > 0 ? util.fmt(w.more, {n: rest}) : (rows.length ? '' : w.none);
        return {items: shown.map((a) => itemOf(a, w, util)), more: more};
    }

    /** The list drawn now from what the frames told (a page whose list carries its words, after a snapshot). */
    function drawNow() {
        const ul = document.getElementById('alert-list');
        const util = dc.panoramaUtil;
        if (!ul || !held.known || !util || !dc.set_props || !ul.dataset || !ul.dataset.words) {
            return false;
        }
        let w;
        try {
            w = JSON.parse(ul.dataset.words);
        } catch (err) {
            return false;
        }
        const {items, more} = listOf(held.open, w, util);
        dc.set_props('alert-list', {children: items});
        dc.set_props('alert-more', {children: more});
        return true;
    }

    /** A replayed minute's state (live_conn.js replayState) -> the alerts open then, drawn as a snapshot's. */
    ns.replayAlerts = function (state) {
        fold({type: 'snapshot', state: {alerts: (state && state.alerts) || []}});
        return drawNow();
    };

    function flush() {
        acc.timer = null;
        const store = alertStore();
        if (store !== null && dc.set_props) {
            acc.n += 1;
            acc.last = Date.now();
            dc.set_props(store, {data: {n: acc.n, seq: acc.seq}});
        }
    }

    /** One gateway frame -> a redraw of the alert-list now after a quiet spell, else at the burst window's end. */
    function alertFrame(msg) {
        if (!carriesAlerts(msg) || !onAlertPage()) {
            return;
        }
        fold(msg);
        if (msg.type === 'delta') {
            drawNow();  // a snapshot's list is the server's first paint's, or the bump's just below
        }
        acc.seq = msg.seq;
        if (acc.timer !== null) {
            return;  // a redraw is due already and will read this change too
        }
        const wait = acc.last + BUMP_MS - Date.now();
        if (wait <= 0) {
            flush();
        } else {
            acc.timer = setTimeout(flush, wait);
        }
    }

    const inner = ns.dispatchFrame;
    ns.dispatchFrame = function (msg) {
        if (inner) {
            inner(msg);
        }
        alertFrame(msg);
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {carriesAlerts: carriesAlerts, alertFrame: alertFrame, dispatchFrame: ns.dispatchFrame,
            acc: acc, held: held, BUMP_MS: BUMP_MS, fold: fold, ordered: ordered, listOf: listOf};
    }
})(typeof window !== 'undefined' ? window : globalThis);
