/* /m, the commander on a phone: the one line of city status, and a refresh of the decision lists whenever a
 * gateway frame carries dispatch changes (incidents, tasks, escalations) or a fresh snapshot.
 * The socket is live_conn.js's, which hands every frame to `panorama.dispatchFrame` (dispatch_live.js, the
 * /dispatch page's). That hook is wrapped here, not replaced: Dash loads assets in alphabetical order, so
 * dispatch_live.js has set it by now, and each page's half ignores frames on the other pages.
 *
 * A tap changes its card at once, before the server answers: acknowledging hides the card, re-dispatching
 * hides that department's row, escalating or approving hides that button. What was hidden stays hidden
 * through any re-render of the list until the list comes back without it (the server agrees), the server
 * says the tap was not done (an `.m-err` confirmation), or PENDING_MS pass: so the live update that
 * follows never brings the card back for a moment. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const BUMP_MS = 300;  // frames of one burst cause one refresh
    const PENDING_MS = 15000;  // a tap the server has not settled by then shows its card as the list says
    const pending = new Map();  // data-key of what a tap hid -> when to give up waiting
    let handled = null;  // the refusal on screen at the last tap (a new one has a new element: its key changes)
    let timer = null;
    const firstSeen = new WeakMap();  // a minutes-late element -> {at: its server clock, when: the phone's then}
    const LATE_TICK_MS = 15000;

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

    /** What a tap hides at once: the whole card, the department's row, or the button itself. */
    function hideLevel(act) {
        if (act === 'acknowledge') {
            return 'card';
        }
        return act === 'redispatch' ? 'row' : 'button';
    }

    /** Settle the pending taps against the list shown: `find(key)` is its element or null. Returns what to do
     *  with each: 'hide' (still waiting), 'show' (waited too long), 'gone' (the list no longer has it). */
    function sweep(waiting, find, now) {
        const out = [];
        for (const [key, until] of waiting) {
            const el = find(key);
            const what = !el ? 'gone' : (until <= now ? 'show' : 'hide');
            if (what !== 'hide') {
                waiting.delete(key);
            }
            out.push([key, what, el]);
        }
        return out;
    }

    /** Minutes late now: the deadline `due`, the server's clock `at` when the row was drawn, the phone's clock
     *  `seen` when it first showed the row and `now` (both the phone's: their difference is all it trusts). */
    function lateMinutes(due, at, seen, now) {
        return Math.max(0, Math.floor((at + (now - seen) - due) / 60000));
    }

    /** Count every shown row's minutes late on (the list itself is redrawn only when a dispatch change comes). */
    function tickLate(now) {
        const list = document.getElementById('decision-list');
        if (!list || !list.querySelectorAll) {
            return;
        }
        for (const el of list.querySelectorAll('.m-late[data-due]')) {
            let seen = firstSeen.get(el);
            if (!seen || seen.at !== el.dataset.at) {  // new, or drawn again by the server (React keeps the element)
                seen = {at: el.dataset.at, when: now};
                firstSeen.set(el, seen);
            }
            const n = lateMinutes(Number(el.dataset.due), Number(el.dataset.at), seen.when, now);
            const text = el.dataset.tpl.replace('{n}', String(n));
            const node = el.firstChild;
            // write into React's own text node: replacing it would leave React updating a detached one
            if (node && node.nodeType === 3) {
                if (node.nodeValue !== text) {
                    node.nodeValue = text;
                }
            } else if (el.textContent !== text) {
                el.textContent = text;
            }
        }
    }

    function findIn(key) {
        const list = document.getElementById('decision-list');
        return list ? list.querySelector('[data-key="' + String(key).replace(/["\\]/g, '\\$&') + '"]') : null;
    }

    function reapply() {
        if (pending.size === 0) {
            return;
        }
        const box = document.getElementById('mobile-message');
        const refusal = box ? box.querySelector('.m-err') : null;
        if (refusal && refusal !== handled) {  // not done: show everything as it was
            for (const key of pending.keys()) {
                const el = findIn(key);
                if (el) {
                    el.classList.remove('m-gone');
                }
            }
            pending.clear();
            return;
        }
        for (const [, what, el] of sweep(pending, findIn, Date.now())) {
            if (what === 'hide' && !el.classList.contains('m-gone')) {
                el.classList.add('m-gone');
            } else if (what === 'show') {
                el.classList.remove('m-gone');
            }
        }
    }

    /** A tap on a card's button: hide what it settles, at once (Dash's own click handler has run by now). */
    function onTap(event) {
        const btn = event.target && event.target.closest ? event.target.closest('#decision-list button.m-btn') : null;
        if (!btn) {
            return;
        }
        const level = hideLevel(btn.dataset.act);
        const target = level === 'card' ? btn.closest('.m-item') : (level === 'row' ? btn.closest('.m-row') : btn);
        if (!target || !target.dataset.key) {
            return;
        }
        const box = document.getElementById('mobile-message');
        handled = box ? box.querySelector('.m-err') : null;  // an earlier refusal must not undo this tap
        pending.set(target.dataset.key, Date.now() + PENDING_MS);
        target.classList.add('m-gone');
    }

    if (typeof document !== 'undefined' && typeof document.addEventListener === 'function') {
        document.addEventListener('click', onTap);
        if (typeof MutationObserver !== 'undefined') {
            new MutationObserver(() => {
                reapply();
                tickLate(Date.now());  // a redrawn row is stamped when it appears
            }).observe(document.documentElement, {childList: true, subtree: true});
        }
        if (typeof setInterval === 'function') {
            setInterval(() => tickLate(Date.now()), LATE_TICK_MS);
        }
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
            // a part's words held on one line (no-break spaces, its own words' too): on a phone the line wraps
            // between parts, never inside one (layouts/mobile.py _whole)
            const whole = (...words) => words.join(' ').replace(/ /g, '\u00a0');
            const parts = [T.status_line];
            for (const d of config.domains) {
                parts.push(whole(T['s_' + d], (win.totals || {})[d] || 0));
            }
            let top = null;
            for (const [code, entry] of Object.entries(win.districts || {})) {
                if (top === null || (entry.risk || 0) > top.risk) {
                    top = {code: code, risk: entry.risk || 0};
                }
            }
            if (top !== null && Math.round(top.risk) > 0) {
                const name = (config.districts[top.code] || {}).short || top.code;
                parts.push(whole(T.top_risk, name, Math.round(top.risk)));
            }
            return parts.join(' · ');
        },
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {status: dc.panoramaMobile.status, mobileFrame: mobileFrame, dispatchFrame: ns.dispatchFrame,
            BUMP_MS: BUMP_MS, PENDING_MS: PENDING_MS, hideLevel: hideLevel, sweep: sweep, lateMinutes: lateMinutes,
            tickLate: tickLate};
    }
})(typeof window !== 'undefined' ? window : globalThis);
