/* Live pages: connect to the websocket gateway, fall back to polling, take in frames, show status.
 *
 * Protocol (dashboard/gateway.py): on every (re)connect a {"type":"snapshot","seq","state"}; then
 * {"type":"delta","seq","state"?,"events"?,"incidents"?}, {"type":"heartbeat","at"} every 5 s and
 * {"type":"status","bus":"up"|"down"}. dash-extensions' WebSocket does not reconnect by itself: it
 * (re)connects whenever its `url` changes, and closes when `url` becomes null, which is how the
 * `connection` callback below drives it, with exponential backoff and jitter. */
(function () {
    'use strict';
    const dc = (window.dash_clientside = window.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const OPEN = 1;
    const CLOSED = 3;
    const WATCHDOG_MS = 20000;  // four missed heartbeats: the socket is dead even if it looks open
    const MAX_BACKOFF_MS = 30000;
    const EVENT_CAP = 30;

    function socketUrl(config) {
        if (config.ws_url) {
            return config.ws_url;
        }
        const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
        return scheme + '://' + window.location.hostname + ':' + config.ws_port + '/';
    }

    function backoff(attempt) {
        const base = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, Math.max(0, attempt - 1)));
        return Math.round(base * (0.8 + 0.4 * Math.random()));
    }

    /** Newest first, one entry per (domain, id), at most `cap`. */
    function mergeEvents(newer, older, cap) {
        const seen = new Set();
        const out = [];
        for (const e of (newer || []).concat(older || [])) {
            const key = e.domain + '\u0000' + e.id;
            if (!seen.has(key)) {
                seen.add(key);
                out.push(e);
                if (out.length >= cap) {
                    break;
                }
            }
        }
        return out;
    }

    /** Apply one gateway frame to the stored live state; null when the frame changes nothing. */
    function applyFrame(store, msg, now) {
        switch (msg && msg.type) {
        case 'snapshot':
            return {state: msg.state, seq: msg.seq, frame_at: now, feeds_at: now, bus: store.bus || 'up',
                source: 'ws'};
        case 'delta': {
            if (store.seq !== null && store.seq !== undefined && msg.seq !== undefined && msg.seq <= store.seq) {
                return null;  // already applied
            }
            const state = Object.assign({}, store.state || {}, msg.state || {});
            if (msg.events && msg.events.length) {
                state.events = mergeEvents(msg.events, (store.state && store.state.events) || [], EVENT_CAP);
            }
            return Object.assign({}, store, {state: state, seq: msg.seq, frame_at: now, source: 'ws',
                feeds_at: msg.state && msg.state.feeds ? now : store.feeds_at});
        }
        case 'heartbeat':
            return Object.assign({}, store, {frame_at: now});
        case 'status':
            return Object.assign({}, store, {bus: msg.bus, frame_at: now});
        default:
            return null;
        }
    }

    /** Probe result, socket state or watchdog tick ->
     *  [conn, socket url, polling disabled, retry timer disabled, retry timer interval]. */
    ns.connection = function (probe, wsState, _tick, conn, config, store) {
        const nu = dc.no_update;
        const fired = dc.panoramaUtil.triggered();
        const now = Date.now();
        const c = Object.assign({mode: 'connecting', attempt: 0, ever_open: false, socket: false}, conn || {});
        const before = JSON.stringify(c);
        let url = nu;
        let retryOff = nu;
        let retryMs = nu;

        function fail() {
            c.attempt += 1;
            // No gateway at all on the first look, or a few failed attempts: poll until a socket opens.
            const giveUp = c.mode === 'polling' || c.attempt >= config.max_attempts || !c.socket_tried;
            c.mode = giveUp ? 'polling' : 'reconnecting';
            retryOff = false;  // the retry timer asks the server again after the backoff
            retryMs = backoff(c.attempt);
        }

        if (fired.includes('live-probe') && probe && c.mode !== 'live' && !c.socket) {
            retryOff = true;
            if (probe.up) {
                url = socketUrl(config);
                Object.assign(c, {socket: true, socket_tried: true, socket_at: now});
            } else {
                fail();
            }
        }
        if (fired.includes('live-ws') && wsState) {
            if (wsState.readyState === OPEN) {
                Object.assign(c, {mode: 'live', attempt: 0, ever_open: true, socket: true, socket_at: now});
                retryOff = true;
            } else if (wsState.readyState === CLOSED && c.socket) {
                url = null;
                c.socket = false;
                fail();
            }
        }
        if (fired.includes('live-tick') && c.mode === 'live'
                && now - Math.max((store && store.frame_at) || 0, c.socket_at || 0) > WATCHDOG_MS) {
            url = null;  // close the silent socket; the retry opens a fresh one
            c.socket = false;
            fail();
        }
        if (JSON.stringify(c) === before && url === nu && retryOff === nu) {
            return [nu, nu, nu, nu, nu];
        }
        return [c, url, c.mode !== 'polling', retryOff, retryMs];
    };

    /** Socket frame or poll tick -> the new live state (a Promise while polling). */
    ns.intake = function (message, _pollN, store, conn, config) {
        const nu = dc.no_update;
        const fired = dc.panoramaUtil.triggered();
        const now = Date.now();
        const s = store || {state: null};
        if (!fired.length) {
            return Object.assign({}, s, {frame_at: now, feeds_at: now});  // first render: state is as of now
        }
        if (fired.includes('live-ws') && message) {
            let msg;
            try {
                msg = JSON.parse(message.data);
            } catch (err) {
                return nu;
            }
            const next = applyFrame(s, msg, now);
            return next === null ? nu : next;
        }
        if (fired.includes('live-poll')) {
            if (!conn || conn.mode !== 'polling') {
                return nu;
            }
            return fetch(config.summary_url, {cache: 'no-store', credentials: 'same-origin',
                headers: {Accept: 'application/json'}})
                .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
                .then((doc) => ({state: doc.live, seq: null, frame_at: Date.now(), feeds_at: Date.now(),
                    bus: s.bus, source: 'poll'}))
                .catch(() => Object.assign({}, s, {poll_failed_at: Date.now()}));
        }
        return nu;
    };

    /** Connection mode and live state -> indicator text and class, banner items and class. */
    ns.status = function (conn, store, _tick, config) {
        const U = dc.panoramaUtil;
        const L = config.labels;
        const now = Date.now();
        const mode = (conn && conn.mode) || 'connecting';
        const notes = [];
        const stale = U.feedsNow(store, config, now).filter((f) => f.stale).map((f) => L[f.domain]);
        if (stale.length) {
            notes.push(U.fmt(L.banner_stale, {feeds: stale.join(config.lang === 'en' ? ', ' : '、')}));
        }
        if (mode === 'reconnecting') {
            notes.push(L.banner_lost);
        }
        const s = store || {};
        if (s.poll_failed_at && s.poll_failed_at > (s.frame_at || 0)) {
            notes.push(U.fmt(L.banner_poll_failed, {s: Math.round((now - (s.frame_at || now)) / 1000)}));
        }
        if (s.bus === 'down') {
            notes.push(L.banner_bus_down);
        }
        return [L['conn_' + mode] || mode, 'conn conn-' + mode,
            notes.map((text) => U.el('Span', {className: 'banner-item'}, text)),
            notes.length ? 'alert-banner on' : 'alert-banner'];
    };

    /** Tick -> clock text. */
    ns.clock = function (_n, config) {
        return dc.panoramaUtil.clock(Date.now(), config.tz, config.lang);
    };
})();
