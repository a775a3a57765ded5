'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, NO_UPDATE, fakeDocument, load, stub} = require('./helpers');

const NU5 = [NO_UPDATE, NO_UPDATE, NO_UPDATE, NO_UPDATE, NO_UPDATE];
const CONFIG = {ws_port: 8765, max_attempts: 3, domains: ['traffic'], stale_after: {traffic: 60}, lang: 'en',
    summary_url: '/api/summary', labels: {traffic: 'Traffic', banner_stale: 'Stale: {feeds}', banner_lost: 'Lost',
        banner_poll_failed: 'Poll failed {s}s', banner_bus_down: 'Bus down', conn_live: 'Live',
        conn_polling: 'Polling'}};

/** The live page as Dash loads it (alphabetical: live_conn.js before live_frames.js). */
function page(t, {onPage = true} = {}) {
    const h = load('live_common', 'live_conn', 'live_frames');
    const doc = fakeDocument(onPage ? {'live-indicator': new FakeElement('span')} : {});
    stub(t, 'document', doc);
    h.C = h.mods.live_conn;
    h.doc = doc;
    h.dispatched = [];
    h.dc.panorama.dispatchFrame = (msg) => h.dispatched.push(msg);
    return h;
}

/** The page's first render: live_conn.js starts from the server-rendered store. */
function firstRender(h, store) {
    h.fire();
    return h.C.intake(null, 0, store, {mode: 'connecting'}, CONFIG);
}

const frame = (obj) => JSON.stringify(Object.assign({v: 1}, obj));
const writes = (h, id) => h.calls.filter(([cid]) => cid === id).map(([, props]) => props.data);

test('socketUrl: the configured address, else the page\'s host on the gateway port, wss under https', (t) => {
    const h = page(t);
    assert.equal(h.C.socketUrl({ws_url: 'wss://gw.example/ws'}), 'wss://gw.example/ws');
    stub(t, 'location', {protocol: 'https:', hostname: 'city.example'});
    assert.equal(h.C.socketUrl({ws_port: 8765}), 'wss://city.example:8765/');
    globalThis.location = {protocol: 'http:', hostname: '10.0.0.2'};
    assert.equal(h.C.socketUrl({ws_port: 9000}), 'ws://10.0.0.2:9000/');
});

test('backoff doubles from 1 s, is capped at 30 s, and jitters by +-20%', (t) => {
    const h = page(t);
    const random = t.mock.method(Math, 'random', () => 0.5);
    assert.deepEqual([0, 1, 2, 3, 5, 6, 10].map(h.C.backoff), [1000, 1000, 2000, 4000, 16000, 30000, 30000]);
    random.mock.mockImplementation(() => 0);
    assert.equal(h.C.backoff(2), 1600);
    random.mock.mockImplementation(() => 0.999999);
    assert.equal(h.C.backoff(20), 36000);
});

test('mergeEvents: newest first, one per (domain, id), capped', (t) => {
    const {C} = page(t);
    const e = (domain, id, tag) => ({domain, id, tag});
    const merged = C.mergeEvents([e('traffic', '1', 'new'), e('security', '1', 'new')],
        [e('traffic', '1', 'old'), e('traffic', '2', 'old'), e('traffic', '3', 'old')], 3);
    assert.deepEqual(merged.map((x) => [x.domain, x.id, x.tag]),
        [['traffic', '1', 'new'], ['security', '1', 'new'], ['traffic', '2', 'old']]);
    assert.deepEqual(C.mergeEvents(null, undefined, 5), []);
});

test('applyFrame: a snapshot replaces the state and keeps the bus', (t) => {
    const {C} = page(t);
    const next = C.applyFrame({state: {old: 1}, seq: 9, bus: 'down'}, {type: 'snapshot', seq: 3, state: {a: 1}}, 500);
    assert.deepEqual(next, {state: {a: 1}, seq: 3, frame_at: 500, feeds_at: 500, bus: 'down', source: 'ws'});
    assert.equal(C.applyFrame({}, {type: 'snapshot', seq: 1, state: {}}, 0).bus, 'up');
});

