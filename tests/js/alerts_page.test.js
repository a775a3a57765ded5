'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

const A = () => load('alerts_page').mods.alerts_page;

test('a filter button is pressed after an odd number of presses, and off before any', () => {
    assert.deepEqual([0, 1, 2, 3].map(A().pressed), ['false', 'true', 'false', 'true']);
    assert.equal(A().pressed(undefined), 'false');
    assert.equal(A().pressed(null), 'false');
});

test('the fallback poll runs only while the socket is not live', () => {
    assert.equal(A().pollOff({mode: 'live'}), true);
    for (const mode of ['connecting', 'reconnecting', 'polling']) {
        assert.equal(A().pollOff({mode: mode}), false, mode);
    }
    assert.equal(A().pollOff(null), false);
});
