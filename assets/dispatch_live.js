/* The /dispatch page's live updates. assets/live_conn.js hands every gateway frame to
 * `panorama.dispatchFrame`; frames that carry incidents, tasks or escalations, and snapshots (after a
 * reconnect anything may have changed), are gathered here and written to the `dispatch-live` store at most
 * once per COALESCE_MS; the server then re-reads the queue, the board and the open incident.
 *
 * Never while those are being drawn: Dash keeps only the newest call of a callback, so a write that fires the
 * detail's callback again while its answer is on the way drops that answer. With 500 incidents on a loaded
 * machine the detail took longer than the frames were apart, every answer was dropped for the next frame's,
 * and the detail stayed on "select an incident" while the queue, the board and the address showed the incident
 * picked (issue 15). The frames wait, gathered, until the page's parts they redraw are drawn (at most HOLD_MS).
 * The page's own poll runs only while the connection is not live (`panorama.dispatchPoll`), and its ticks wait
 * the same way (`panorama.dispatchPulse`). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const COALESCE_MS = 300;  // ingest can carry incidents in every frame: one server round trip per this, at most
    const ESCALATIONS_KEPT = 20;
    // A callback whose answer never comes (a request lost with its server) holds the frames no longer than this.
    const HOLD_MS = 30000;
    // What a write of `dispatch-live` redraws (the outputs of the callbacks it fires): Dash marks each element
    // data-dash-is-loading while a callback that draws it is on the way.
    const DRAWN = ['dispatch-detail', 'incident-list', 'task-board', 'dispatch-escalations', 'dispatch-handup-open',
        'dispatch-handdown-open'];
    // Frames gathered since the last write; plain JS like live_conn.js's merged state, outside Dash. `held`:
    // how many times a write waited for the page to be drawn; `heldSince`: when the one waiting now first did.
    const acc = {incidents: new Set(), snapshot: false, escalations: [], newEscalations: false, fresh: false,
        timer: null, lastAt: 0, n: 0, held: 0, heldSince: null};

    /** Tell whether a callback that a write of `dispatch-live` would fire again is still on its way. */
    function drawing() {
        return DRAWN.some((id) => {
            const e = document.getElementById(id);
            return e !== null && e.getAttribute('data-dash-is-loading') !== null;
        });
    }

    function onDispatchPage() {
        return document.getElementById('dispatch-page') !== null;  // (a dcc.Store has no element of its own)
    }

    function flush() {
        acc.timer = null;
        if (acc.fresh && onDispatchPage() && drawing()) {
            const now = Date.now();
            if (acc.heldSince === null) {
                acc.heldSince = now;
            }
            if (now - acc.heldSince < HOLD_MS) {  // gathered on, written once the page is drawn
                acc.held += 1;
                acc.timer = setTimeout(flush, COALESCE_MS);
                return;
            }
        }
        acc.heldSince = null;
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

    /** How many times a write of `dispatch-live` has waited for the page to be drawn (the browser tests read it). */
    ns.dispatchHeld = function () {
        return acc.held;
    };

    /** Fallback poll's tick -> `dispatch-pulse`, which the server's callbacks take instead of the tick itself: not
     * while what they draw is on its way (a tick would drop that answer as a frame would); the next tick comes. */
    ns.dispatchPulse = function (n) {
        if (drawing()) {
            acc.held += 1;
            return dc.no_update;
        }
        return n;
    };

    /** Connection mode -> whether the page's fallback poll is off (it is while the socket is live). */
    ns.dispatchPoll = function (conn) {
        return Boolean(conn && conn.mode === 'live');
    };

    /** The merge dialog's choices (buttons in the radio role) clicked -> [the incident chosen: the one clicked
     * last, null when none was; each choice's aria-checked]. Dash sees clicks, not a checked state. */
    ns.mergeChoice = function (clicks, ids) {
        const fired = ((dc.callback_context || {}).triggered || [])[0];
        let chosen = null;
        if (fired && fired.value) {  // a choice drawn anew fires with 0 clicks: nothing chosen yet
            chosen = JSON.parse(fired.prop_id.slice(0, fired.prop_id.lastIndexOf('.'))).index;
        }
        return [chosen, (ids || []).map((i) => String(i.index === chosen))];
    };

    /** The split dialog's reports (buttons in the checkbox role) clicked -> [the event ids ticked: those clicked an
     * odd number of times; each report's aria-checked]. */
    ns.splitTicked = function (clicks, ids) {
        const on = (clicks || []).map((n) => (n || 0) % 2 === 1);
        return [(ids || []).filter((i, k) => on[k]).map((i) => i.index), on.map(String)];
    };

    /** Return the query string `search` with `incident` set to `id` (removed when `id` is null), every other
     * parameter (the board's `department`) kept as it was. */
    function incidentSearch(search, id) {
        const params = new URLSearchParams(search || '');
        if (id === null || id === undefined) {
            params.delete('incident');
        } else {
            params.set('incident', String(id));
        }
        const out = params.toString();
        return out ? '?' + out : '';
    }

    /** The selected incident -> the address's `?incident=` (so that a reload, the language switch, which draws
     * the page anew from the address, and a shared link open the same incident); returns the query written.
     * The address is replaced, not pushed: picking incidents is not a trail of pages. Dash's own
     * '_dashprivate_pushstate' event then has the shell's dcc.Location read the whole address again (the router
     * reads its `search`); handing it `search` alone would leave its `href` behind, which it pushes back. */
    ns.dispatchUrl = function (selected) {
        const loc = root.location;
        const search = incidentSearch(loc.search, selected);
        if (search === loc.search) {
            return dc.no_update;
        }
        root.history.replaceState(root.history.state, '', loc.pathname + search + loc.hash);
        root.dispatchEvent(new root.CustomEvent('_dashprivate_pushstate'));
        return search;
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {dispatchFrame: ns.dispatchFrame, dispatchPoll: ns.dispatchPoll, flush: flush, acc: acc,
            mergeChoice: ns.mergeChoice, splitTicked: ns.splitTicked, incidentSearch: incidentSearch,
            dispatchUrl: ns.dispatchUrl,
            dispatchHeld: ns.dispatchHeld, dispatchPulse: ns.dispatchPulse, COALESCE_MS: COALESCE_MS, ESCALATIONS_KEPT: ESCALATIONS_KEPT,
            HOLD_MS: HOLD_MS};
    }
})(typeof window !== 'undefined' ? window : globalThis);