test('applyFrame: a delta merges its parts, its events in front; a seen seq changes nothing', (t) => {
    const {C} = page(t);
    const store = {state: {windows: 'w0', trend: 't0', events: [{domain: 'd', id: 'a'}]}, seq: 4, feeds_at: 1,
        bus: 'up'};
    assert.equal(C.applyFrame(store, {type: 'delta', seq: 4, state: {trend: 'x'}}, 9), null);
    assert.equal(C.applyFrame(store, {type: 'delta', seq: 3}, 9), null);
    const next = C.applyFrame(store, {type: 'delta', seq: 5, state: {trend: 't1'},
        events: [{domain: 'd', id: 'b'}, {domain: 'd', id: 'a', again: true}]}, 9);
    assert.equal(next.state.windows, 'w0');
    assert.equal(next.state.trend, 't1');
    assert.deepEqual(next.state.events.map((e) => e.id), ['b', 'a']);
    assert.equal(next.state.events[1].again, true);
    assert.equal(next.seq, 5);
    assert.equal(next.frame_at, 9);
    assert.equal(next.feeds_at, 1, 'feeds did not change: their age still counts from before');
    assert.equal(store.state.trend, 't0', 'the stored state is not changed in place');
    assert.equal(C.applyFrame(store, {type: 'delta', seq: 6, state: {feeds: {}}}, 12).feeds_at, 12);
});

test('applyFrame: events are capped at EVENT_CAP; a delta applies when no seq is known (after polling)', (t) => {
    const {C} = page(t);
    const many = Array.from({length: C.EVENT_CAP + 5}, (_, i) => ({domain: 'd', id: String(i)}));
    const next = C.applyFrame({state: {}, seq: null}, {type: 'delta', seq: 1, events: many}, 0);
    assert.equal(next.state.events.length, C.EVENT_CAP);
    assert.equal(next.state.events[0].id, '0');
});

test('applyFrame: heartbeat and status touch only frame_at and bus; other types are ignored', (t) => {
    const {C} = page(t);
    const store = {state: {a: 1}, seq: 2, bus: 'up', frame_at: 0};
    assert.deepEqual(C.applyFrame(store, {type: 'heartbeat', at: 1}, 7), {state: {a: 1}, seq: 2, bus: 'up', frame_at: 7});
    assert.deepEqual(C.applyFrame(store, {type: 'status', bus: 'down'}, 8), {state: {a: 1}, seq: 2, bus: 'down', frame_at: 8});
    assert.equal(C.applyFrame(store, {type: 'gossip'}, 9), null);
    assert.equal(C.applyFrame(store, null, 9), null);
});

test('takeFrame drops a frame of another version, before it reaches the state or the dispatch page', (t) => {
    t.mock.method(console, 'warn', () => {});
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    firstRender(h, {state: {trend: 't0'}, seq: 1});
    h.C.takeFrame(JSON.stringify({v: 2, type: 'delta', seq: 2, state: {trend: 'v2'}}));
    h.C.takeFrame('not json');
    assert.equal(h.C.live.s.seq, 1);
    assert.equal(h.C.live.s.state.trend, 't0');
    assert.deepEqual(h.dispatched, []);
    h.C.takeFrame(frame({type: 'delta', seq: 2, state: {trend: 't1'}, incidents: [{id: 4}]}));
    assert.equal(h.C.live.s.state.trend, 't1');
    assert.deepEqual(h.dispatched.map((m) => m.incidents), [[{id: 4}]]);
});

test('takeFrame ignores frames until the page\'s first render', (t) => {
    const h = page(t);
    h.C.takeFrame(frame({type: 'snapshot', seq: 1, state: {}}));
    assert.equal(h.C.live.s, null);
    assert.deepEqual(h.dispatched, []);
});

test('first render returns the store\'s meta and marks the rendered parts as written', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 50_000});
    const h = page(t);
    const meta = firstRender(h, {state: {feeds: {traffic: {}}, windows: 'w', generated_at: 3}, seq: 8, bus: 'up'});
    assert.deepEqual(meta.state, {feeds: {traffic: {}}, generated_at: 3});
    assert.equal(meta.seq, 8);
    assert.equal(meta.frame_at, 50_000);
    t.mock.timers.tick(5000);
    assert.deepEqual(h.calls, [], 'nothing to write before a frame came');
});

