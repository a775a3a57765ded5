'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

/** A document holding the server's drawing (unless `drawn` is false) and #page with `pageChildren` children. */
function doc({drawn = true, pageChildren = 0} = {}) {
    const state = {drawn, removed: 0};
    const drawing = {remove: () => { state.drawn = false; state.removed += 1; }};
    const page = {childElementCount: pageChildren};
    return {
        state, page,
        body: {},
        getElementById: (id) => (id === 'first-paint' ? (state.drawn ? drawing : null) : id === 'page' ? page : null),
    };
}

/** A MutationObserver stand-in whose callback the test fires. */
function observers() {
    const made = [];
    class Observer {
        constructor(cb) { this.cb = cb; this.connected = false; made.push(this); }
        observe() { this.connected = true; }
        disconnect() { this.connected = false; }
    }
    return {Observer, made};
}

test('the drawing stays until the live page has content, then goes, once', () => {
    const F = load('first_paint').mods.first_paint;
    const d = doc();
    const {Observer, made} = observers();
    const timers = [];
    F.watch(d, Observer, (fn, ms) => timers.push([fn, ms]));
    assert.equal(d.state.drawn, true, 'kept while Dash has not drawn the page');
    made[0].cb();  // the shell appears, the page still empty
    assert.equal(d.state.drawn, true);
    d.page.childElementCount = 3;  // the router's callback filled #page
    made[0].cb();
    assert.equal(d.state.drawn, false);
    assert.equal(made[0].connected, false, 'the observer stops');
    timers[0][0]();  // the give-up timer later finds nothing to remove
    assert.equal(d.state.removed, 1);
});

test('a drawing whose app never draws is removed after the give-up time', () => {
    const F = load('first_paint').mods.first_paint;
    const d = doc();
    const {Observer, made} = observers();
    const timers = [];
    F.watch(d, Observer, (fn, ms) => timers.push([fn, ms]));
    assert.equal(timers[0][1], F.GIVE_UP_MS);
    timers[0][0]();
    assert.equal(d.state.drawn, false);
    assert.equal(made[0].connected, false);
});

test('a page without a drawing (or already drawn) is left alone', () => {
    const F = load('first_paint').mods.first_paint;
    const {Observer, made} = observers();
    assert.equal(F.watch(doc({drawn: false}), Observer, () => assert.fail('no timer')), null);
    const ready = doc({pageChildren: 1});
    assert.equal(F.watch(ready, Observer, () => assert.fail('no timer')), null);
    assert.equal(ready.state.drawn, false);
    assert.equal(made.length, 0);
});
