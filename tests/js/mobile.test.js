'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, fakeDocument, load, stub} = require('./helpers');

const CONFIG = {domains: ['traffic', 'security'], districts: {FT: {short: 'Futian'}},
    mobile: {status_loading: 'loading', status_line: 'last hour', s_traffic: 'Traffic', s_security: 'Security',
        top_risk: 'highest risk'}};

/** /m as Dash loads it: dispatch_live.js, then mobile.js wrapping its frame hook. */
function mobilePage(t, ids = ['mobile-page']) {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 5_000});
    const h = load('dispatch_live', 'mobile');
    const byId = {};
    ids.forEach((id) => (byId[id] = new FakeElement('div')));
    stub(t, 'document', fakeDocument(byId));
    h.M = h.mods.mobile;
    return h;
}

const windows = (w) => ({state: {windows: {'1h': w}}});

test('status: loading until the windows came', (t) => {
    const {M} = mobilePage(t);
    assert.equal(M.status(null, CONFIG), 'loading');
    assert.equal(M.status({state: {windows: {'24h': {}}}}, CONFIG), 'loading');
});

test('status: the last hour\'s totals and the riskiest district', (t) => {
    const {M} = mobilePage(t);
    const w = {totals: {traffic: 40}, districts: {LH: {risk: 3}, FT: {risk: 35.4}, NS: {}}};
    assert.equal(M.status(windows(w), CONFIG),
        'last hour · Traffic\u00a040 · Security\u00a00 · highest\u00a0risk\u00a0Futian\u00a035');
});

test('status: no risk worth a whole point names no district; an unknown district shows its code', (t) => {
    const {M} = mobilePage(t);
    assert.equal(M.status(windows({totals: {}, districts: {FT: {risk: 0.4}}}), CONFIG),
        'last hour · Traffic\u00a00 · Security\u00a00');
    assert.equal(M.status(windows({totals: {}, districts: {XX: {risk: 9}}}), CONFIG),
        'last hour · Traffic\u00a00 · Security\u00a00 · highest\u00a0risk\u00a0XX\u00a09');
});

test('a dispatch change bumps the lists once per burst, after BUMP_MS', (t) => {
    const h = mobilePage(t);
    h.dc.panorama.dispatchFrame({type: 'delta', seq: 3, tasks: [{incident_id: 1}]});
    h.dc.panorama.dispatchFrame({type: 'delta', seq: 4, incidents: [{id: 2}]});
    t.mock.timers.tick(h.M.BUMP_MS - 1);
    assert.deepEqual(h.calls, []);
    t.mock.timers.tick(1);
    assert.deepEqual(h.calls, [['mobile-bump', {data: {seq: 3, at: 5_000 + h.M.BUMP_MS}}]]);
    h.dc.panorama.dispatchFrame({type: 'snapshot', seq: 9, state: {}});
    t.mock.timers.tick(h.M.BUMP_MS);
    assert.deepEqual(h.calls.map(([id, p]) => [id, p.data.seq]), [['mobile-bump', 3], ['mobile-bump', 9]]);
});

test('counts, events, heartbeats and status frames do not bump the lists', (t) => {
    const h = mobilePage(t);
    h.dc.panorama.dispatchFrame({type: 'delta', seq: 1, state: {windows: {}}, events: [{id: 'e'}]});
    h.dc.panorama.dispatchFrame({type: 'heartbeat', at: 1});
    h.dc.panorama.dispatchFrame({type: 'status', bus: 'up'});
    h.dc.panorama.dispatchFrame(null);
    t.mock.timers.tick(10_000);
    assert.deepEqual(h.calls, []);
});

test('the hook wraps the dispatch page\'s, which still gets every frame', (t) => {
    const h = mobilePage(t, ['mobile-page', 'dispatch-page']);
    assert.notEqual(h.dc.panorama.dispatchFrame, h.mods.dispatch_live.dispatchFrame);
    h.dc.panorama.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 8}]});
    t.mock.timers.tick(1000);
    assert.deepEqual(h.calls.map(([id]) => id).sort(), ['dispatch-live', 'mobile-bump']);
});