test('flush writes each changed part, one costly redraw per flush, and the meta', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    h.doc.byId['city-map'] = new FakeElement('div');
    const events = [{domain: 'traffic', id: 'e0', ts: 1}];
    firstRender(h, {state: {windows: 'w0', trend: 't0', events: events, feeds: {}}, seq: 1, bus: 'up'});
    h.C.takeFrame(frame({type: 'delta', seq: 2, state: {windows: 'w1', trend: 't1'}}));
    assert.deepEqual(h.calls, [], 'written after the frame is painted, not in the frame handler');
    t.mock.timers.tick(1);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows', 'live-map', 'live-store']);
    assert.deepEqual(writes(h, 'live-windows'), [{state: {windows: 'w1'}}]);
    assert.deepEqual(writes(h, 'live-map'), [{state: {windows: 'w1'}}]);
    assert.equal(writes(h, 'live-store')[0].seq, 2);
    t.mock.timers.tick(400);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows', 'live-map', 'live-store', 'live-trend']);
    assert.deepEqual(writes(h, 'live-trend'), [{state: {trend: 't1'}}]);
    assert.deepEqual(writes(h, 'live-events'), [], 'the events did not change');
});

test('flush writes each store in a task of its own, and the map\'s only where there is a map', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    firstRender(h, {state: {windows: 'w0', feeds: {}}, seq: 1, bus: 'up'});
    h.C.takeFrame(frame({type: 'delta', seq: 2, state: {windows: 'w1'}, events: [{domain: 'traffic', id: 'e9', ts: 5}]}));
    h.C.flush();
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows'], 'one store in this task');
    t.mock.timers.tick(0);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows', 'live-store'], 'the next in the next task');
    assert.deepEqual(writes(h, 'live-map'), [], 'no map on this page: nothing to redraw');
    t.mock.timers.tick(2000);
    assert.deepEqual(writes(h, 'live-events'), [], 'the events go to the ticker, never to a store');
    assert.deepEqual(h.C.live.s.state.events.map((e) => e.id), ['e9']);
});

test('a burst of frames is coalesced: each part is written at most once a second, with the newest value', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    const at = [];
    h.dc.set_props = (id, props) => id === 'live-windows' && at.push([Date.now(), props.data.state.windows]);
    firstRender(h, {state: {windows: 'w0'}, seq: 1, bus: 'up'});
    for (let seq = 2; seq <= 31; seq++) {  // ten frames a second for three seconds
        h.C.takeFrame(frame({type: 'delta', seq: seq, state: {windows: 'w' + seq}}));
        t.mock.timers.tick(100);
    }
    t.mock.timers.tick(3000);
    assert.ok(at.length >= 3 && at.length <= 4, JSON.stringify(at));
    for (let i = 1; i < at.length; i++) {
        assert.ok(at[i][0] - at[i - 1][0] >= 1000, JSON.stringify(at));
    }
    assert.equal(at[0][1], 'w2', 'the first frame is drawn at once');
    assert.equal(at.at(-1)[1], 'w31', 'the newest value is drawn last');
    assert.equal(h.C.live.s.seq, 31);
});

test('flush empties Dash\'s undo history', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    const history = {past: [1, 2, 3]};
    stub(t, 'store', {getState: () => ({history})});
    firstRender(h, {state: {}, seq: 1});
    h.C.takeFrame(frame({type: 'heartbeat', at: 1}));
    t.mock.timers.tick(1000);
    assert.equal(history.past.length, 0);
});

