/* /alerts in the browser: its filter buttons show their state at once (the server reads the same parity of
 * presses: callbacks/alerts_page.py `ticked`); its slow fallback poll runs only while the gateway's socket is not
 * live (the trail follows the socket's alert frames otherwise: live_alerts.js writes `alerts-live`). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});

    /** A filter button's aria-pressed after `n` presses: on after an odd number. */
    function pressed(n) {
        return (Number.isInteger(n) && n % 2 === 1) ? 'true' : 'false';
    }

    /** Connection mode -> whether the fallback poll is off: it is while the socket is live. */
    function pollOff(conn) {
        return Boolean(conn && conn.mode === 'live');
    }

    const A = {pressed: pressed, pollOff: pollOff};
    dc.panoramaAlertsPage = A;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = A;
    }
}(typeof window !== 'undefined' ? window : globalThis));
