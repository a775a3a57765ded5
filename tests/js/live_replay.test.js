'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, NO_UPDATE, fakeDocument, load, stub} = require('./helpers');

const MIN = 60000;
const AT = Date.UTC(2026, 11, 5, 2, 30, 0);  // 2026-12-05 10:30 in Shenzhen
const REPLAY = {at: AT, speed: 60, floor: AT - 80 * 86400000, now: AT + 86400000, live: '/wall', tz: 'Asia/Shanghai'};
const CONFIG = {lang: 'en', tz: 'Asia/Shanghai', ws_port: 8765, max_attempts: 3, domains: [], stale_after: {},
    summary_url: '/api/summary?live=1', replay: REPLAY,
    labels: {replay_paused: 'paused', replay_speed: '{n}× speed', conn_replay: 'replay'}};

/** A replayed page as Dash loads it: live_conn.js (the live state) and live_replay.js. */
function page(t, search = '?at=x&speed=60') {
    const h = load('live_common', 'live_conn', 'live_frames', 'live_replay');
    stub(t, 'document', fakeDocument({'live-indicator': new FakeElement('span')}));
    const loc = {search: search, assigned: []};
    loc.assign = (url) => loc.assigned.push(url);
    stub(t, 'location', loc);
    const replaced = [];
    stub(t, 'history', {state: null, replaceState: (_s, _t, url) => replaced.push(url)});
    h.C = h.mods.live_conn;
    h.R = h.mods.live_replay;
    h.loc = loc;
    h.replaced = replaced;
    h.fire();
    h.C.intake(null, 0, {state: {windows: {w: 0}}}, {mode: 'connecting'}, CONFIG);  // the server-drawn minute
    return h;
}

function answering(t, byUrl) {
    const fetched = [];
    stub(t, 'fetch', (url) => {
        fetched.push(url);
        const m = /at=([^&]+)/.exec(url);
        return Promise.resolve({ok: true, json: () => ({live: byUrl(decodeURIComponent(m[1]))})});
    });
    return fetched;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('a replayed page never connects: no socket, no polling, its indicator says replay', (t) => {
    const h = page(t);
    let opened = 0;
    stub(t, 'fetch', () => {
        opened += 1;
        return Promise.resolve({ok: true, json: () => ({})});
    });
    h.fire('live-probe');
    const [c, , pollOff, retryOff] = h.C.connection({up: true}, null, 0, null, CONFIG, null);
    assert.deepEqual([c.mode, pollOff, retryOff], ['replay', true, true]);
    assert.equal(opened, 0);  // not even a ticket asked for
    assert.deepEqual(h.C.connection({up: true}, null, 1, c, CONFIG, null), Array(5).fill(NO_UPDATE));
    assert.equal(h.C.status({}, 0, c, CONFIG)[0], 'replay');
});

test('a live frame does not repaint a replayed page', (t) => {
    const h = page(t);
    const before = h.C.live.s;
    h.C.takeFrame(JSON.stringify({v: 1, type: 'snapshot', seq: 9, state: {windows: {w: 99}}}));
    assert.equal(h.C.live.s, before);
});

test('each new replayed minute is asked of the server and drawn; a late answer is dropped', async (t) => {
    const h = page(t);
    const t0 = Date.now();
    t.mock.method(Date, 'now', () => t0);
    const fetched = answering(t, (at) => ({windows: {w: at}}));
    assert.deepEqual(h.R.replayTick(1, REPLAY, CONFIG)[1], '60× speed');
    assert.deepEqual(fetched, []);  // the page's own minute came drawn by the server
    Date.now.mock.mockImplementation(() => t0 + 2000);  // two seconds at 60x: two minutes on
    const [clock] = h.R.replayTick(2, REPLAY, CONFIG);
    assert.match(clock, /10:32/);
    assert.deepEqual(fetched, ['/api/summary?live=1&window=1h&at=2026-12-05T02%3A32%3A00Z']);
    assert.deepEqual(h.replaced, ['/wall?at=2026-12-05T02%3A32%3A00Z&speed=60']);
    await settle();
    assert.deepEqual(h.C.live.s.state, {windows: {w: '2026-12-05T02:32:00Z'}});
    assert.equal(h.C.live.s.source, 'replay');
    // two minutes asked in a row: the first one's answer, arriving last, is not drawn over the second's
    let release;
    stub(t, 'fetch', (url) => (url.includes('02%3A33') ? new Promise((r) => {
        release = () => r({ok: true, json: () => ({live: {windows: {w: 'stale'}}})});
    }) : Promise.resolve({ok: true, json: () => ({live: {windows: {w: 'fresh'}}})})));
    Date.now.mock.mockImplementation(() => t0 + 3000);
    h.R.replayTick(3, REPLAY, CONFIG);
    Date.now.mock.mockImplementation(() => t0 + 4000);
    h.R.replayTick(4, REPLAY, CONFIG);
    await settle();
    release();
    await settle();
    assert.deepEqual(h.C.live.s.state, {windows: {w: 'fresh'}});
});

test('paused, the replayed time stands; the desk\'s buttons and scrubber restart it', (t) => {
    const h = page(t);
    const t0 = Date.now();
    t.mock.method(Date, 'now', () => t0);
    answering(t, () => ({}));
    const paused = Object.assign({}, REPLAY, {speed: 0});
    assert.deepEqual(h.R.replayTick(1, paused, CONFIG)[1], 'paused');
    Date.now.mock.mockImplementation(() => t0 + 600000);
    assert.match(h.R.replayTick(2, paused, CONFIG)[0], /10:30:00/);
    h.fire('replay-speed-15');
    const classes = h.R.replayControls(0, 0, 0, 1, 0, null, paused);
    assert.deepEqual(classes, ['replay-speed-btn', 'replay-speed-btn', 'replay-speed-btn', 'replay-speed-btn on',
        'replay-speed-btn']);
    Date.now.mock.mockImplementation(() => t0 + 604000);  // 4 s at 15x: one minute on
    assert.match(h.R.replayTick(3, paused, CONFIG)[0], /10:31:00/);
    h.fire('replay-scrub');
    h.R.replayControls(0, 0, 0, 1, 0, (AT - 3600000) / MIN, paused);  // scrubbed an hour back
    assert.match(h.R.replayTick(4, paused, CONFIG)[0], /09:30:00/);
});

test('caught up with now, or the address gone live, the page goes live', (t) => {
    const h = page(t);
    const t0 = Date.now();
    const recent = Object.assign({}, REPLAY, {at: t0 - 2 * MIN, now: t0});
    t.mock.method(Date, 'now', () => t0);
    answering(t, () => ({}));
    h.R.replayTick(1, recent, CONFIG);
    assert.deepEqual(h.loc.assigned, []);
    Date.now.mock.mockImplementation(() => t0 + 3000);  // 3 s at 60x: past now
    h.R.replayTick(2, recent, CONFIG);
    assert.deepEqual(h.loc.assigned, ['/wall']);
    const other = page(t, '');
    other.R.replayTick(1, REPLAY, CONFIG);
    assert.deepEqual(other.loc.assigned, ['/wall']);
});