/** A fake WebSocket class recording its instances. */
function fakeSockets(t) {
    const made = [];
    class FakeSocket {
        constructor(url) {
            this.url = url;
            this.closed = 0;
            made.push(this);
        }

        close() {
            this.closed += 1;
        }
    }
    stub(t, 'WebSocket', FakeSocket);
    return made;
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('connection: a gateway that answers the probe gets a socket, with a fresh ticket', async (t) => {
    const h = page(t);
    const made = fakeSockets(t);
    const fetched = [];
    stub(t, 'fetch', (url) => {
        fetched.push(url);
        return Promise.resolve({ok: true, json: () => ({ticket: 'a b'})});
    });
    h.fire('live-probe');
    const [c, url, pollOff, retryOff, retryMs] = h.C.connection({up: true}, null, 0, null,
        Object.assign({ws_url: 'ws://gw/'}, CONFIG), null);
    assert.deepEqual([c.mode, c.socket, c.socket_tried, c.attempt], ['connecting', true, true, 0]);
    assert.deepEqual([url, pollOff, retryOff, retryMs], [NO_UPDATE, true, true, NO_UPDATE]);
    await settle();
    assert.deepEqual(fetched, ['/api/ws-ticket']);
    assert.deepEqual(made.map((ws) => ws.url), ['ws://gw/?ticket=a%20b']);
    made[0].onopen();
    assert.deepEqual(h.calls, [['live-ws', {state: {readyState: 1}}]]);
});

test('connection: no gateway on the first look means polling at once', (t) => {
    const h = page(t);
    t.mock.method(Math, 'random', () => 0.5);
    h.fire('live-probe');
    const [c, , pollOff, retryOff, retryMs] = h.C.connection({up: false}, null, 0, null, CONFIG, null);
    assert.deepEqual([c.mode, c.attempt], ['polling', 1]);
    assert.deepEqual([pollOff, retryOff, retryMs], [false, false, 1000]);
});

test('connection: an open socket is live; a closed one reconnects with backoff, then gives up to polling', (t) => {
    const h = page(t);
    t.mock.method(Math, 'random', () => 0.5);
    h.fire('live-ws');
    const [live, , pollOff, retryOff] = h.C.connection(null, {readyState: 1}, 0,
        {mode: 'connecting', socket: true, socket_tried: true, attempt: 2}, CONFIG, null);
    assert.deepEqual([live.mode, live.attempt, live.ever_open, pollOff, retryOff], ['live', 0, true, true, true]);
    const [lost, , , retry, ms] = h.C.connection(null, {readyState: 3}, 0, live, CONFIG, null);
    assert.deepEqual([lost.mode, lost.socket, lost.attempt, retry, ms], ['reconnecting', false, 1, false, 1000]);
    const [gone, , poll] = h.C.connection(null, {readyState: 3}, 0,
        Object.assign({}, lost, {socket: true, attempt: 2}), CONFIG, null);
    assert.deepEqual([gone.mode, gone.attempt, poll], ['polling', 3, false]);
    // a close reported for a socket the page no longer has changes nothing
    assert.deepEqual(h.C.connection(null, {readyState: 3}, 0, lost, CONFIG, null), NU5);
});

test('connection: the watchdog closes a live socket that went silent', (t) => {
    const h = page(t);
    const now = Date.now();
    h.fire('live-tick');
    const conn = {mode: 'live', socket: true, socket_tried: true, attempt: 0, socket_at: now - 60_000};
    assert.deepEqual(h.C.connection(null, null, 5, conn, CONFIG, {frame_at: now - 1000}), NU5);
    const [c] = h.C.connection(null, null, 5, conn, CONFIG, {frame_at: now - h.C.WATCHDOG_MS - 1000});
    assert.deepEqual([c.mode, c.socket], ['reconnecting', false]);
});

test('a frame that arrives after the user left the live page closes the socket', async (t) => {
    const h = page(t);
    const made = fakeSockets(t);
    stub(t, 'fetch', () => Promise.resolve({ok: true, json: () => ({ticket: 'x'})}));
    firstRender(h, {state: {}, seq: 1});
    h.fire('live-probe');
    h.C.connection({up: true}, null, 0, null, Object.assign({ws_url: 'ws://gw/'}, CONFIG), null);
    await settle();
    delete h.doc.byId['live-indicator'];
    made[0].onmessage({data: frame({type: 'heartbeat', at: 1})});
    assert.equal(made[0].closed, 1);
    assert.equal(h.C.live.s, null);
    assert.equal(h.C.sock.ws, null);
});

test('intake polls only in polling mode; a poll replaces the state, a failed one is noted', async (t) => {
    const h = page(t);
    t.mock.timers.enable({apis: ['setTimeout']});
    firstRender(h, {state: {a: 0}, seq: 1, bus: 'down'});
    let answer = {ok: true, json: () => ({live: {a: 1}})};
    const fetched = [];
    stub(t, 'fetch', (url) => {
        fetched.push(url);
        return Promise.resolve(answer);
    });
    h.fire('live-poll');
    assert.equal(h.C.intake(null, 1, null, {mode: 'live'}, CONFIG), NO_UPDATE);
    assert.deepEqual(fetched, []);
    // the callback answers at once (no Promise for Dash to hold its dependants on); the poll goes on apart
    assert.equal(h.C.intake(null, 1, null, {mode: 'polling'}, CONFIG), NO_UPDATE);
    await h.C.live.polling;
    assert.deepEqual(fetched, ['/api/summary']);
    assert.deepEqual([h.C.live.s.state, h.C.live.s.seq, h.C.live.s.source, h.C.live.s.bus], [{a: 1}, null, 'poll', 'down']);
    answer = {ok: false, status: 502};
    assert.equal(h.C.intake(null, 2, null, {mode: 'polling'}, CONFIG), NO_UPDATE);
    await h.C.live.polling;
    assert.deepEqual(h.C.live.s.state, {a: 1});
    assert.equal(typeof h.C.live.s.poll_failed_at, 'number');
});

test('status: indicator and banner from the mode, stale feeds, a failed poll and the bus', (t) => {
    const h = page(t);
    const now = Date.now();
    const fresh = {frame_at: now, feeds_at: now, bus: 'up', state: {feeds: {traffic: {last_event_age_s: 1}}}};
    assert.deepEqual(h.C.status(fresh, 0, {mode: 'live'}, CONFIG), ['Live', 'conn conn-live', [], 'alert-banner']);
    const bad = {frame_at: now - 10_000, feeds_at: now, bus: 'down', poll_failed_at: now,
        state: {feeds: {traffic: {last_event_age_s: 100}}}};
    const [text, cls, items, banner] = h.C.status(bad, 0, {mode: 'reconnecting'}, CONFIG);
    assert.equal(text, 'reconnecting', 'a mode without a label shows its name');
    assert.equal(cls, 'conn conn-reconnecting');
    assert.deepEqual(items.map((i) => i.props.children), ['Stale: Traffic', 'Lost', 'Poll failed 10s', 'Bus down']);
    assert.equal(banner, 'alert-banner on');
});

test('status: only what changed is written again, and the live state reaches the feeds\' list', (t) => {
    const h = page(t);
    const now = Date.now();
    const fresh = {frame_at: now, feeds_at: now, bus: 'up', state: {feeds: {traffic: {last_event_age_s: 1}}}};
    const taken = [];
    h.dc.panoramaFeeds = {take: (store, config) => taken.push([store, config])};
    h.C.status(fresh, 0, {mode: 'live'}, CONFIG);
    h.fire('live-store');
    assert.deepEqual(h.C.status(fresh, 0, {mode: 'live'}, CONFIG), [NO_UPDATE, NO_UPDATE, NO_UPDATE, NO_UPDATE]);
    const [text, cls] = h.C.status(fresh, 0, {mode: 'reconnecting'}, CONFIG);
    assert.deepEqual([text, cls], ['reconnecting', 'conn conn-reconnecting']);
    assert.equal(taken.length, 3);
    assert.equal(taken[2][0], fresh);
});

test('clock trims the history and tells the time', (t) => {
    const h = page(t);
    const history = {past: ['x']};
    stub(t, 'store', {getState: () => ({history})});
    const text = h.C.clock(1, {tz: 'UTC', lang: 'en'});
    assert.equal(history.past.length, 0);
    assert.match(text, /\d\d:\d\d:\d\d/);
});

test('takeFrame hands a frame\'s units to the map\'s layer before the dispatch page and the ticker', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const h = page(t);
    const order = [];
    h.dc.panoramaUnits = {take: (msg) => order.push(['units', msg.seq])};
    h.dc.panoramaTicker = {draw: () => order.push(['ticker']) && true};
    h.dc.panorama.dispatchFrame = (msg) => order.push(['dispatch', msg.seq]);
    firstRender(h, {state: {windows: 'w0'}, seq: 1, bus: 'up'});
    order.length = 0;
    h.C.takeFrame(frame({type: 'delta', seq: 2, units: [{unit: 'u1', lat: 1, lon: 1}],
        events: [{domain: 'traffic', id: 'e1', ts: 1}]}));
    assert.deepEqual(order, [['units', 2], ['dispatch', 2], ['ticker']]);
    h.C.takeFrame(frame({type: 'delta', seq: 2, units: [{unit: 'u1', lat: 2, lon: 2}]}));
    assert.equal(order.length, 3, 'a frame already applied reaches nothing');
});

