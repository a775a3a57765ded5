'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {NO_UPDATE, load} = require('./helpers');

const L = {never: 'never', seconds_ago: '{s}s ago', minutes_ago: '{m}m ago', hours_ago: '{h}h ago'};
const CONFIG = {domains: ['traffic', 'security'], stale_after: {traffic: 60}};

test('fmt fills known placeholders and leaves unknown ones', () => {
    const U = load('live_common').mods.live_common;
    assert.equal(U.fmt('{a} and {b} but {c}', {a: 1, b: 'two'}), '1 and two but {c}');
    assert.equal(U.fmt('{a}', null), '{a}');
    assert.equal(U.fmt(42, {}), '42');
});

test('el builds a Dash html component; children only when given', () => {
    const U = load('live_common').mods.live_common;
    assert.deepEqual(U.el('Span', {className: 'x'}, 'hi'),
        {type: 'Span', namespace: 'dash_html_components', props: {className: 'x', children: 'hi'}});
    const bare = U.el('Li', {key: 'k'});
    assert.equal('children' in bare.props, false);
    const props = {id: 'a'};
    U.el('Div', props, []);
    assert.deepEqual(props, {id: 'a'}, 'the caller\'s props are not changed');
});

test('stamp and timeOfDay are in the city\'s time zone, 24 h', () => {
    const U = load('live_common').mods.live_common;
    const ms = Date.UTC(2024, 2, 5, 16, 7, 9);
    assert.equal(U.stamp(ms, 'Asia/Shanghai'), '2024-03-06 00:07:09');
    assert.equal(U.stamp(ms, 'UTC'), '2024-03-05 16:07:09');
    assert.equal(U.timeOfDay(ms, 'Asia/Shanghai'), '00:07:09');
});

test('clock speaks the page\'s language', () => {
    const U = load('live_common').mods.live_common;
    const ms = Date.UTC(2024, 0, 1, 4, 5, 6);
    const en = U.clock(ms, 'UTC', 'en');
    const zh = U.clock(ms, 'UTC', 'zh');
    assert.match(en, /Jan/);
    assert.match(en, /04:05:06/);
    assert.match(zh, /1月/);
    assert.match(zh, /04:05:06/);
});

test('ago: never, seconds, minutes, hours (whole units, rounded down)', () => {
    const U = load('live_common').mods.live_common;
    assert.equal(U.ago(null, L), 'never');
    assert.equal(U.ago(undefined, L), 'never');
    assert.equal(U.ago(0, L), '0s ago');
    assert.equal(U.ago(59.9, L), '59s ago');
    assert.equal(U.ago(60, L), '1m ago');
    assert.equal(U.ago(3599, L), '59m ago');
    assert.equal(U.ago(7300, L), '2h ago');
});

test('triggered lists the ids of the inputs that fired', () => {
    const h = load('live_common');
    const U = h.mods.live_common;
    assert.deepEqual(U.triggered(), []);
    h.dc.callback_context = {triggered: [{prop_id: 'live-ws.state'}, {prop_id: 'live-tick.n_intervals'},
        {prop_id: '.'}]};
    assert.deepEqual(U.triggered(), ['live-ws', 'live-tick']);
    h.dc.callback_context = undefined;
    assert.deepEqual(U.triggered(), []);
});

test('windowOf picks the view\'s window, 1h by default, null before any state', () => {
    const U = load('live_common').mods.live_common;
    const store = {state: {windows: {'1h': {n: 1}, '24h': {n: 24}}}};
    assert.deepEqual(U.windowOf(store, {window: '24h'}), {n: 24});
    assert.deepEqual(U.windowOf(store, null), {n: 1});
    assert.equal(U.windowOf(store, {window: '7d'}), null);
    assert.equal(U.windowOf({state: null}, {}), null);
    assert.equal(U.windowOf(null, {}), null);
});

