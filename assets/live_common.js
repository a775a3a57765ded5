/* Helpers shared by the live pages' clientside callbacks: formatting, labels, component builders.
 * Pure functions only; the pages' state lives in dcc.Store components, never here.
 *
 * Every file in assets/ has the same shape. Dash loads them as plain <script>s, in alphabetical order, without a
 * bundler: each is a function called with the page's `window` (Node's `globalThis` under tests/js) that registers
 * its functions on `window.dash_clientside` (`.panorama` for the callbacks, `.panoramaUtil`, `.panoramaFrames`,
 * ... for helpers) and, when loaded by Node (`module` exists), exports the same functions. A file finds another
 * file's functions on `dash_clientside` when it is called, never when it is loaded: live_conn.js loads before
 * live_figures.js, live_frames.js and live_render.js. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const formats = new Map();  // Intl formatters are costly to build; one per (locale, zone, style)
    const shown = new Map();  // callback name -> what each of its outputs last wrote (JSON), for U.changed

    function formatter(locale, tz, options) {
        const key = locale + '|' + tz + '|' + JSON.stringify(options);
        if (!formats.has(key)) {
            formats.set(key, new Intl.DateTimeFormat(locale, Object.assign({timeZone: tz, hourCycle: 'h23'}, options)));
        }
        return formats.get(key);
    }

    const U = {
        /** Fill {name} placeholders of a translated text. */
        fmt(text, vars) {
            return String(text).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
        },
        /** An html component for a callback to return; string children are rendered as text by React. */
        el(type, props, children) {
            const p = Object.assign({}, props || {});
            if (children !== undefined) {
                p.children = children;
            }
            return {type: type, namespace: 'dash_html_components', props: p};
        },
        /** 'YYYY-MM-DD HH:MM:SS' in the city's time zone. */
        stamp(ms, tz) {
            return formatter('sv-SE', tz, {year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit',
                minute: '2-digit', second: '2-digit'}).format(new Date(ms));
        },
        /** 'HH:MM:SS' in the city's time zone. */
        timeOfDay(ms, tz) {
            return U.stamp(ms, tz).slice(11, 19);
        },
        /** The clock: date, weekday and time in the page's language. */
        clock(ms, tz, lang) {
            const locale = lang === 'en' ? 'en-GB' : 'zh-CN';
            return formatter(locale, tz, {month: 'short', day: 'numeric', weekday: 'short', hour: '2-digit',
                minute: '2-digit', second: '2-digit'}).format(new Date(ms));
        },
        /** How long ago, in words of the page's language. */
        ago(seconds, L) {
            if (seconds === null || seconds === undefined) {
                return L.never;
            }
            if (seconds < 60) {
                return U.fmt(L.seconds_ago, {s: Math.floor(seconds)});
            }
            if (seconds < 3600) {
                return U.fmt(L.minutes_ago, {m: Math.floor(seconds / 60)});
            }
            return U.fmt(L.hours_ago, {h: Math.floor(seconds / 3600)});
        },
        /** The ids of the inputs that fired the running callback ([] on its initial call). */
        triggered() {
            const ctx = dc.callback_context;
            return ((ctx && ctx.triggered) || []).map((t) => String(t.prop_id).split('.')[0]).filter(Boolean);
        },
        /** A callback's outputs `values`, each one that is what it last wrote replaced by no_update; all of them on
         *  the callback's initial call (a page drawn anew shows the server's values). Dash treats every `children`
         *  it writes as a change of the page's layout (its paths computed again: a pass over every component),
         *  even a text it already shows; the tiles wrote eight of them a second (docs/performance.md, issue 15). */
        changed(name, values) {
            const keys = values.map((v) => JSON.stringify(v));
            const before = shown.get(name);
            shown.set(name, keys);
            if (!U.triggered().length || !before || before.length !== keys.length) {
                return values;
            }
            return values.map((v, i) => (keys[i] === before[i] ? dc.no_update : v));
        },
        /** The window of the live state that the view shows, or null before any state arrived. */
        windowOf(store, view) {
            const state = store && store.state;
            return (state && state.windows && state.windows[(view && view.window) || '1h']) || null;
        },
        /** Each domain's freshness now: ages keep counting between frames, 'stale' past its threshold. Only a
         *  received state calls a feed stale: its age past the threshold, or the feed in it with no event ever
         *  (age null). Before any state (none rendered, none polled or sent yet) each feed is unknown, not stale:
         *  the connection indicator says connecting/polling/lost, and the banner must not claim what no state
         *  said (a heavy /dispatch showed "stale feeds" for as long as its first state took to be drawn). */
        feedsNow(store, config, now) {
            const feeds = (store && store.state && store.state.feeds) || null;
            const since = Math.max(0, now - ((store && (store.feeds_at || store.served_at)) || now)) / 1000;
            return config.domains.map((d) => {
                const known = feeds !== null && typeof feeds[d] === 'object' && feeds[d] !== null;
                const f = known ? feeds[d] : {};
                const age = f.last_event_age_s === null || f.last_event_age_s === undefined
                    ? null : f.last_event_age_s + since;
                const limit = (config.stale_after || {})[d] || 300;
                return {domain: d, age: age, rate: f.rate_per_min || 0, known: known,
                    stale: known && (age === null || age > limit)};
            });
        },
        /** The value of a map measure for one district entry of a window. */
        measure(entry, measure, domains) {
            if (!entry) {
                return 0;
            }
            if (measure === 'risk') {
                return entry.risk || 0;
            }
            const counts = entry.counts || {};
            if (measure === 'all') {
                return domains.reduce((sum, d) => sum + (counts[d] || 0), 0);
            }
            return counts[measure] || 0;
        },
    };

    dc.panoramaUtil = U;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js) require the file
        module.exports = U;
    }
})(typeof window !== 'undefined' ? window : globalThis);
