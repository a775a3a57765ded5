/* After-action replay: play a replayed page (/ or /wall with ?at=&speed=, layouts/replay.py) forward.
 *
 * The replayed time runs from the page's minute at its speed (0 paused, 1, 5, 15, 60); each time it enters a new
 * minute, that minute's state is asked of the server (GET /api/summary?live=1&at=) and drawn through the live
 * page's own renderers (live_conn.js replayState). Nothing is rebuilt here from live frames: a replayed page
 * opens no socket. Caught up with now, or its address no longer asking for a replay, the page goes live. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const ns = (dc.panorama = dc.panorama || {});
    const MINUTE_MS = 60000;
    // The running replay of the page on screen; `key` names that page, so a page opened again starts afresh.
    const rp = {key: null, at: 0, wall: 0, speed: 0, minute: null, seq: 0, live: '/', leaving: false};

    /** The replayed time at wall-clock `now`. */
    function position(now) {
        return rp.at + (now - rp.wall) * rp.speed;
    }

    /** An RFC 3339 time (UTC, whole seconds) of the minute `ms` falls in. */
    function isoMinute(ms) {
        return new Date(ms - (ms % MINUTE_MS)).toISOString().replace(/\.\d{3}Z$/, 'Z');
    }

    /** The page's own address for the replay as it stands (reloaded, it resumes there). */
    function address(ms) {
        return rp.live + '?at=' + encodeURIComponent(isoMinute(ms)) + '&speed=' + rp.speed;
    }

    function start(cfg, now) {
        rp.key = JSON.stringify([cfg.at, cfg.now, cfg.live]);
        Object.assign(rp, {at: cfg.at, wall: now, speed: cfg.speed, live: cfg.live, leaving: false,
            minute: cfg.at - (cfg.at % MINUTE_MS)});  // that minute is drawn already, by the server
    }

    function leave() {
        if (!rp.leaving) {
            rp.leaving = true;
            root.location.assign(rp.live);
        }
    }

    /** Ask the server for the minute `m` and draw it; an answer that a later request overtook is dropped. */
    function fetchMinute(m) {
        rp.seq += 1;
        const seq = rp.seq;
        return fetch('/api/summary?live=1&window=1h&at=' + encodeURIComponent(isoMinute(m)),
            {cache: 'no-store', credentials: 'same-origin', headers: {Accept: 'application/json'}})
            .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
            .then((doc) => (seq === rp.seq && ns.replayState ? ns.replayState(doc.live) : false))
            .catch(() => {
                if (seq === rp.seq) {
                    rp.minute = null;  // asked again at the next tick
                }
                return false;
            });
    }

    /** The replayed time now, or null when no replay runs (live_conn.js's clock reads it). */
    ns.replayNow = function () {
        return rp.key === null ? null : position(Date.now());
    };

    /** Tick or a changed replay -> [the replayed time, the speed in words]. */
    ns.replayTick = function (_n, cfg, config) {
        const nu = dc.no_update;
        if (!cfg || !config) {
            return [nu, nu];
        }
        const now = Date.now();
        if (rp.key !== JSON.stringify([cfg.at, cfg.now, cfg.live])) {
            start(cfg, now);
        }
        const search = (root.location && root.location.search) || '';
        if (!/[?&]at=/.test(search) || position(now) >= now) {
            leave();  // the address went live (a navigation link), or the replay caught up with now
            return [nu, nu];
        }
        const pos = position(now);
        const minute = pos - (pos % MINUTE_MS);
        if (minute !== rp.minute) {
            rp.minute = minute;
            fetchMinute(minute);
            if (root.history && root.history.replaceState) {
                root.history.replaceState(root.history.state, '', address(pos));
            }
        }
        const L = config.labels;
        return [dc.panoramaUtil.clock(pos, config.tz, config.lang),
            rp.speed === 0 ? L.replay_paused : dc.panoramaUtil.fmt(L.replay_speed, {n: rp.speed})];
    };

    /** A speed button or the scrubber (the desk's) -> the replay restarted from where it is, or from the
     *  scrubbed minute, at the speed chosen; [each speed button's class]. */
    ns.replayControls = function (...args) {
        const cfg = args[args.length - 1];
        const nu = dc.no_update;
        const fired = dc.panoramaUtil.triggered();
        if (!cfg || !fired.length || rp.key === null) {
            return [nu, nu, nu, nu, nu];
        }
        const now = Date.now();
        let at = position(now);
        let speed = rp.speed;
        for (const id of fired) {
            if (id === 'replay-scrub') {
                const value = Number(args[args.length - 2]);
                if (Number.isFinite(value)) {
                    at = Math.min(now, Math.max(cfg.floor, value * MINUTE_MS));
                }
            } else if (id.startsWith('replay-speed-')) {
                speed = Number(id.slice('replay-speed-'.length));
            }
        }
        Object.assign(rp, {at: at, wall: now, speed: speed, minute: null});  // the next tick asks for `at`'s minute
        return [0, 1, 5, 15, 60].map((n) => 'replay-speed-btn' + (n === speed ? ' on' : ''));
    };

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {rp: rp, position: position, isoMinute: isoMinute, address: address,
            replayTick: ns.replayTick, replayControls: ns.replayControls, replayNow: ns.replayNow};
    }
})(typeof window !== 'undefined' ? window : globalThis);
