'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {fakeDocument, load, stub} = require('./helpers');

const U = () => load('live_units').mods.live_units;
const flat = (lon, lat) => [lon * 100, lat * 100];  // a projection that is easy to reason about

test('units of one cell and status aggregate into one marker at their mean place; one alone is named', () => {
    const u = U();
    const marks = u.cluster([
        {unit: 'a', status: 'available', lon: 0.01, lat: 0.01},
        {unit: 'b', status: 'available', lon: 0.03, lat: 0.05},
        {unit: 'c', status: 'en_route', lon: 0.02, lat: 0.02},
        {unit: 'd', status: 'available', lon: 0.5, lat: 0.5},
    ], flat, 100, 100, 10);
    const byKey = Object.fromEntries(marks.map((m) => [m.status + m.n, m]));
    assert.equal(marks.length, 3);
    assert.equal(byKey.available2.unit, null);
    assert.equal(byKey.available2.y, 3);
    assert.equal(byKey.en_route1.unit, 'c');
    assert.equal(byKey.en_route1.pos, '0.02000,0.02000');
    assert.deepEqual([byKey.available1.x, byKey.available1.y, byKey.available1.unit], [50, 50, 'd']);
});

test('units off the map or without a place are not drawn', () => {
    const marks = U().cluster([{unit: 'a', status: 'available', lon: 2, lat: 0.1},
        {unit: 'b', status: 'available', lon: null, lat: null}], flat, 100, 100, 10);
    assert.deepEqual(marks, []);
});

test('2,000 units aggregate into at most one marker per cell and status', () => {
    const list = [];
    for (let i = 0; i < 2000; i++) {
        list.push({unit: 'u' + i, status: ['available', 'en_route', 'on_scene', 'off_duty'][i % 4],
            lon: (i * 7919 % 1000) / 1000, lat: (i * 104729 % 1000) / 1000});
    }
    const marks = U().cluster(list, flat, 100, 100, 26);
    assert.ok(marks.length <= 4 * 4 * 4, marks.length);  // 4 x 4 cells of 26 px on 100 px, 4 statuses
    assert.equal(marks.reduce((n, m) => n + m.n, 0), 2000);
});

test('a snapshot replaces the units, a delta folds its units in, the latest report wins', (t) => {
    let drawn = 0;
    stub(t, 'document', fakeDocument({}));  // no map on this page: a draw finds nothing to draw on
    stub(t, 'requestAnimationFrame', (f) => {
        drawn += 1;
        f();
    });
    const u = U();
    const snap = {type: 'snapshot', state: {units: [{unit: 'a', lat: 1, lon: 1}, {unit: 'b', lat: 2, lon: 2}]}};
    assert.equal(u.take(snap), true);
    assert.equal(u.units.size, 2);
    assert.equal(snap.state.units, undefined);  // not kept twice
    u.take({type: 'delta', units: [{unit: 'a', lat: 5, lon: 5}, {unit: 'c', lat: 3, lon: 3}]});
    assert.deepEqual([...u.units.keys()], ['b', 'a', 'c']);
    assert.equal(u.units.get('a').lat, 5);
    assert.equal(u.take({type: 'delta', events: []}), false);
    assert.equal(drawn, 2);  // a redraw per frame that carried units
    u.take({type: 'snapshot', state: {units: [{unit: 'z', lat: 0, lon: 0}]}});
    assert.deepEqual([...u.units.keys()], ['z']);
});

test('the figure view projects as figures.geo_view: the centre at the middle, east to the right', () => {
    const view = U().viewOf({center: {lon: 114, lat: 22.6}, lonaxis: {range: [113.5, 114.5]}}, 800, 600);
    const [x, y] = view(114, 22.6);
    assert.ok(Math.abs(x - 400) < 1e-9 && Math.abs(y - 300) < 1e-9);
    assert.ok(view(114.5, 22.6)[0] - 800 < 1e-6 && view(114, 22.7)[1] < 300);
    assert.equal(U().viewOf(null, 800, 600), null);
});