test('a flush\'s store writes start after a paint, and each next one after the next paint', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 100_000});
    const frames = [];
    stub(t, 'requestAnimationFrame', (f) => frames.push(f));
    const paint = () => frames.splice(0).forEach((f) => f());
    const h = page(t);
    h.doc.byId['city-map'] = new FakeElement('div');
    firstRender(h, {state: {windows: 'w0', feeds: {}}, seq: 1, bus: 'up'});
    h.C.takeFrame(frame({type: 'delta', seq: 2, state: {windows: 'w1'}}));
    t.mock.timers.tick(0);
    assert.deepEqual(h.calls, [], 'nothing written before the frame was painted');
    paint();
    t.mock.timers.tick(0);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows']);
    t.mock.timers.tick(100);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows'], 'the next store waits for the next paint');
    paint();
    t.mock.timers.tick(0);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows', 'live-map']);
    paint();
    t.mock.timers.tick(0);
    assert.deepEqual(h.calls.map(([id]) => id), ['live-windows', 'live-map', 'live-store']);
});

test('status: before any live state the banner claims no stale feed; a received state that says so does', (t) => {
    const h = page(t);
    const now = Date.now();
    // /dispatch's first render: live-store {state: null}; the indicator alone says what the connection does
    const [text, , items, banner] = h.C.status({state: null, seq: null, served_at: now}, 0, {mode: 'polling'},
        CONFIG);
    assert.deepEqual([text, items, banner], ['Polling', [], 'alert-banner']);
    h.fire('live-store');
    const [, , stale] = h.C.status({feeds_at: now, state: {feeds: {traffic: {last_event_age_s: null}}}}, 0,
        {mode: 'polling'}, CONFIG);
    assert.deepEqual(stale.map((i) => i.props.children), ['Stale: Traffic']);
});