test('feedsNow: ages keep counting since the feeds arrived; stale past each domain\'s limit', () => {
    const U = load('live_common').mods.live_common;
    const store = {feeds_at: 10_000, state: {feeds: {traffic: {last_event_age_s: 50, rate_per_min: 3},
        security: {last_event_age_s: 10}}}};
    const [traffic, security] = U.feedsNow(store, CONFIG, 25_000);
    assert.deepEqual(traffic, {domain: 'traffic', age: 65, rate: 3, known: true, stale: true});  // 50 + 15 s > 60
    assert.deepEqual(security, {domain: 'security', age: 25, rate: 0, known: true, stale: false});  // limit 300
    const early = U.feedsNow(store, CONFIG, 15_000);
    assert.equal(early[0].stale, false);  // 55 s
});

test('feedsNow: a feed in the state with no event ever is stale; served_at stands in for feeds_at', () => {
    const U = load('live_common').mods.live_common;
    const served = {served_at: 1000, state: {feeds: {traffic: {last_event_age_s: 0}, security: {last_event_age_s: null}}}};
    const [traffic, security] = U.feedsNow(served, CONFIG, 31_000);
    assert.equal(traffic.age, 30);
    assert.deepEqual(security, {domain: 'security', age: null, rate: 0, known: true, stale: true});
});

test('feedsNow: before any state no feed is called stale, only unknown (the banner must not claim it)', () => {
    const U = load('live_common').mods.live_common;
    const unknown = [['traffic', false, false, null], ['security', false, false, null]];
    const look = (store) => U.feedsNow(store, CONFIG, 600_000).map((f) => [f.domain, f.known, f.stale, f.age]);
    assert.deepEqual(look(null), unknown);  // no store at all
    assert.deepEqual(look({state: null, seq: null, served_at: 1000}), unknown);  // /dispatch's first render
    assert.deepEqual(look({state: null, frame_at: 1000, feeds_at: 1000}), unknown);  // intake's first live state
    assert.deepEqual(look({state: {generated_at: 1}, feeds_at: 1000}), unknown);  // a state without feeds
    // a state that has one feed says nothing of the other; the one it has is judged by its age
    assert.deepEqual(look({feeds_at: 599_000, state: {feeds: {security: {last_event_age_s: 1}}}}),
        [['traffic', false, false, null], ['security', true, false, 2]]);
});

test('measure: risk, one domain, or all domains summed; 0 for no entry', () => {
    const U = load('live_common').mods.live_common;
    const entry = {risk: 42.5, counts: {traffic: 3, security: 4, other: 100}};
    assert.equal(U.measure(entry, 'risk', CONFIG.domains), 42.5);
    assert.equal(U.measure(entry, 'all', CONFIG.domains), 7);
    assert.equal(U.measure(entry, 'security', CONFIG.domains), 4);
    assert.equal(U.measure(entry, 'weather', CONFIG.domains), 0);
    assert.equal(U.measure(undefined, 'all', CONFIG.domains), 0);
    assert.equal(U.measure({}, 'risk', CONFIG.domains), 0);
});

test('the helpers are registered on the page as panoramaUtil', () => {
    const h = load('live_common');
    assert.equal(h.dc.panoramaUtil, h.mods.live_common);
});

test('changed: only the outputs that moved since the last call; all of them on the initial call', () => {
    const h = load('live_common');
    const U = h.mods.live_common;
    h.fire();  // the initial call of a page drawn anew: everything, whatever was written before
    assert.deepEqual(U.changed('tiles', ['3', 'up']), ['3', 'up']);
    h.fire('live-windows');
    assert.deepEqual(U.changed('tiles', ['3', 'down']), [NO_UPDATE, 'down']);
    assert.deepEqual(U.changed('tiles', ['3', 'down']), [NO_UPDATE, NO_UPDATE]);
    assert.deepEqual(U.changed('tiles', [[{a: 1}], 'down']), [[{a: 1}], NO_UPDATE]);
    h.fire();
    assert.deepEqual(U.changed('tiles', [[{a: 1}], 'down']), [[{a: 1}], 'down']);
});