test('a unit sent from beyond the command view map waits at its edge, on its side; the city map leaves it out', () => {
    const u = U();
    const far = [{unit: 'a', status: 'en_route', lon: 0.5, lat: -3}];  // far above a 100 x 100 map
    assert.deepEqual(u.cluster(far, flat, 100, 100, 10), []);
    const [m] = u.cluster(far, flat, 100, 100, 10, true);
    assert.deepEqual([m.x, m.y, m.edge, m.unit], [50, 8, true, 'a']);
    const [inside] = u.cluster([{unit: 'b', status: 'on_scene', lon: 0.5, lat: 0.5}], flat, 100, 100, 10, true);
    assert.equal(inside.edge, false);
    // held at the drawn map's frame when the graph's box is larger (a geo subplot keeps its aspect)
    const [framed] = u.cluster(far, flat, 100, 100, 10, [0, 20, 100, 80]);
    assert.deepEqual([framed.x, framed.y, framed.edge], [50, 28, true]);
});

test('the line of a unit sent says its status and its straight-line distance to the scene in the page words', () => {
    const u = U();
    const words = {lat: 22.54, lon: 114.05, statuses: {en_route: '在途', on_scene: '到场'}, km: '距现场直线 {km} 公里',
        nokm: '位置未知'};
    assert.deepEqual(u.lineOf({status: 'en_route', lat: 22.55, lon: 114.05}, words),
        {status: 'en_route', said: '在途', km: '距现场直线 1.1 公里'});
    assert.equal(u.lineOf({status: 'on_scene', lat: null, lon: null}, words).km, '位置未知');
    assert.equal(u.lineOf({status: 'bogus', lat: 22.54, lon: 114.05}, words).status, 'available');
    assert.ok(Math.abs(u.kmBetween(22.54, 114.05, 22.55, 114.05) - 1.112) < 0.001);
});

/** A page without maps whose draws are counted (each draw looks for the command view once) and whose animation
 *  frames run only when the test says. */
function countedPage(t) {
    const seen = {draws: 0, frames: []};
    const doc = fakeDocument({});
    const byId = doc.getElementById;
    doc.getElementById = (id) => {
        seen.draws += id === 'major-view' ? 1 : 0;
        return byId(id);
    };
    stub(t, 'document', doc);
    stub(t, 'requestAnimationFrame', (f) => seen.frames.push(f));
    seen.frame = () => seen.frames.splice(0).forEach((f) => f());
    return seen;
}

test('a frame\'s units are drawn in the task that took them, not at an animation frame the page holds back', (t) => {
    const seen = countedPage(t);
    const u = U();
    u.take({type: 'delta', units: [{unit: 'a', lat: 1, lon: 1}]});
    assert.equal(seen.draws, 1, 'drawn at once');
    assert.equal(seen.frames.length, 1, 'the next animation frame opens the next draw');
    seen.frame();
    assert.equal(seen.draws, 1, 'nothing came since: the frame draws nothing');
    u.take({type: 'delta', units: [{unit: 'a', lat: 2, lon: 2}]});
    assert.equal(seen.draws, 2, 'after an animation frame, the next units are drawn at once again');
});

test('frames faster than the animation frames are drawn once per animation frame, with the latest units', (t) => {
    const seen = countedPage(t);
    const u = U();
    u.take({type: 'delta', units: [{unit: 'a', lat: 1, lon: 1}]});
    u.take({type: 'delta', units: [{unit: 'a', lat: 2, lon: 2}]});
    u.take({type: 'delta', units: [{unit: 'b', lat: 3, lon: 3}]});
    assert.equal(seen.draws, 1, 'the first drawn at once, the next two wait for the animation frame');
    assert.equal(seen.frames.length, 1, 'one animation frame callback, however many frames came');
    seen.frame();
    assert.equal(seen.draws, 2, 'both drawn in one');
    assert.equal(u.units.get('a').lat, 2);
    assert.equal(u.take({type: 'delta', events: [{id: 1}]}), false);
    assert.equal(seen.draws, 2, 'a frame without units draws nothing');
    assert.equal(seen.frames.length, 0);
});

