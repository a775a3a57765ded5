/* The major-incident mode on /, /wall and /m. assets/live_conn.js hands every gateway frame to
 * `panorama.dispatchFrame`; that hook is wrapped here, not replaced (live_alerts.js, loaded before this file,
 * wrapped it; mobile.js, loaded after, wraps this one). A snapshot or a delta whose active major incidents differ
 * from the last ones seen writes the `major-bump` store at once: the server then draws the command view (or
 * peacetime) from the database (callbacks/major.py). While one is active, a frame with news (events, incidents,
 * tasks, alerts) redraws it at most once per NEWS_MS. The deadlines' countdowns count down here, every second. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const NEWS_MS = 2000;  // the live events in range redraw at most this often
    const acc = {key: null, n: 0, active: false, lastNews: -Infinity};

    function onMajorPage() {
        return typeof document !== 'undefined' && document.getElementById('major-slot') !== null;
    }

    /** The active major incidents a frame carries, or null when it says nothing of them. */
    function majorsOf(msg) {
        if (!msg) {
            return null;
        }
        if (msg.type === 'snapshot') {
            return msg.state && Array.isArray(msg.state.majors) ? msg.state.majors : null;
        }
        return msg.type === 'delta' && Array.isArray(msg.majors) ? msg.majors : null;
    }

    /** What tells one list of majors from another: each incident and its level. */
    function majorsKey(majors) {
        return JSON.stringify(majors.map((m) => [m && m.incident ? m.incident.id : null, m ? m.level : null]));
    }

    function carriesNews(msg) {
        return Boolean(msg && msg.type === 'delta' && ['events', 'incidents', 'tasks', 'alerts'].some(
            (k) => Array.isArray(msg[k]) && msg[k].length > 0));
    }

    /** One frame -> 'majors' (they changed: redraw now), 'news' (redraw the view shown) or null. */
    function decide(msg, now) {
        const majors = majorsOf(msg);
        if (majors !== null) {
            const key = majorsKey(majors);
            acc.active = majors.length > 0;
            if (key !== acc.key) {
                acc.key = key;
                acc.lastNews = now;
                return 'majors';
            }
        }
        if (acc.active && carriesNews(msg) && now - acc.lastNews >= NEWS_MS) {
            acc.lastNews = now;
            return 'news';
        }
        return null;
    }

    function majorFrame(msg) {
        if (!onMajorPage()) {
            return;
        }
        const why = decide(msg, Date.now());
        if (why !== null && dc.set_props) {
            acc.n += 1;
            dc.set_props('major-bump', {data: {n: acc.n, why: why}});
        }
    }

    /** A deadline's countdown in words: "<what> <m> min left" or "<what> <m> min overdue" (templates hold {m}). */
    function countdownText(dueMs, nowMs, what, left, over) {
        const m = Math.floor(Math.abs(dueMs - nowMs) / 60000);
        return what + ' ' + (dueMs >= nowMs ? left : over).replace('{m}', String(m));
    }

    function tickCountdowns() {
        if (typeof document === 'undefined') {
            return;
        }
        const now = Date.now();
        for (const el of document.querySelectorAll('.major-due[data-due]')) {
            const due = Number(el.dataset.due);
            const text = countdownText(due, now, el.dataset.what, el.dataset.left, el.dataset.over);
            if (el.textContent !== text) {
                el.textContent = text;
            }
            el.classList.toggle('major-over', due < now);
        }
    }

    /** A tap on a major incident's tab on / -> the incident pinned (a redrawn tab fires with 0 clicks: nothing);
     *  the callback context may lack `triggered` while the page changes. */
    ns.pinMajor = function () {
        const ctx = dc.callback_context;
        const hit = ((ctx && ctx.triggered) || []).find((t) => t && t.value);
        if (!hit) {
            return dc.no_update;
        }
        const id = String(hit.prop_id);
        try {
            const pinned = JSON.parse(id.slice(0, id.lastIndexOf('.')))['major-pin'];
            return Number.isInteger(pinned) ? pinned : dc.no_update;
        } catch (err) {
            return dc.no_update;
        }
    };

    const inner = ns.dispatchFrame;
    ns.dispatchFrame = function (msg) {
        if (inner) {
            inner(msg);
        }
        majorFrame(msg);
    };
    if (typeof document !== 'undefined' && root.setInterval) {
        root.setInterval(tickCountdowns, 1000);
    }

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {majorsOf: majorsOf, majorsKey: majorsKey, decide: decide, countdownText: countdownText,
            dispatchFrame: ns.dispatchFrame, pinMajor: ns.pinMajor, acc: acc, NEWS_MS: NEWS_MS};
    }
})(typeof window !== 'undefined' ? window : globalThis);
