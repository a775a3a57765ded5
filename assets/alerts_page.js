/* /alerts in the browser: its filter buttons show their state at once (the server reads the same parity of
 * presses: callbacks/alerts_page.py `ticked`). */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});

    /** A filter button's aria-pressed after `n` presses: on after an odd number. */
    function pressed(n) {
        return (Number.isInteger(n) && n % 2 === 1) ? 'true' : 'false';
    }

    const A = {pressed: pressed};
    dc.panoramaAlertsPage = A;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = A;
    }
}(typeof window !== 'undefined' ? window : globalThis));