/** A fake SVG node: attributes, children, a dataset. */
function svgNode(tag) {
    return {tag: tag, attrs: {}, dataset: {}, children: [], style: {}, parentNode: null, textContent: '',
        setAttribute(k, v) {
            this.attrs[k] = String(v);
        },
        removeAttribute(k) {
            delete this.attrs[k];
        },
        appendChild(c) {
            c.parentNode = this;
            this.children.push(c);
            return c;
        }};
}

/** A page with the city map drawn (a Plotly geo subplot whose projection is flat) and its unit layer; every
 *  measure of the map's box is counted (each forces the page's style and layout). */
function mapPage(t) {
    const seen = {measures: 0, frames: []};
    const plot = {getBoundingClientRect: () => {
        seen.measures += 1;
        return {left: 0, top: 0, width: 1000, height: 1000, right: 1000, bottom: 1000};
    }};
    const gd = {_fullLayout: {geo: {_subplot: {projection: ([lon, lat]) => [lon * 10, lat * 10]}}},
        querySelector: (sel) => (sel === '.main-svg' ? plot : null)};
    const layer = svgNode('div');
    const doc = fakeDocument({'unit-layer': layer});
    doc.querySelector = (sel) => (sel === '#city-map .js-plotly-plot' ? gd : null);
    doc.createElementNS = (_ns, tag) => svgNode(tag);
    doc.createTextNode = (data) => ({data: data});
    stub(t, 'document', doc);
    stub(t, 'requestAnimationFrame', (f) => seen.frames.push(f));
    seen.frame = () => seen.frames.splice(0).forEach((f) => f());
    seen.mark = (unit) => layer.children[0].children.find((g) => g.dataset.unit === unit);
    return seen;
}

test('a draw in the socket\'s message task uses the map\'s last measure; the animation frame after it measures', (t) => {
    const seen = mapPage(t);
    const u = U();
    u.take({type: 'delta', units: [{unit: 'a', status: 'on_scene', lat: 10, lon: 10}]});
    assert.equal(seen.measures, 1, 'never measured: measured once');
    assert.equal(seen.mark('a').dataset.pos, '10.00000,10.00000');
    seen.frame();
    assert.equal(seen.measures, 2, 'measured again in the animation frame');
    u.take({type: 'delta', units: [{unit: 'a', status: 'on_scene', lat: 20, lon: 20}]});
    assert.equal(seen.measures, 2, 'the message task forced no style and layout');
    assert.equal(seen.mark('a').dataset.pos, '20.00000,20.00000', 'and drew the unit where it now is');
    assert.equal(seen.mark('a').attrs.transform, 'translate(200.0,200.0)');
});

test('a cluster keeps its marker from draw to draw; a new one takes a marker let go of, of its status first', () => {
    const {assign} = U();
    const pool = [];
    const slots = new Map();
    let made = 0;
    const make = () => ({n: made++, key: null, cls: null});
    const mk = (key, status) => ({key: key, status: status});
    const first = assign([mk('1,1,available', 'available'), mk('2,2,en_route', 'en_route')], pool, slots, make);
    first[0].cls = 'unit-mark u-available';
    first[1].cls = 'unit-mark u-en_route';
    const again = assign([mk('2,2,en_route', 'en_route'), mk('1,1,available', 'available')], pool, slots, make);
    assert.deepEqual(again.map((p) => p.n), [1, 0], 'the same markers, whatever the order');
    // the available cluster moved to another cell; the en-route one is gone
    const moved = assign([mk('3,3,available', 'available')], pool, slots, make);
    assert.deepEqual(moved.map((p) => p.n), [0], 'the available marker let go of, not the en-route one');
    assert.equal(pool[1].key, null, 'the en-route marker is let go of (hidden)');
    assert.equal(made, 2, 'no marker made while one was free');
});
