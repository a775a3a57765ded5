'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, NO_UPDATE, fakeDocument, load, stub} = require('./helpers');

function dispatchPage(t, {onPage = true} = {}) {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('dispatch_live');
    const doc = fakeDocument(onPage ? {'dispatch-page': new FakeElement('div')} : {});
    stub(t, 'document', doc);
    h.D = h.mods.dispatch_live;
    h.doc = doc;
    return h;
}

const task = (id, incident) => ({id: id, incident_id: incident, state: 'open'});

test('dispatchPoll: the page polls only while the socket is not live', (t) => {
    const {D} = dispatchPage(t);
    assert.equal(D.dispatchPoll({mode: 'live'}), true);
    assert.equal(D.dispatchPoll({mode: 'polling'}), false);
    assert.equal(D.dispatchPoll(null), false);
});

test('frames of one burst are one write of every incident they touched', (t) => {
    const h = dispatchPage(t);
    h.D.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 1}, {id: 2}]});
    h.D.dispatchFrame({type: 'delta', seq: 2, tasks: [task(10, 2), task(11, 3)]});
    assert.deepEqual(h.calls, [], 'written from a timer, not per frame');
    t.mock.timers.tick(1);  // nothing written lately: at once
    assert.deepEqual(h.calls, [['dispatch-live', {data: {n: 1, snapshot: false, incidents: [1, 2, 3], escalations: []}}]]);
});

test('a delta without dispatch parts, a heartbeat or a status is not a change', (t) => {
    const h = dispatchPage(t);
    h.D.dispatchFrame({type: 'delta', seq: 1, state: {feeds: {}}, events: [{id: 'e'}], incidents: []});
    h.D.dispatchFrame({type: 'heartbeat', at: 1});
    h.D.dispatchFrame({type: 'status', bus: 'down'});
    h.D.dispatchFrame(null);
    t.mock.timers.tick(10_000);
    assert.deepEqual(h.calls, []);
    assert.equal(h.D.acc.timer, null);
});

test('a snapshot asks the page to re-read everything', (t) => {
    const h = dispatchPage(t);
    h.D.dispatchFrame({type: 'snapshot', seq: 1, state: {}});
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.deepEqual(h.calls.map(([, p]) => [p.data.snapshot, p.data.incidents]), [[true, []]]);
});

test('escalations are passed on once, the newest ESCALATIONS_KEPT of them', (t) => {
    const h = dispatchPage(t);
    const escalations = Array.from({length: h.D.ESCALATIONS_KEPT + 5}, (_, i) => task(i, 100 + (i % 2)));
    h.D.dispatchFrame({type: 'delta', seq: 1, escalations: escalations});
    t.mock.timers.tick(h.D.COALESCE_MS);
    const first = h.calls[0][1].data;
    assert.deepEqual(first.incidents, [100, 101]);
    assert.equal(first.escalations.length, h.D.ESCALATIONS_KEPT);
    assert.equal(first.escalations[0].id, 5);
    h.D.dispatchFrame({type: 'delta', seq: 2, incidents: [{id: 7}]});
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.deepEqual(h.calls[1][1].data, {n: 2, snapshot: false, incidents: [7], escalations: []});
});

test('writes are at least COALESCE_MS apart', (t) => {
    const h = dispatchPage(t);
    h.D.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 1}]});
    t.mock.timers.tick(1);
    assert.equal(h.calls.length, 1);
    const first = Date.now();
    t.mock.timers.tick(100);
    h.D.dispatchFrame({type: 'delta', seq: 2, incidents: [{id: 2}]});
    t.mock.timers.tick(h.D.COALESCE_MS - 101);
    assert.equal(h.calls.length, 1);
    t.mock.timers.tick(1);
    assert.equal(h.calls.length, 2);
    assert.equal(Date.now() - first, h.D.COALESCE_MS);
});

test('a write waits while the detail, queue or board is being drawn: a new call would drop that answer', (t) => {
    const h = dispatchPage(t);
    const detail = new FakeElement('div');
    h.doc.byId['dispatch-detail'] = detail;
    h.doc.byId['task-board'] = new FakeElement('div');
    detail.setAttribute('data-dash-is-loading', 'true');  // the incident picked is on its way from the server
    h.D.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 1}]});
    t.mock.timers.tick(1);
    h.D.dispatchFrame({type: 'delta', seq: 2, tasks: [task(10, 2)]});
    for (let i = 0; i < 5; i += 1) {
        t.mock.timers.tick(h.D.COALESCE_MS);
    }
    assert.deepEqual(h.calls, [], 'held while the detail is drawn');
    assert.ok(h.D.dispatchHeld() >= 5);
    detail.removeAttribute('data-dash-is-loading');
    h.doc.byId['task-board'].setAttribute('data-dash-is-loading', 'true');
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.deepEqual(h.calls, [], 'and while the board is');
    h.doc.byId['task-board'].removeAttribute('data-dash-is-loading');
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.deepEqual(h.calls, [['dispatch-live', {data: {n: 1, snapshot: false, incidents: [1, 2], escalations: []}}]],
        'once drawn, one write of all that was gathered');
});