test('a poll\'s answer older than the one taken is dropped', async (t) => {
    const h = page(t);
    t.mock.timers.enable({apis: ['setTimeout']});
    firstRender(h, {state: {a: 0}, seq: 1});
    const answers = [];
    stub(t, 'fetch', () => new Promise((resolve) => answers.push(resolve)));
    h.fire('live-poll');
    h.C.intake(null, 1, null, {mode: 'polling'}, CONFIG);
    const first = h.C.live.polling;
    h.C.intake(null, 2, null, {mode: 'polling'}, CONFIG);
    const second = h.C.live.polling;
    answers[1]({ok: true, json: () => ({live: {a: 2}})});
    await second;
    answers[0]({ok: true, json: () => ({live: {a: 1}})});
    await first;
    assert.deepEqual(h.C.live.s.state, {a: 2});
});

test('probeAsk passes a retry tick on only while no probe is on its way (an answer that never came: after a hold)',
    (t) => {
        const h = page(t);
        t.mock.timers.enable({apis: ['Date'], now: 1_000_000});
        h.C.probing.asked = null;
        h.fire();  // the initial call asks (Dash would skip the probe's initial call after a no_update)
        assert.equal(h.C.probeAsk(undefined), null);
        h.fire('live-probe');
        h.C.connection({up: false, n: 0}, null, 0, {mode: 'connecting', attempt: 0}, CONFIG, null);
        h.fire('live-retry');
        assert.equal(h.C.probeAsk(1), 1);
        assert.equal(h.C.probeAsk(2), NO_UPDATE, 'a tick while the probe is on its way would drop its answer');
        h.fire('live-probe');
        h.C.connection({up: false, n: 1}, null, 0, {mode: 'polling', attempt: 3, socket_tried: true}, CONFIG, null);
        h.fire('live-retry');
        assert.equal(h.C.probeAsk(3), 3, 'the answer landed: the next tick asks again');
        t.mock.timers.tick(h.C.PROBE_HOLD_MS);
        assert.equal(h.C.probeAsk(4), 4, 'an answer lost with its request holds the probe no longer than the hold');
    });
