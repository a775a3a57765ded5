/* The alert-list's live updates on /, /wall and /m, and the trail's on /alerts. assets/live_conn.js hands every gateway frame to
 * `panorama.dispatchFrame`; that hook is wrapped here, not replaced (dispatch_live.js, loaded before this file,
 * set it; mobile.js, loaded after, wraps this one). A delta that carries `alerts`, or a snapshot (after a
 * reconnect anything may have changed), writes the `alert-bump` store at most once per BUMP_MS; the server then
 * redraws the list from the database (callbacks/alerts.py), as the reader's role may see it. On /alerts the same
 * frames write `alerts-live` instead, and the trail is read again (callbacks/alerts_page.py).
 * The first frame after a quiet spell is drawn at once (a new red alert on a calm wall must not wait out a
 * burst window that has nothing to coalesce: bench/alerts.py); the frames that follow within BUMP_MS of a
 * redraw are one more redraw at the window's end. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const BUMP_MS = 300;  // the frames of one burst cause one redraw
    const acc = {timer: null, n: 0, seq: null, last: -Infinity};  // last: when the store was last written

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
            acc: acc, BUMP_MS: BUMP_MS};
    }
})(typeof window !== 'undefined' ? window : globalThis);
