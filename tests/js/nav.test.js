'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

const N = () => load('nav').mods.nav;
const LANDING = {viewer: ['/', '/'], officer: ['/', '/'], commander: ['/', '/m'], liaison: ['/dispatch', '/dispatch']};

/** A window at `href` that records pushState, the events it dispatches and scrolls. */
function win({href = 'http://panorama.test/', agent = 'Mozilla/5.0 (X11; Linux x86_64) Chrome/130', hint,
              narrow = false} = {}) {
    const seen = {pushed: [], events: [], scrolled: 0, media: []};
    const location = new URL(href);
    return {
        seen,
        location,
        navigator: {userAgent: agent, ...(hint === undefined ? {} : {userAgentData: {mobile: hint}})},
        matchMedia: (q) => { seen.media.push(q); return {matches: narrow}; },
        history: {pushState: (_s, _t, url) => seen.pushed.push(url)},
        CustomEvent: class { constructor(type) { this.type = type; } },
        dispatchEvent: (e) => seen.events.push(e.type),
        scrollTo: () => { seen.scrolled += 1; },
    };
}

/** A click on a navigation link to `href` (or on something else when `inNav` is false). */
function click(href, {inNav = true, target = '', ...keys} = {}) {
    const link = {target, getAttribute: (name) => (name === 'href' ? href : null)};
    const e = {button: 0, defaultPrevented: false, metaKey: false, ctrlKey: false, shiftKey: false, altKey: false,
               ...keys, prevented: 0,
               target: {closest: (sel) => (inNav && sel === '.shell-nav a[href]' ? link : null)}};
    e.preventDefault = () => { e.prevented += 1; e.defaultPrevented = true; };
    return e;
}

test('a plain click on a navigation link goes there inside the app, as dcc.Link does', () => {
    const w = win({href: 'http://panorama.test/briefings'});
    const e = click('/dispatch');
    assert.equal(N().follow(e, w), true);
    assert.equal(e.prevented, 1);
    assert.deepEqual(w.seen.pushed, ['/dispatch']);
    assert.deepEqual(w.seen.events, ['_dashprivate_pushstate']);
    assert.equal(w.seen.scrolled, 1);
});

test('a modified, middle or foreign click, or one outside the navigation, is left to the browser', () => {
    const cases = [click('/m', {ctrlKey: true}), click('/m', {metaKey: true}), click('/m', {shiftKey: true}),
                   click('/m', {altKey: true}), click('/m', {button: 1}), click('/m', {target: '_blank'}),
                   click('/m', {inNav: false}), click('https://elsewhere.example/m'),
                   click('/m', {defaultPrevented: true})];
    for (const e of cases) {
        const w = win();
        assert.equal(N().follow(e, w), false);
        assert.deepEqual(w.seen.pushed, []);
        assert.deepEqual(w.seen.events, []);
    }
    assert.equal(N().follow({button: 0, target: null}, win()), false);  // a click on the document itself
});

test('a phone is a mobile user agent, its client hint, or a narrow screen', () => {
    assert.equal(N().isPhone(win()), false);
    assert.equal(N().isPhone(win({agent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148'})), true);
    assert.equal(N().isPhone(win({agent: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/130 Mobile'})), true);
    assert.equal(N().isPhone(win({hint: true})), true);
    assert.equal(N().isPhone(win({hint: false})), false);
    const narrow = win({narrow: true});
    assert.equal(N().isPhone(narrow), true);
    assert.deepEqual(narrow.seen.media, [N().PHONE_WIDTH]);
    assert.equal(N().isPhone({navigator: {userAgent: 'x'}}), false);  // no matchMedia: a desk
});

test('each role lands on its page: the desk or the phone one', () => {
    const {landing} = N();
    assert.equal(landing('viewer', LANDING, false), '/');
    assert.equal(landing('officer', LANDING, true), '/');
    assert.equal(landing('commander', LANDING, false), '/');
    assert.equal(landing('commander', LANDING, true), '/m');
    assert.equal(landing('liaison', LANDING, false), '/dispatch');
    assert.equal(landing('liaison', LANDING, true), '/dispatch');
    // a role the table does not hold, inherited names, or a path that is not this site's: the panorama
    assert.equal(landing('nobody', LANDING, false), '/');
    assert.equal(landing('constructor', LANDING, false), '/');
    assert.equal(landing('', undefined, false), '/');
    assert.equal(landing('x', {x: ['//evil.example', 'https://evil.example']}, false), '/');
    assert.equal(landing('x', {x: ['//evil.example', 'https://evil.example']}, true), '/');
});

test('a page asked for wins over the landing page; the root asks for none', () => {
    const {destination} = N();
    assert.equal(destination('/district/futian?w=1h', 'liaison', LANDING, false), '/district/futian?w=1h');
    assert.equal(destination('/', 'liaison', LANDING, false), '/dispatch');
    assert.equal(destination('', 'commander', LANDING, true), '/m');
    assert.equal(destination(undefined, 'viewer', LANDING, true), '/');
    assert.equal(destination(null, 'commander', LANDING, false), '/');
});

test('the module registers its functions for clientside callbacks', () => {
    const {dc, mods} = load('nav');
    assert.equal(dc.panoramaNav, mods.nav);
});
