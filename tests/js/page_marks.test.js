'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

/** A document whose elements carry `classes` (a list of class lists); tops: the shell bars' inner classes. */
function doc(classes, tops = []) {
    const all = classes.map((c) => c.split(' '));
    const writes = [];
    const set = new Set();
    const top = (inner) => ({getElementsByClassName: (c) => inner.filter((x) => x === c)});
    return {
        writes, set,
        getElementsByClassName: (c) => (c === 'shell-top' ? tops.map(top) : all.filter((x) => x.includes(c))),
        documentElement: {classList: {
            contains: (m) => set.has(m),
            toggle: (m, on) => { writes.push([m, on]); if (on) { set.add(m); } else { set.delete(m); } },
        }},
        body: {},
    };
}

test('the marks follow what the page holds', () => {
    const M = load('page_marks').mods.page_marks;
    assert.deepEqual(M.marksOf(doc(['page page-wall', 'wall-grid'])), ['is-wall']);
    assert.deepEqual(M.marksOf(doc(['page page-desk', 'major-view major-desk', 'replay-banner replay-desk'])),
        ['in-replay', 'has-major']);
    assert.deepEqual(M.marksOf(doc(['page page-mobile'], [['shell-nav-slot', 'shell-nav', 'user-bar']])),
        ['is-mobile']);
    assert.deepEqual(M.marksOf(doc(['page'], [['shell-nav-slot']])), ['shell-empty']);  // nobody signed in
});

test('a mark is written only when it changes, and goes when its element goes', () => {
    const M = load('page_marks').mods.page_marks;
    const d = doc(['page page-wall']);
    const made = [];
    class Observer {
        constructor(cb) { this.cb = cb; made.push(this); }
        observe(target, opts) { this.opts = opts; }
    }
    M.watch(d, Observer);
    assert.deepEqual(d.writes, [['is-wall', true]]);
    assert.deepEqual(made[0].opts, {childList: true, subtree: true});
    made[0].cb();  // nodes came and went, the marks did not change: nothing written (a class write restyles)
    assert.deepEqual(d.writes, [['is-wall', true]]);
    const next = doc(['page page-wall', 'major-view']);
    next.set.add('is-wall');
    M.apply(next);
    assert.deepEqual(next.writes, [['has-major', true]]);
    const after = doc(['page page-wall']);
    after.set.add('is-wall');
    after.set.add('has-major');
    M.apply(after);  // stood down
    assert.deepEqual(after.writes, [['has-major', false]]);
});
