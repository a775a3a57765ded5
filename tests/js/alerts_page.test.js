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
