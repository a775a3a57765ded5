'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, fakeDocument, load, stub} = require('./helpers');

function alertPage(t, {onPage = true} = {}) {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('dispatch_live', 'live_alerts');
    stub(t, 'document', fakeDocument(onPage ? {'alert-list': new FakeElement('ul')} : {}));
    h.A = h.mods.live_alerts;
    return h;
}

const alert = (id, status) => ({id: id, status: status, version: 1, level: 'red', title: 't', title_en: 't'});

test('carriesAlerts: snapshots and deltas with alerts, nothing else', () => {
    const {mods} = load('live_alerts');
    const A = mods.live_alerts;
    assert.equal(A.carriesAlerts({type: 'snapshot', seq: 1, state: {}}), true);
    assert.equal(A.carriesAlerts({type: 'delta', seq: 2, alerts: [alert(1, 'firing')]}), true);
    assert.equal(A.carriesAlerts({type: 'delta', seq: 3, alerts: []}), false);
    assert.equal(A.carriesAlerts({type: 'delta', seq: 4, events: [{id: 'e'}]}), false);
    assert.equal(A.carriesAlerts({type: 'heartbeat', at: 1}), false);
    assert.equal(A.carriesAlerts(null), false);
});

test('the first frame after a quiet spell is drawn at once', (t) => {
    const h = alertPage(t);
    h.A.dispatchFrame({type: 'delta', seq: 1, alerts: [alert(1, 'firing')]});
    assert.deepEqual(h.calls, [['alert-bump', {data: {n: 1, seq: 1}}]]);
    t.mock.timers.tick(10_000);  // quiet: nothing more is written, and the next one is at once again
    assert.equal(h.calls.length, 1);
    h.A.dispatchFrame({type: 'snapshot', seq: 9, state: {}});
    assert.deepEqual(h.calls.at(-1), ['alert-bump', {data: {n: 2, seq: 9}}]);
});

test('the frames of a burst after it are one redraw at the end of the window', (t) => {
    const h = alertPage(t);
    h.A.dispatchFrame({type: 'delta', seq: 1, alerts: [alert(1, 'firing')]});  // at once
    t.mock.timers.tick(100);
    h.A.dispatchFrame({type: 'delta', seq: 2, alerts: [alert(1, 'acknowledged')]});
    h.A.dispatchFrame({type: 'delta', seq: 3, events: [{id: 'e'}]});  // no alerts: changes nothing
    h.A.dispatchFrame({type: 'delta', seq: 4, alerts: [alert(2, 'firing')]});
    assert.equal(h.calls.length, 1);
    t.mock.timers.tick(h.A.BUMP_MS - 101);
    assert.equal(h.calls.length, 1);  // not before the window since the last redraw has passed
    t.mock.timers.tick(1);
    assert.deepEqual(h.calls, [['alert-bump', {data: {n: 1, seq: 1}}], ['alert-bump', {data: {n: 2, seq: 4}}]]);
    // a frame right after that trailing redraw waits for its own window again
    h.A.dispatchFrame({type: 'delta', seq: 5, alerts: [alert(2, 'acknowledged')]});
    assert.equal(h.calls.length, 2);
    t.mock.timers.tick(h.A.BUMP_MS);
    assert.deepEqual(h.calls.at(-1), ['alert-bump', {data: {n: 3, seq: 5}}]);
    // at most one redraw per window however many frames come
    for (let i = 0; i < 50; i += 1) {
        h.A.dispatchFrame({type: 'delta', seq: 6 + i, alerts: [alert(3, 'firing')]});
        t.mock.timers.tick(20);
    }
    assert.ok(h.calls.length <= 3 + Math.ceil(50 * 20 / h.A.BUMP_MS) + 1, h.calls.length);
});

test('a page without the alert-list is never written to', (t) => {
    const h = alertPage(t, {onPage: false});
    h.A.dispatchFrame({type: 'delta', seq: 1, alerts: [alert(1, 'firing')]});
    t.mock.timers.tick(10_000);
    assert.deepEqual(h.calls, []);
});

test('the /dispatch hook it wraps still gets every frame', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('dispatch_live', 'live_alerts');
    stub(t, 'document', fakeDocument({'dispatch-page': new FakeElement('div')}));
    h.mods.live_alerts.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 4}]});
    t.mock.timers.tick(1000);
    assert.equal(h.calls.length, 1);
    assert.equal(h.calls[0][0], 'dispatch-live');
});

test('on /alerts the same frames write the trail\'s store', (t) => {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('dispatch_live', 'live_alerts');
    stub(t, 'document', fakeDocument({'alerts-trail': new FakeElement('ul')}));
    h.mods.live_alerts.dispatchFrame({type: 'delta', seq: 7, alerts: [alert(1, 'firing')]});
    h.mods.live_alerts.dispatchFrame({type: 'delta', seq: 8, events: [{id: 'e'}]});  // no alerts: nothing
    t.mock.timers.tick(10_000);
    assert.deepEqual(h.calls, [['alerts-live', {data: {n: 1, seq: 7}}]]);
});

// --- the list drawn from the frames (layouts/alerts.py list_words gives the words) -------------------------------
const WORDS = {levels: {blue: '蓝色', yellow: '黄色', orange: '橙色', red: '红色'},
    statuses: {firing: '预警中', acknowledged: '已确认'}, since: '自 {time}', more: '另有 {n} 条预警',
    none: '暂无预警', ack: '确认', city: '全市', districts: {440304: '福田区'}, zones: {bay: '深圳湾体育中心'},
    slots: 2, lang: 'zh', can_ack: false};

