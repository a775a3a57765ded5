/* The /dispatch page's live updates. assets/live_conn.js hands every gateway frame to
 * `panorama.dispatchFrame`; frames that carry incidents, tasks or escalations, and snapshots (after a
 * reconnect anything may have changed), are gathered here and written to the `dispatch-live` store at most
 * once per COALESCE_MS; the server then re-reads the queue, the board and the open incident.
 * The page's own poll runs only while the connection is not live (`panorama.dispatchPoll`). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const COALESCE_MS = 300;  // ingest can carry incidents in every frame: one server round trip per this, at most
    const ESCALATIONS_KEPT = 20;
    // Frames gathered since the last write; plain JS like live_conn.js's merged state, outside Dash.
    const acc = {incidents: new Set(), snapshot: false, escalations: [], newEscalations: false, fresh: false,
        timer: null, lastAt: 0, n: 0};

    function onDispatchPage() {
        return document.getElementById('dispatch-page') !== null;  // (a dcc.Store has no element of its own)
    }

    function flush() {
        acc.timer = null;
        acc.lastAt = Date.now();
        if (acc.fresh && onDispatchPage() && dc.set_props) {
            acc.n += 1;
            dc.set_props('dispatch-live', {data: {n: acc.n, snapshot: acc.snapshot,
                incidents: Array.from(acc.incidents),
                escalations: acc.newEscalations ? acc.escalations.slice() : []}});
        }
        acc.incidents.clear();
        acc.snapshot = acc.newEscalations = acc.fresh = false;
    }

    /** One gateway frame (already parsed) -> gathered for the next write of `dispatch-live`. */
    ns.dispatchFrame = function (msg) {
        if (!msg || !onDispatchPage()) {
            return;
        }
        if (msg.type === 'snapshot') {
            acc.snapshot = true;
        } else if (msg.type === 'delta') {
            const incidents = msg.incidents || [];
            const tasks = msg.tasks || [];
            const escalations = msg.escalations || [];
            if (!incidents.length && !tasks.length && !escalations.length) {
                return;
            }
            incidents.forEach((i) => acc.incidents.add(i.id));
            tasks.concat(escalations).forEach((t) => acc.incidents.add(t.incident_id));
            if (escalations.length) {
                acc.escalations = acc.escalations.concat(escalations).slice(-ESCALATIONS_KEPT);
                acc.newEscalations = true;
            }
        } else {
            return;
        }
        acc.fresh = true;
        if (acc.timer === null) {
            acc.timer = setTimeout(flush, Math.max(0, acc.lastAt + COALESCE_MS - Date.now()));
        }
    };

    /** Connection mode -> whether the page's fallback poll is off (it is while the socket is live). */
    ns.dispatchPoll = function (conn) {
        return Boolean(conn && conn.mode === 'live');
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {dispatchFrame: ns.dispatchFrame, dispatchPoll: ns.dispatchPoll, flush: flush, acc: acc,
            COALESCE_MS: COALESCE_MS, ESCALATIONS_KEPT: ESCALATIONS_KEPT};
    }
})(typeof window !== 'undefined' ? window : globalThis);