test('a page that never finishes drawing holds the frames no longer than HOLD_MS', (t) => {
    const h = dispatchPage(t);
    const detail = new FakeElement('div');
    h.doc.byId['dispatch-detail'] = detail;
    detail.setAttribute('data-dash-is-loading', 'true');
    h.D.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 1}]});
    t.mock.timers.tick(1);
    for (let i = 0; i < h.D.HOLD_MS / h.D.COALESCE_MS - 1; i += 1) {
        t.mock.timers.tick(h.D.COALESCE_MS);
    }
    assert.deepEqual(h.calls, []);
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.equal(h.calls.length, 1);
    h.D.dispatchFrame({type: 'delta', seq: 2, incidents: [{id: 2}]});
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.equal(h.calls.length, 1, 'the next write waits its own HOLD_MS');
});

test('frames on another page are ignored, and a write is dropped once the user left', (t) => {
    const h = dispatchPage(t, {onPage: false});
    h.D.dispatchFrame({type: 'delta', seq: 1, incidents: [{id: 1}]});
    assert.equal(h.D.acc.timer, null);
    h.doc.byId['dispatch-page'] = new FakeElement('div');
    h.D.dispatchFrame({type: 'delta', seq: 2, incidents: [{id: 2}]});
    delete h.doc.byId['dispatch-page'];
    t.mock.timers.tick(h.D.COALESCE_MS);
    assert.deepEqual(h.calls, []);
    assert.equal(h.D.acc.incidents.size, 0, 'what was gathered is let go');
});

test('mergeChoice: the choice clicked last is chosen and alone checked; a choice drawn anew chooses nothing', (t) => {
    const {D, dc} = dispatchPage(t);
    const ids = [{type: 'merge-target', index: 7}, {type: 'merge-target', index: 9}];
    dc.callback_context = {triggered: [{prop_id: '{"index":9,"type":"merge-target"}.n_clicks', value: 1}]};
    assert.deepEqual(D.mergeChoice([0, 1], ids), [9, ['false', 'true']]);
    dc.callback_context = {triggered: [{prop_id: '{"index":7,"type":"merge-target"}.n_clicks', value: 1}]};
    assert.deepEqual(D.mergeChoice([1, 1], ids), [7, ['true', 'false']]);
    dc.callback_context = {triggered: [{prop_id: '{"index":7,"type":"merge-target"}.n_clicks', value: 0}]};
    assert.deepEqual(D.mergeChoice([0, 0], ids), [null, ['false', 'false']]);
    dc.callback_context = {triggered: []};
    assert.deepEqual(D.mergeChoice([], []), [null, []]);
});

test('splitTicked: a report clicked an odd number of times is ticked, by its event id', (t) => {
    const {D} = dispatchPage(t);
    const ids = [{type: 'split-report', index: 'ev-1'}, {type: 'split-report', index: 'ev.2'}];
    assert.deepEqual(D.splitTicked([1, 0], ids), [['ev-1'], ['true', 'false']]);
    assert.deepEqual(D.splitTicked([2, 3], ids), [['ev.2'], ['false', 'true']]);
    assert.deepEqual(D.splitTicked([null, 1], ids), [['ev.2'], ['false', 'true']]);
    assert.deepEqual(D.splitTicked(undefined, undefined), [[], []]);
});

test('incidentSearch: the selected incident in the query, the board\'s department kept', (t) => {
    const {D} = dispatchPage(t);
    assert.equal(D.incidentSearch('', 12), '?incident=12');
    assert.equal(D.incidentSearch('?department=fire', 12), '?department=fire&incident=12');
    assert.equal(D.incidentSearch('?incident=3&department=fire', 12), '?incident=12&department=fire');
    assert.equal(D.incidentSearch('?incident=3&department=fire', null), '?department=fire');
    assert.equal(D.incidentSearch('?incident=3', null), '');
    assert.equal(D.incidentSearch('', null), '');
});

test('dispatchUrl: a selection replaces the address (no page pushed) and Dash\'s Locations read it again', (t) => {
    const h = dispatchPage(t);
    const replaced = [];
    const loc = {pathname: '/dispatch', search: '?department=fire', hash: ''};
    const events = [];
    stub(t, 'location', loc);
    stub(t, 'CustomEvent', function (type) { this.type = type; });
    stub(t, 'dispatchEvent', (e) => events.push(e.type));
    stub(t, 'history', {state: null, replaceState: (state, title, url) => {
        replaced.push(url);
        loc.search = url.slice(url.indexOf('?'));
    }, pushState: () => assert.fail('a selection is not a page')});
    assert.equal(h.D.dispatchUrl(7), '?department=fire&incident=7');
    assert.deepEqual(replaced, ['/dispatch?department=fire&incident=7']);
    assert.deepEqual(events, ['_dashprivate_pushstate'], 'dcc.Location reads the address again');
    assert.equal(h.D.dispatchUrl(7), NO_UPDATE, 'the same: nothing');
    assert.deepEqual([replaced.length, events.length], [1, 1]);
});
