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
