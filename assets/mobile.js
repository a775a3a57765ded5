/* /m, the commander on a phone: the one line of city status, and a refresh of the decision lists whenever a
 * gateway frame carries dispatch changes (incidents, tasks, escalations) or a fresh snapshot.
 * The socket is live_conn.js's, which hands every frame to `panorama.dispatchFrame` (dispatch_live.js, the
 * /dispatch page's). That hook is wrapped here, not replaced: Dash loads assets in alphabetical order, so
 * dispatch_live.js has set it by now, and each page's half ignores frames on the other pages. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const BUMP_MS = 300;  // frames of one burst cause one refresh
    let timer = null;

    function onMobilePage() {
        return document.getElementById('mobile-page') !== null;
    }

    function mobileFrame(msg) {
        if (!msg || timer !== null || !onMobilePage()) {
            return;
        }
        const dispatchChange = msg.type === 'delta' && (msg.incidents || msg.tasks || msg.escalations);
        if (msg.type !== 'snapshot' && !dispatchChange) {
            return;  // counts and events only: the status line follows them through live-windows
        }
        timer = setTimeout(() => {
            timer = null;
            if (onMobilePage()) {
                dc.set_props('mobile-bump', {data: {seq: msg.seq, at: Date.now()}});
            }
        }, BUMP_MS);
    }

    const inner = ns.dispatchFrame;
    ns.dispatchFrame = function (msg) {
        if (inner) {
            inner(msg);
        }
        mobileFrame(msg);
    };

    dc.panoramaMobile = {
        /** Live windows -> "last hour · Security 12 · Traffic 40 · … · highest risk Futian 35". */
        status(windows, config) {
            const win = windows && windows.state && windows.state.windows && windows.state.windows['1h'];
            const T = config.mobile;
            if (!win) {
                return T.status_loading;
            }
            const parts = [T.status_line];
            for (const d of config.domains) {
                parts.push(T['s_' + d] + ' ' + ((win.totals || {})[d] || 0));
            }
            let top = null;
            for (const [code, entry] of Object.entries(win.districts || {})) {
                if (top === null || (entry.risk || 0) > top.risk) {
                    top = {code: code, risk: entry.risk || 0};
                }
            }
            if (top !== null && Math.round(top.risk) > 0) {
                const name = (config.districts[top.code] || {}).short || top.code;
                parts.push(T.top_risk + ' ' + name + ' ' + Math.round(top.risk));
            }
            return parts.join(' · ');
        },
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {status: dc.panoramaMobile.status, mobileFrame: mobileFrame, dispatchFrame: ns.dispatchFrame,
            BUMP_MS: BUMP_MS};
    }
})(typeof window !== 'undefined' ? window : globalThis);