function open(id, level, status, started, extra) {
    return Object.assign({id: id, level: level, status: status, version: 1, title: '标题' + id, title_en: 'T' + id,
        district: '440304', zone: null, started_at: '2026-12-07T10:0' + started + ':00+08:00'}, extra || {});
}

function wordsPage(t, words) {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('live_common', 'dispatch_live', 'live_alerts');
    const ul = new FakeElement('ul');
    ul.dataset.words = JSON.stringify(words);
    stub(t, 'document', fakeDocument({'alert-list': ul}));
    h.A = h.mods.live_alerts;
    return h;
}

const texts = (item) => item.props.children.map((c) => [c.props.className, c.props.children]);

test('listOf: red first, then by level, firing before acknowledged, newest first; what does not fit is counted',
    () => {
        const {mods} = load('live_common', 'live_alerts');
        const util = globalThis.dash_clientside.panoramaUtil;
        const list = new Map([[1, open(1, 'orange', 'firing', 1)], [2, open(2, 'red', 'acknowledged', 2)],
            [3, open(3, 'red', 'firing', 1)], [4, open(4, 'red', 'firing', 3)], [5, open(5, 'blue', 'firing', 5)]]);
        assert.deepEqual(mods.live_alerts.ordered(Array.from(list.values())).map((a) => a.id), [4, 3, 2, 1, 5]);
        const {items, more} = mods.live_alerts.listOf(list, WORDS, util);
        assert.deepEqual(items.map((i) => i.props['data-alert']), ['4', '3']);
        assert.equal(more, '另有 3 条预警');
        assert.equal(items[0].props.className, 'alert-item lvl-red st-firing');
        assert.equal(items[0].props.key, 'alert:4:1');
        assert.deepEqual(texts(items[0]), [['alert-level', '红色'], ['alert-title', '标题4'], ['alert-place', '福田区'],
            ['alert-since', '自 10:03:00'], ['alert-status', '预警中']]);  // no button: the wall is read-only
        assert.equal(mods.live_alerts.listOf(new Map(), WORDS, util).more, '暂无预警');
    });

test('listOf: English titles, a zone before its district, the city when neither, a button on firing ones only',
    () => {
        const {mods} = load('live_common', 'live_alerts');
        const util = globalThis.dash_clientside.panoramaUtil;
        const w = Object.assign({}, WORDS, {lang: 'en', can_ack: true, slots: 5, ack: 'Acknowledge',
            zones: {bay: 'Shenzhen Bay Sports Centre'}});
        const list = new Map([[1, open(1, 'red', 'firing', 1, {zone: 'bay'})],
            [2, open(2, 'yellow', 'acknowledged', 2, {district: null, version: 3})]]);
        const {items} = mods.live_alerts.listOf(list, w, util);
        assert.equal(texts(items[0])[1][1], 'T1');
        assert.equal(texts(items[0])[2][1], 'Shenzhen Bay Sports Centre');
        const button = items[0].props.children[5];
        assert.deepEqual([button.type, button.props.id, button.props.children], ['Button', {'alert-ack': 1, v: 1},
            'Acknowledge']);
        assert.equal(texts(items[1])[2][1], '全市');
        assert.equal(items[1].props.children.length, 5);  // acknowledged: nothing to acknowledge
    });

test('a delta after the snapshot is drawn at once, before the server is asked; stale versions never win', (t) => {
    const h = wordsPage(t, WORDS);
    h.A.dispatchFrame({type: 'delta', seq: 1, alerts: [open(9, 'red', 'firing', 1)]});
    assert.deepEqual(h.calls.map((c) => c[0]), ['alert-bump']);  // before any snapshot: the server's list stands
    t.mock.timers.tick(10_000);
    h.A.dispatchFrame({type: 'snapshot', seq: 2, state: {alerts: [open(1, 'orange', 'firing', 1)]}});
    assert.deepEqual(h.calls.map((c) => c[0]), ['alert-bump', 'alert-bump']);  // a snapshot: the server redraws
    t.mock.timers.tick(10_000);
    h.A.dispatchFrame({type: 'delta', seq: 3, alerts: [open(2, 'red', 'firing', 2)]});
    assert.deepEqual(h.calls.slice(2).map((c) => c[0]), ['alert-list', 'alert-more', 'alert-bump']);
    assert.deepEqual(h.calls[2][1].children.map((i) => i.props['data-alert']), ['2', '1']);
    t.mock.timers.tick(10_000);
    // an older version of alert 2 (a late frame) changes nothing; its resolution removes it
    h.A.dispatchFrame({type: 'delta', seq: 4, alerts: [open(2, 'red', 'acknowledged', 2, {version: 0})]});
    assert.equal(h.calls.at(-3)[1].children[0].props.className, 'alert-item lvl-red st-firing');
    t.mock.timers.tick(10_000);
    h.A.dispatchFrame({type: 'delta', seq: 5, alerts: [open(2, 'red', 'resolved', 2, {version: 2}),
        open(1, 'orange', 'resolved', 1, {version: 2})]});
    assert.deepEqual(h.calls.at(-3), ['alert-list', {children: []}]);
    assert.deepEqual(h.calls.at(-2), ['alert-more', {children: '暂无预警'}]);
});
