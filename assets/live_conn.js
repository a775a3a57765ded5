/* Live pages: connect to the websocket gateway, fall back to polling, take in frames, show status.
 *
 * Protocol (dashboard/gateway.py; the frames are documented in live_frames.js): on every (re)connect a
 * snapshot, then deltas, a heartbeat every 5 s and the bus's status. dash-extensions' WebSocket does not reconnect by itself: it
 * (re)connects whenever its `url` changes, and closes when `url` becomes null, which is how the
 * `connection` callback below drives it, with exponential backoff and jitter. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
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
        const scheme = root.location.protocol === 'https:' ? 'wss' : 'ws';
        return scheme + '://' + root.location.hostname + ':' + config.ws_port + '/';
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

    /* The page's own socket. dash-extensions' WebSocket sets its `message` prop once per frame, and each
     * prop change costs Dash a pass over every component; at 10 frames/s that alone kept the main thread
     * busy. Frames now go straight from this socket into the merged state (see flush() below); only the
     * socket's open/close reaches Dash, as `live-ws.state`, which drives the `connection` callback as before. */
    const sock = {ws: null, gen: 0};  // gen: bumped by every close, so a ticket fetched for an older open is dropped

    function onLivePage() {
        return document.getElementById('live-indicator') !== null;
    }

    function closeSocket() {
        const ws = sock.ws;
        sock.ws = null;
        sock.gen += 1;
        if (ws) {
            ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
            try {
                ws.close();
            } catch (err) { /* already closed */ }
        }
    }

    /** The gateway admits a socket with a fresh ticket (a minute old at most) from GET /api/ws-ticket: the
     *  session's, or the wall's kiosk token's (its HttpOnly cookie, which the fetch sends; the token is never
     *  in a page's address). One per (re)connect. */
    function ticketUrl(url) {
        return fetch('/api/ws-ticket',
            {credentials: 'same-origin', cache: 'no-store', headers: {Accept: 'application/json'}})
            .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
            .then((doc) => url + (url.includes('?') ? '&' : '?') + 'ticket=' + encodeURIComponent(doc.ticket));
    }

    function openSocket(url) {
        closeSocket();
        const gen = sock.gen;
        const failed = () => {
            if (sock.gen === gen && onLivePage()) {
                dc.set_props('live-ws', {state: {readyState: CLOSED}});
            }
        };
        ticketUrl(url).then((withTicket) => {
            if (sock.gen === gen) {
                connectSocket(withTicket, failed);
            }
        }, failed);
    }

    function connectSocket(url, failed) {
        let ws;
        try {
            ws = new root.WebSocket(url);
        } catch (err) {
            setTimeout(failed, 0);
            return;
        }
        sock.ws = ws;
        ws.onopen = () => dc.set_props('live-ws', {state: {readyState: OPEN}});
        ws.onclose = (e) => {
            if (sock.ws === ws) {
                sock.ws = null;
                if (onLivePage()) {
                    dc.set_props('live-ws', {state: {readyState: CLOSED, code: e.code}});
                }
            }
        };
        ws.onmessage = (e) => {
            if (sock.ws !== ws) {
                return;
            }
            if (!onLivePage()) {  // the user left the live page: stop listening
                closeSocket();
                live.s = null;
                return;
            }
            takeFrame(e.data);
        };
    }

    const PROBE_HOLD_MS = 15000;  // a probe whose answer never came (lost with its request) holds the next no longer
    const probing = {asked: null};  // when the probe on its way was asked (null: none is)

    /** Retry timer's tick -> the tick passed on to the gateway probe (a server callback), or no_update while a
     *  probe is on its way: a probe fired again drops the answer of the one on its way, and `connection`, which
     *  alone slows the timer, waits for an answer (callbacks/live.py). */
    ns.probeAsk = function (n) {
        const now = Date.now();
        // (the initial call passes on too: Dash skips the probe's initial call when this one writes nothing)
        if (dc.panoramaUtil.triggered().length && probing.asked !== null && now - probing.asked < PROBE_HOLD_MS) {
            return dc.no_update;
        }
        probing.asked = now;
        return n === undefined ? null : n;
    };

    /** Probe result, socket state or watchdog tick ->
     *  [conn, socket url, polling disabled, retry timer disabled, retry timer interval]. */
    ns.connection = function (probe, wsState, _tick, conn, config, store) {
        const nu = dc.no_update;
        const fired = dc.panoramaUtil.triggered();
        const now = Date.now();
        const c = Object.assign({mode: 'connecting', attempt: 0, ever_open: false, socket: false}, conn || {});
        const before = JSON.stringify(c);
        const url = nu;  // the page opens its own socket (openSocket): the component's url stays unset
        let retryOff = nu;
        let retryMs = nu;
        if (config && config.replay) {
            // A replayed page never connects: its state comes from the server at the replayed minute
            // (live_replay.js), and no live frame may repaint it.
            return c.mode === 'replay' ? [nu, nu, nu, nu, nu] : [Object.assign(c, {mode: 'replay'}), nu, true, true, nu];
        }

        function fail() {
            c.attempt += 1;
            // No gateway at all on the first look, or a few failed attempts: poll until a socket opens.
            const giveUp = c.mode === 'polling' || c.attempt >= config.max_attempts || !c.socket_tried;
            c.mode = giveUp ? 'polling' : 'reconnecting';
            retryOff = false;  // the retry timer asks the server again after the backoff
            retryMs = backoff(c.attempt);
        }

        if (fired.includes('live-probe')) {
            probing.asked = null;  // the probe's answer landed: the next tick may ask again
        }
        if (fired.includes('live-probe') && probe && c.mode !== 'live' && !c.socket) {
            retryOff = true;
            if (probe.up) {
                openSocket(socketUrl(config));
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
                closeSocket();
                c.socket = false;
                fail();
            }
        }
        if (fired.includes('live-tick') && c.mode === 'live'
                && now - Math.max((store && store.frame_at) || 0, c.socket_at || 0) > WATCHDOG_MS) {
            closeSocket();  // close the silent socket; the retry opens a fresh one
            c.socket = false;
            fail();
        }
        if (JSON.stringify(c) === before && url === nu && retryOff === nu) {
            return [nu, nu, nu, nu, nu];
        }
        return [c, url, c.mode !== 'polling', retryOff, retryMs];
    };

    /* Coalescing. The socket's `message` prop fires once per frame; applying every frame to a Dash store
     * woke every renderer per frame and the page fell behind without bound. Frames are merged here, in
     * plain JS state outside Dash, and the merged state is pushed into the stores at most once per
     * FLUSH_MS; each store is written only when its part changed, so each renderer wakes only for its data:
     *   live-store   {state: {feeds}, seq, frame_at, feeds_at, bus, source, poll_failed_at, served_at}
     *   live-windows {state: {windows}}   live-trend {state: {trend}}
     *   live-map     {state: {windows}}: the same windows for the city map alone (only where there is one)
     * Each store is written in a task of its own (writeApart): a write runs every renderer of that store at once,
     * and the map's redraw, the page's costliest, used to run in one task with the tiles, the risk list, the
     * status and the feeds; apart, the browser can paint and take input between them. */
    const FLUSH_MS = 250;
    const FRAME_SLACK_MS = 150;  // > the gateway's 100 ms between frames
    const PENDING = -1;  // live.timer while a flush waits for the next paint
    const META_EVERY_MS = 1000;  // frame_at alone (the watchdog's input) need not be fresher than this
    // The events have no store: the ticker is drawn from the frames, and no renderer read them (a store written
    // once a second that nothing read still cost Dash a pass over every component).
    const PARTS = {'live-windows': 'windows', 'live-map': 'windows', 'live-trend': 'trend'};
    const PART_MS = {'live-windows': 1000, 'live-map': 1000, 'live-trend': 1000};
    const COSTLY = new Set(['live-map', 'live-trend']);
    const WHERE = {'live-map': 'city-map'};  // a part written only where its renderer's element is on the page
    const live = {s: null, timer: null, lastFlush: 0, written: {}, partAt: {}, metaAt: 0, metaKey: null,
        config: null, pollN: 0, pollTaken: 0, polling: null};

    /** Drop Dash's undo history. The renderer records every input prop changed outside a callback (each
     *  set_props below, each timer tick) in state.history.past, holding the value it replaced, and copies
     *  that array on every change: on a page that runs for days that is memory and time without bound.
     *  These pages offer no undo, so the list is emptied in place (the next change copies the empty one). */
    function forgetHistory() {
        const h = root.store && root.store.getState && root.store.getState().history;
        if (h && h.past && h.past.length) {
            h.past.length = 0;
        }
    }

    /** The merged state's events -> the ticker, drawn now (live_render.js), not at the next flush. */
    function drawTicker() {
        const st = (live.s && live.s.state) || {};
        return dc.panoramaTicker ? dc.panoramaTicker.draw(st.events, live.config) : false;
    }

    function metaOf(s) {
        const st = s.state || {};
        return {state: {feeds: st.feeds, generated_at: st.generated_at}, seq: s.seq, frame_at: s.frame_at,
            feeds_at: s.feeds_at, served_at: s.served_at, bus: s.bus, source: s.source,
            poll_failed_at: s.poll_failed_at};
    }

    function flush() {
        live.timer = null;
        live.lastFlush = Date.now();
        const s = live.s;
        if (!s || !dc.set_props) {
            return;
        }
        const st = s.state || {};
        let later = false;
        let costly = false;
        const writes = [];
        for (const id of Object.keys(PARTS)) {
            const part = st[PARTS[id]];
            if (WHERE[id] && !document.getElementById(WHERE[id])) {
                continue;
            }
            if (part !== undefined && part !== live.written[id]) {
                // each part at most once per PART_MS; the map, tiles and risk list (windows) and the trend are
                // the costly redraws: one of them per flush, so each fits between two frames
                if (live.lastFlush - (live.partAt[id] || 0) < (PART_MS[id] || 0) || (costly && COSTLY.has(id))) {
                    later = true;
                    continue;
                }
                costly = costly || COSTLY.has(id);
                live.partAt[id] = live.lastFlush;
                live.written[id] = part;
                writes.push([id, {data: {state: {[PARTS[id]]: part}}}]);
            }
        }
        const meta = metaOf(s);
        const key = JSON.stringify(Object.assign({}, meta, {frame_at: 0}));
        if (key !== live.metaKey || live.lastFlush - live.metaAt >= META_EVERY_MS) {
            live.metaKey = key;
            live.metaAt = live.lastFlush;
            writes.push(['live-store', {data: meta}]);
        }
        writeApart(writes);
        if (later) {
            scheduleFlush(false);
        }
    }

    /** Run ``fn`` in a task of its own after the next animation frame has been rendered: a store write (Dash's
     *  callbacks and the Plotly redraws it starts are the page's long tasks) never runs between a unit frame's
     *  draw and its paint (live_units.js draws in the socket's message task). */
    function afterPaint(fn) {
        const later = () => setTimeout(fn, 0);
        if (root.requestAnimationFrame) {
            root.requestAnimationFrame(later);
        } else {
            later();
        }
    }

    /** Write each store in a task of its own, in order: the first now, each next one after the next paint (a
     *  timer's task after an animation frame), so the markers or rows a socket frame drew meanwhile are painted
     *  before the next store's redraws start. */
    function writeApart(writes) {
        const next = writes.shift();
        if (next === undefined) {
            forgetHistory();
            return;
        }
        if (onLivePage()) {
            dc.set_props(next[0], next[1]);
        }
        if (writes.length) {
            afterPaint(() => writeApart(writes));
        } else {
            forgetHistory();
        }
    }

    function scheduleFlush(soon) {
        if (live.timer !== null) {
            return;
        }
        // a frame due after FLUSH_MS normally flushes first (flushAfterPaint); this catches a burst's last one
        const wait = soon ? 0 : Math.max(0, live.lastFlush + FLUSH_MS + FRAME_SLACK_MS - Date.now());
        live.timer = setTimeout(() => {
            live.timer = PENDING;
            afterPaint(flush);
        }, wait);
    }

    /* The stores' renderers (map, trend, tiles) are the page's long tasks. Started right after a frame is drawn
     * and painted, they run in the gap before the next frame (<= 10 a second), instead of at a moment that
     * leaves the next frame's rows waiting behind them. */
    function flushAfterPaint() {
        if (live.timer !== null && live.timer !== PENDING) {
            clearTimeout(live.timer);
        }
        live.timer = PENDING;
        afterPaint(flush);
    }

    /** One socket frame -> merged into the page's live state; a flush is scheduled. */
    function takeFrame(data) {
        if (live.s === null) {
            return;  // the page's first render has not run yet; the snapshot after it will come
        }
        if (live.config && live.config.replay) {
            return;  // a replayed page: only the replayed minute's state is drawn (replayState)
        }
        const msg = dc.panoramaFrames.readFrame(data);  // (live_frames.js loads after this file: looked up here)
        if (msg === null) {
            return;  // not a frame, or one of another version
        }
        const next = applyFrame(live.s, msg, Date.now());
        if (next !== null) {
            live.s = next;
            // the units first: their markers are drawn in this task (live_units.js), ahead of the page's other work
            if (dc.panoramaUnits) {
                dc.panoramaUnits.take(msg);
            }
            if (ns.dispatchFrame) {
                ns.dispatchFrame(msg);  // the /dispatch page's incidents, tasks, escalations (dispatch_live.js)
            }
            if (msg.type === 'snapshot' || (msg.events && msg.events.length)) {
                drawTicker();
            }
            if (msg.type !== 'snapshot' && live.timer !== PENDING && Date.now() - live.lastFlush >= FLUSH_MS) {
                flushAfterPaint();
            } else {
                scheduleFlush(msg.type === 'snapshot');
            }
        }
    }

    /** A replayed page's state at its minute (live_replay.js fetched it from the server) -> drawn as a
     *  snapshot would be: the whole state replaced, the ticker now, the stores at the next flush. */
    ns.replayState = function (state) {
        if (live.s === null || !live.config || !live.config.replay || !state) {
            return false;
        }
        const now = Date.now();
        live.s = {state: state, seq: null, frame_at: now, feeds_at: now, bus: 'up', source: 'replay'};
        drawTicker();
        replayUnits(state);
        if (ns.replayAlerts) {
            ns.replayAlerts(state);  // the alerts open then (live_alerts.js)
        }
        scheduleFlush(true);
        return true;
    };

    /** A replayed minute's units (where their tracks put them then) -> the map's unit layer, as a snapshot. */
    function replayUnits(state) {
        if (dc.panoramaUnits && state && Array.isArray(state.units)) {
            dc.panoramaUnits.take({type: 'snapshot', state: {units: state.units}});  // (take empties what it gets)
        }
    }

    /** Socket frame or poll tick -> merged into the page's live state; the stores are written by flush(). */
    ns.intake = function (message, _pollN, store, conn, config) {
        const nu = dc.no_update;
        const fired = dc.panoramaUtil.triggered();
        const now = Date.now();
        if (!fired.length || live.s === null) {
            // first render (or a page opened again): start from what the server rendered
            const s0 = store || {state: null};
            live.s = Object.assign({}, s0, {frame_at: now, feeds_at: now});
            live.config = config;
            // the ticker may not be in the document yet on the page's very first render
            if (!drawTicker() && root.requestAnimationFrame) {
                root.requestAnimationFrame(drawTicker);
            }
            live.written = {};
            live.metaKey = null;
            const st = live.s.state || {};
            if (config && config.replay) {
                replayUnits(st);  // the server drew the replayed minute; its units are drawn here
            }
            // the part stores were rendered with the same state: nothing to write for them yet
            for (const id of Object.keys(PARTS)) {
                live.written[id] = st[PARTS[id]];
            }
            if (!fired.length) {
                live.metaKey = JSON.stringify(Object.assign({}, metaOf(live.s), {frame_at: 0}));
                live.metaAt = now;
                return metaOf(live.s);
            }
        }
        if (fired.includes('live-ws') && message) {
            takeFrame(message.data);  // (the page's own socket bypasses this; kept for a socket set by url)
            return nu;
        }
        if (fired.includes('live-poll')) {
            if (conn && conn.mode === 'polling') {
                poll(config);
            }
            return nu;
        }
        return nu;
    };

    /** Fetch the live state once (the fallback poll) into the page's live state; the stores at the next flush.
     *  Not a Promise handed back to Dash: dash-renderer holds every callback whose inputs follow from a callback
     *  still on its way, and `status` (Input live-store, intake's output) then waited as long as each poll's
     *  answer took; on a heavy /dispatch that was most of every poll interval. An answer older than the newest
     *  one taken is dropped. ``live.polling`` holds the last fetch (tests/js awaits it). */
    function poll(config) {
        const n = (live.pollN += 1);
        live.polling = fetch(config.summary_url, {cache: 'no-store', credentials: 'same-origin',
            headers: {Accept: 'application/json'}})
            .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
            .then((doc) => {
                if (n < live.pollTaken || live.s === null) {
                    return;
                }
                live.pollTaken = n;
                live.s = {state: doc.live, seq: null, frame_at: Date.now(), feeds_at: Date.now(),
                    bus: live.s.bus, source: 'poll'};
                drawTicker();
                scheduleFlush(true);
            })
            .catch(() => {
                if (n < live.pollTaken || live.s === null) {
                    return;
                }
                live.s = Object.assign({}, live.s, {poll_failed_at: Date.now()});
                scheduleFlush(true);
            });
    }

    /** Live state, tick (connection mode as State) -> indicator text and class, banner items and class. The mode
     *  is read, not an Input: live-conn follows from the gateway probe, a server callback, and dash-renderer holds
     *  every callback downstream of one on its way; on a heavy /dispatch the probe's answer waited behind the
     *  page's costly callbacks and the banner kept what the first render drew. A new mode shows at the next tick. */
    ns.status = function (store, _tick, conn, config) {
        const U = dc.panoramaUtil;
        const L = config.labels;
        const now = Date.now();
        const mode = (conn && conn.mode) || 'connecting';
        if (dc.panoramaFeeds) {  // the feeds' list, drawn by the page (live_render.js) from the same state
            dc.panoramaFeeds.take(store, config);
        }
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
        // each second and each store write: only what changed is written (U.changed: a `children` Dash writes
        // is a pass over the whole page, even the same banner again)
        return U.changed('status', [L['conn_' + mode] || mode, 'conn conn-' + mode,
            notes.map((text) => U.el('Span', {className: 'banner-item'}, text)),
            notes.length ? 'alert-banner on' : 'alert-banner']);
    };

    /** Tick -> clock text. */
    ns.clock = function (_n, config) {
        forgetHistory();  // the tick itself is recorded: trimmed here when no frames come either
        // a replayed page's clock reads the replayed time (in the replay colour: live_replay.js, shell.css)
        const replayed = config.replay && ns.replayNow ? ns.replayNow() : null;
        return dc.panoramaUtil.clock(replayed === null ? Date.now() : replayed, config.tz, config.lang);
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {socketUrl: socketUrl, backoff: backoff, mergeEvents: mergeEvents, applyFrame: applyFrame,
            takeFrame: takeFrame, flush: flush, connection: ns.connection, replayState: ns.replayState, intake: ns.intake, status: ns.status,
            clock: ns.clock, live: live, sock: sock, WATCHDOG_MS: WATCHDOG_MS, MAX_BACKOFF_MS: MAX_BACKOFF_MS,
            EVENT_CAP: EVENT_CAP, FLUSH_MS: FLUSH_MS,
            probeAsk: ns.probeAsk, probing: probing, PROBE_HOLD_MS: PROBE_HOLD_MS};
    }
})(typeof window !== 'undefined' ? window : globalThis);
