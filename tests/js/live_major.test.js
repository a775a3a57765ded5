'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, fakeDocument, load, stub} = require('./helpers');

const major = (id, level) => ({incident: {id: id, title: '大火 ' + id}, level: level, declared_at: 'x',
    declared_by: 'olga'});

function majorPage(t, {onPage = true} = {}) {
    t.mock.timers.enable({apis: ['setTimeout', 'Date'], now: 1_000_000});
    const h = load('live_alerts', 'live_major');
    stub(t, 'document', fakeDocument(onPage ? {'major-slot': new FakeElement('div')} : {}));
    h.M = h.mods.live_major;
    return h;
}

test('majorsOf: a snapshot\'s state, a delta\'s list (an empty one too), nothing else', () => {
    const M = load('live_major').mods.live_major;
    assert.deepEqual(M.majorsOf({type: 'snapshot', state: {majors: [major(1, 2)]}}), [major(1, 2)]);
    assert.deepEqual(M.majorsOf({type: 'delta', majors: []}), []);
    assert.equal(M.majorsOf({type: 'delta', events: [{id: 'e'}]}), null);
    assert.equal(M.majorsOf({type: 'snapshot', state: {}}), null);
    assert.equal(M.majorsOf({type: 'heartbeat', at: 1}), null);
    assert.equal(M.majorsOf(null), null);
});

test('a declaration, a level change and a stand-down each redraw at once; the same list again does not', (t) => {
    const h = majorPage(t);
    h.M.dispatchFrame({type: 'snapshot', seq: 1, state: {majors: []}});
    assert.deepEqual(h.calls.filter((c) => c[0] === 'major-bump'), [['major-bump', {data: {n: 1, why: 'majors'}}]]);
    h.M.dispatchFrame({type: 'delta', seq: 2, majors: [major(7, 2)]});
    h.M.dispatchFrame({type: 'delta', seq: 3, majors: [major(7, 2)]});
    h.M.dispatchFrame({type: 'delta', seq: 4, majors: [major(7, 1)]});
    h.M.dispatchFrame({type: 'delta', seq: 5, majors: []});
    const bumps = h.calls.filter((c) => c[0] === 'major-bump').map((c) => c[1].data);
    assert.deepEqual(bumps.map((b) => b.why), ['majors', 'majors', 'majors', 'majors']);
});

test('while one is active, news redraws at most once per window; in peacetime news redraws nothing', (t) => {
    const h = majorPage(t);
    const news = {type: 'delta', seq: 9, events: [{id: 'e1'}]};
    h.M.dispatchFrame(news);  // peacetime (nothing known yet): nothing
    assert.equal(h.calls.filter((c) => c[0] === 'major-bump').length, 0);
    h.M.dispatchFrame({type: 'delta', seq: 10, majors: [major(3, 4)]});
    h.M.dispatchFrame(news);  // within the window of the declaration's redraw
    assert.equal(h.calls.filter((c) => c[0] === 'major-bump').length, 1);
    t.mock.timers.tick(h.M.NEWS_MS);
    h.M.dispatchFrame(news);
    h.M.dispatchFrame(news);
    const bumps = h.calls.filter((c) => c[0] === 'major-bump').map((c) => c[1].data.why);
    assert.deepEqual(bumps, ['majors', 'news']);
});

test('a page without the slot writes nothing', (t) => {
    const h = majorPage(t, {onPage: false});
    h.M.dispatchFrame({type: 'delta', seq: 1, majors: [major(1, 1)]});
    assert.deepEqual(h.calls.filter((c) => c[0] === 'major-bump'), []);
});

test('countdownText: minutes left, then minutes overdue', () => {
    const M = load('live_major').mods.live_major;
    assert.equal(M.countdownText(10 * 60000 + 5, 0, '签收', '剩余 {m} 分钟', '超时 {m} 分钟'), '签收 剩余 10 分钟');
    assert.equal(M.countdownText(0, 3 * 60000 + 1, 'resolve', '{m} min left', '{m} min overdue'),
        'resolve 3 min overdue');
});

test('pinMajor: the tab really tapped, nothing for a redrawn tab or a context without triggered', () => {
    const h = load('live_major');
    const M = h.mods.live_major;
    h.dc.callback_context = {triggered: [{prop_id: '{"major-pin":42}.n_clicks', value: 1}]};
    assert.equal(M.pinMajor([1]), 42);
    h.dc.callback_context = {triggered: [{prop_id: '{"major-pin":42}.n_clicks', value: 0}]};
    assert.equal(M.pinMajor([0]), h.dc.no_update);
    h.dc.callback_context = {};
    assert.equal(M.pinMajor([]), h.dc.no_update);
    h.dc.callback_context = undefined;
    assert.equal(M.pinMajor(undefined), h.dc.no_update);
});
