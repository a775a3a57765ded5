/* Getting around: the shell's navigation, and where signing in leads.
 *
 * - The navigation's links are plain anchors, so that the current page's can carry aria-current (dcc.Link takes
 *   no aria-* prop; layouts/shell.py). A plain click on one (mouse or Enter; no modifier key, no other target)
 *   goes to its page inside the app exactly as dcc.Link does: pushState, then Dash's own '_dashprivate_pushstate'
 *   event, which every dcc.Location listens to. Anything else (a new tab, a middle click, no script) loads the page.
 * - After signing in with no page asked for, a person lands on their role's page (dashboard/core/roles.py
 *   LANDING: a desk's and a phone's). Only the browser knows whether it is a phone: a mobile user agent or a
 *   narrow screen. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const LINKS = '.shell-nav a[href]';
    const PHONE_WIDTH = '(max-width: 700px)';
    const PHONE_AGENT = /Mobi|Android|iPhone|iPod|Windows Phone/i;

    /** Tell whether a click asks for the link in this tab: the main button, no modifier key, not yet handled. */
    function plainClick(e) {
        return e.button === 0 && !e.defaultPrevented && !(e.metaKey || e.ctrlKey || e.shiftKey || e.altKey);
    }

    /** Follow a plain click on a navigation link inside the app; return whether it did (else the browser loads). */
    function follow(e, win) {
        const link = e.target && typeof e.target.closest === 'function' ? e.target.closest(LINKS) : null;
        if (!link || !plainClick(e) || (link.target && link.target !== '_self')) {
            return false;
        }
        const url = new URL(link.getAttribute('href'), win.location.href);
        if (url.origin !== win.location.origin) {
            return false;
        }
        e.preventDefault();
        win.history.pushState({}, '', url.pathname + url.search + url.hash);
        win.dispatchEvent(new win.CustomEvent('_dashprivate_pushstate'));
        win.scrollTo(0, 0);
        return true;
    }

    /** Tell whether `win` is a phone's: a mobile user agent (or its client hint), or a narrow screen. */
    function isPhone(win) {
        const nav = win.navigator || {};
        if (nav.userAgentData && nav.userAgentData.mobile === true) {
            return true;
        }
        if (PHONE_AGENT.test(nav.userAgent || '')) {
            return true;
        }
        return Boolean(typeof win.matchMedia === 'function' && win.matchMedia(PHONE_WIDTH).matches);
    }

    /** Return the page `role` lands on from `table` (role -> [desk, phone]); '/' for a role it does not hold. */
    function landing(role, table, phone) {
        const row = Object.prototype.hasOwnProperty.call(table || {}, role) ? table[role] : null;
        const path = Array.isArray(row) ? row[phone ? 1 : 0] : null;
        return typeof path === 'string' && path.startsWith('/') && !path.startsWith('//') ? path : '/';
    }

    /** Return where signing in leads: `next` when a page was asked for (the root, where an anonymous visitor to
     * the site is sent back to, asks for none), else the role's landing page. */
    function destination(next, role, table, phone) {
        return typeof next === 'string' && next !== '' && next !== '/' ? next : landing(role, table, phone);
    }

    const N = {plainClick: plainClick, follow: follow, isPhone: isPhone, landing: landing,
               destination: destination, PHONE_WIDTH: PHONE_WIDTH};
    dc.panoramaNav = N;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = N;
    } else if (root.document) {
        root.document.addEventListener('click', function (e) {
            follow(e, root);
        });
    }
}(typeof window !== 'undefined' ? window : globalThis));