test('frames off the phone page are not the phone\'s', (t) => {
    const h = mobilePage(t, []);
    h.dc.panorama.dispatchFrame({type: 'snapshot', seq: 1, state: {}});
    t.mock.timers.tick(1000);
    assert.deepEqual(h.calls, []);
});

test('a tap hides the card, the department\'s row or the button', (t) => {
    const {M} = mobilePage(t);
    assert.equal(M.hideLevel('acknowledge'), 'card');
    assert.equal(M.hideLevel('redispatch'), 'row');
    assert.equal(M.hideLevel('escalate'), 'button');
    assert.equal(M.hideLevel('approve'), 'button');
});

test('what a tap hid stays hidden until the list drops it, or shows again after PENDING_MS', (t) => {
    const {M} = mobilePage(t);
    const el = {id: 'row'};
    const waiting = new Map([['row-7', 1000 + M.PENDING_MS], ['card-1', 1000 + M.PENDING_MS]]);
    const shown = {'row-7': el, 'card-1': {id: 'card'}};
    // a live update re-renders the list before the server has settled the tap: both stay hidden
    assert.deepEqual(M.sweep(waiting, (k) => shown[k] || null, 2000).map(([k, w]) => [k, w]),
        [['row-7', 'hide'], ['card-1', 'hide']]);
    // the list comes back without the row: the server agrees, nothing to wait for
    delete shown['row-7'];
    assert.deepEqual(M.sweep(waiting, (k) => shown[k] || null, 3000).map(([k, w]) => [k, w]),
        [['row-7', 'gone'], ['card-1', 'hide']]);
    assert.deepEqual([...waiting.keys()], ['card-1']);
    // the card is still listed long after: show it as the list says
    assert.deepEqual(M.sweep(waiting, (k) => shown[k] || null, 1000 + M.PENDING_MS).map(([k, w]) => [k, w]),
        [['card-1', 'show']]);
    assert.equal(waiting.size, 0);
});

test('minutes late: from the deadline and the server\'s clock, counted on by the phone\'s own clock', (t) => {
    const {M} = mobilePage(t);
    const due = 1_000_000;
    // drawn 5 min 59 s after the deadline (server clock), seen by the phone at its 50,000
    assert.equal(M.lateMinutes(due, due + 359_000, 50_000, 50_000), 5);
    assert.equal(M.lateMinutes(due, due + 359_000, 50_000, 51_000), 6);  // one second on: the sixth minute
    assert.equal(M.lateMinutes(due, due + 359_000, 50_000, 50_000 + 10 * 60_000), 15);
    assert.equal(M.lateMinutes(due, due - 5_000, 0, 0), 0);  // never negative
});

test('the rows on the phone count on between refreshes, and start again from a new server drawing', (t) => {
    const {M} = mobilePage(t);
    const text = {nodeType: 3, nodeValue: 'not acknowledged · 5 min late'};
    const late = new FakeElement('span');
    late.dataset = {due: '1000000', at: String(1_000_000 + 5 * 60_000), tpl: 'not acknowledged · {n} min late'};
    Object.defineProperty(late, 'firstChild', {get: () => text});
    const list = new FakeElement('ul');
    list.querySelectorAll = (sel) => (sel === '.m-late[data-due]' ? [late] : []);
    stub(t, 'document', fakeDocument({'decision-list': list, 'mobile-page': new FakeElement('div')}));
    M.tickLate(100_000);  // first seen
    assert.equal(text.nodeValue, 'not acknowledged · 5 min late');
    M.tickLate(100_000 + 3 * 60_000);
    // written into the same text node React holds, so its next update is not lost on a detached one
    assert.equal(text.nodeValue, 'not acknowledged · 8 min late');
    // the server draws it again 2 minutes later (React keeps the element, updates its data-at and text)
    late.dataset.at = String(1_000_000 + 7 * 60_000);
    text.nodeValue = 'not acknowledged · 7 min late';
    M.tickLate(100_000 + 4 * 60_000);  // counted from the new drawing, not from the first
    assert.equal(text.nodeValue, 'not acknowledged · 7 min late');
    M.tickLate(100_000 + 6 * 60_000);
    assert.equal(text.nodeValue, 'not acknowledged · 9 min late');
});
