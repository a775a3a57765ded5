'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

/** An element with attributes and the descendants a selector finds (matched by a predicate). */
function el(attrs = {}, found = []) {
    const a = new Map(Object.entries(attrs));
    return {
        id: attrs.id || '',
        getAttribute: (k) => (a.has(k) ? a.get(k) : null),
        setAttribute: (k, v) => a.set(k, String(v)),
        hasAttribute: (k) => a.has(k),
        removeAttribute: (k) => a.delete(k),
        querySelectorAll: () => found,
        attrs: a,
    };
}

/** Dash 4's RadioItems as it renders: a listbox of option labels, the second one selected. */
function radioItems(id) {
    const labels = [el({role: 'option', 'aria-selected': 'false'}), el({role: 'option', 'aria-selected': 'true'})];
    return {list: el({id, role: 'listbox'}, labels), labels};
}

function doc(lists, targets = [], ids = {}) {
    return {
        getElementById: (id) => ids[id] || null,
        querySelectorAll: (sel) => (sel.startsWith('.dash-radioitems') ? lists
            : sel.startsWith('.dash-dropdown') ? targets : []),
    };
}

test('a RadioItems listbox becomes a radiogroup named by its label, its labels plain', () => {
    const A = load('a11y').mods.a11y;
    const {list, labels} = radioItems('window-select');
    const d = doc([list], [], {'window-select-label': el()});
    assert.equal(A.repair(d), 1);
    assert.equal(list.getAttribute('role'), 'radiogroup');
    assert.equal(list.getAttribute('aria-labelledby'), 'window-select-label');
    for (const label of labels) {
        assert.equal(label.hasAttribute('role'), false);
        assert.equal(label.hasAttribute('aria-selected'), false);
    }
    assert.equal(A.repair(d), 0, 'a second pass changes nothing (the observer settles)');
    labels[0].setAttribute('aria-selected', 'true');  // React, when the choice changes
    assert.equal(A.repair(d), 1);
    assert.equal(labels[0].hasAttribute('aria-selected'), false);
});

test('a list without a label element gets no dangling aria-labelledby', () => {
    const A = load('a11y').mods.a11y;
    const {list} = radioItems('x');
    A.repair(doc([list]));
    assert.equal(list.getAttribute('aria-labelledby'), null);
});

test('a hidden focus target leaves the Tab order', () => {
    const A = load('a11y').mods.a11y;
    const target = el({'aria-hidden': 'true'});
    assert.equal(A.repair(doc([], [target])), 1);
    assert.equal(target.getAttribute('tabindex'), '-1');
    assert.equal(A.repair(doc([], [target])), 0);
});

test('watch repairs at once and on every change it observes', () => {
    const A = load('a11y').mods.a11y;
    const {list} = radioItems('w');
    const d = doc([list]);
    d.documentElement = {};
    let fire = null;
    let watched = null;
    class Observer {
        constructor(cb) {
            fire = cb;
        }

        observe(node, options) {
            watched = [node, options];
        }
    }
    A.watch(d, Observer);
    assert.equal(list.getAttribute('role'), 'radiogroup');
    assert.equal(watched[0], d.documentElement);
    assert.equal(watched[1].subtree, true);
    list.setAttribute('role', 'listbox');
    fire();
    assert.equal(list.getAttribute('role'), 'radiogroup');
});

test('a table\'s icon-only page buttons are named in the page\'s language', () => {
    const A = load('a11y').mods.a11y;
    const next = el();
    next.className = 'next-page';
    const other = el();
    other.className = 'something-else';
    assert.equal(A.namePageButton(next, 'zh-CN'), true);
    assert.equal(next.getAttribute('aria-label'), '下一页');
    assert.equal(A.namePageButton(next, 'zh-CN'), false);
    assert.equal(A.namePageButton(next, 'en'), true);
    assert.equal(next.getAttribute('aria-label'), 'Next page');
    assert.equal(A.namePageButton(other, 'en'), false);
    assert.equal(other.getAttribute('aria-label'), null);
});
