'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, NO_UPDATE, fakeDocument, load, patched, stub} = require('./helpers');

const CONFIG = {
    page: 'panorama', tz: 'UTC', domains: ['traffic', 'security'], codes: ['A', 'B'], figure_ms: 0,
    districts: {A: {short: 'Aa', lon: 114.0, lat: 22.5}, B: {short: 'Bb', lon: 114.1, lat: 22.6}},
    labels: {m_risk: 'Risk', m_risk_population: 'Risk (per resident)', m_all: 'All', traffic: 'Traffic', security: 'Security'},
    scales: {risk: 'reds', counts: 'blues'},
    outline: {accent: 'gold', line: 'grey', highlight: 4, width: 1},
};
const STORE = {state: {windows: {'1h': {districts: {A: {risk: 10.4, counts: {traffic: 2, security: 1}},
    B: {risk: 60.6, counts: {traffic: 5}}}}}}};

/** An element with what the map's label layer uses of one: style, classList, a box, a last child. */
function boxed(tag, box = {left: 0, top: 0}) {
    const el = new FakeElement(tag);
    el.style = {};
    el.classes = new Set();
    el.classList = {add: (c) => el.classes.add(c)};
    el.getBoundingClientRect = () => box;
    Object.defineProperty(el, 'lastChild', {get: () => el.children[el.children.length - 1] || null});
    return el;
}

/** The labels' layer as layouts/common.py map_label_layer renders it: per district a name and a number. */
function labelLayer(codes) {
    const layer = boxed('div');
    layer.offsetParent = boxed('section', {left: 10, top: 20});
    for (const code of codes) {
        const label = boxed('div');
        label.dataset.code = code;
        label.appendChild(new FakeElement('b'));
        const n = new FakeElement('span');
        n.textContent = '0';
        label.appendChild(n);
        layer.appendChild(label);
    }
    return layer;
}

const number = (layer, i) => layer.children[i].lastChild.textContent;

function figures(t, {width = 800, height = 600, queries = {}} = {}) {
    const h = load('live_common', 'live_figures');
    const map = boxed('div', {left: 30, top: 60});
    map.clientWidth = width;
    map.clientHeight = height;
    h.layer = labelLayer(CONFIG.codes);
    h.byId = {'city-map': map, 'map-labels': h.layer, 'live-indicator': new FakeElement('span')};
    stub(t, 'document', fakeDocument(h.byId, queries));
    h.F = h.mods.live_figures;
    return h;
}

const close = (a, b, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, a + ' != ' + b);

test('web mercator: the world spans 0..1, the equator is the middle', (t) => {
    const {F} = figures(t);
    close(F.mx(-180), 0);
    close(F.mx(180), 1);
    close(F.mx(0), 0.5);
    close(F.my(0), 0.5);
    assert.ok(F.my(60) < F.my(0) && F.my(-60) > F.my(0), 'north is up (smaller y)');
});

test('fitView centres the box and fits it inside the padded map; project is its inverse view', (t) => {
    const {F} = figures(t);
    const box = [113.8, 22.4, 114.6, 22.9];
    const view = F.fitView(box, 1000, 500);
    const [cx, cy] = F.project(view.center.lon, view.center.lat, view, 1000, 500);
    close(cx, 0.5);
    close(cy, 0.5);
    const [x0, y0] = F.project(box[0], box[1], view, 1000, 500);
    const [x1, y1] = F.project(box[2], box[3], view, 1000, 500);
    assert.ok(x0 >= 0.04 - 1e-9 && x1 <= 0.96 + 1e-9 && y0 >= 0.04 - 1e-9 && y1 <= 0.96 + 1e-9, [x0, y0, x1, y1]);
    // the tighter side touches the padding
    assert.ok(Math.abs(x0 - 0.04) < 1e-6 || Math.abs(y0 - 0.04) < 1e-6, [x0, y0]);
    assert.ok(F.fitView(box, 2000, 1000).zoom > view.zoom, 'a bigger map zooms in');
});

test('scale: the wall grows with the screen from 1920 px, clamped; other pages stay at 1', (t) => {
    const {F} = figures(t);
    stub(t, 'innerWidth', 3840);
    assert.equal(F.scale({page: 'wall'}), 2);
    globalThis.innerWidth = 100;
    assert.equal(F.scale({page: 'wall'}), 0.6);
    globalThis.innerWidth = 100_000;
    assert.equal(F.scale({page: 'wall'}), 4);
    assert.equal(F.scale({page: 'panorama'}), 1);
});

test('tooSoon follows config.figure_ms', (t) => {
    const {F} = figures(t);
    const now = Date.now();
    assert.equal(F.tooSoon(now, {figure_ms: 5000}), true);
    assert.equal(F.tooSoon(now - 6000, {figure_ms: 5000}), false);
    assert.equal(F.tooSoon(now, {}), false);
});

test('cityMap patches values, labels and measure; the same values again are no update', (t) => {
    const h = figures(t);
    h.fire('live-windows');
    const fig = {layout: {meta: {measure: 'risk', size: '800x600'}}};
    const built = h.F.cityMap(STORE, {measure: 'all'}, 0, fig, CONFIG);
    assert.deepEqual(patched(built, 'data', 0, 'z'), [3, 5]);
    assert.equal(patched(built, 'data', 0, 'zmax'), 5);
    assert.equal(patched(built, 'data', 0, 'colorscale'), 'blues');
    assert.equal(patched(built, 'layout', 'meta', 'measure'), 'all');
    assert.equal(number(h.layer, 1), '5');  // the label's number, written as text (no annotation in the figure)
    assert.equal(built.ops.some(([loc]) => loc.includes('annotations')), false);
    assert.equal(patched(built, 'layout', 'geo', 'lonaxis', 'range'), undefined, 'not resized: not refitted');
    fig.layout.meta.measure = 'all';
    assert.equal(h.F.cityMap(STORE, {measure: 'all'}, 0, fig, CONFIG), NO_UPDATE);
});

test('cityMap on risk: a 0-100 scale, whole points in labels, and a change below a point is no redraw', (t) => {
    const h = figures(t);
    h.fire('live-windows');
    const fig = {layout: {meta: {measure: 'all', size: '800x600'}}};
    const built = h.F.cityMap(STORE, {measure: 'risk'}, 0, fig, CONFIG);
    assert.equal(patched(built, 'data', 0, 'zmax'), 100);
    assert.equal(patched(built, 'data', 0, 'colorbar', 'title', 'text'), 'Risk');
    assert.equal(number(h.layer, 0), '10');
    fig.layout.meta.measure = 'risk';
    const nudged = structuredClone(STORE);
    nudged.state.windows['1h'].districts.A.risk = 10.45;
    assert.equal(h.F.cityMap(nudged, {measure: 'risk'}, 0, fig, CONFIG), NO_UPDATE);
    nudged.state.windows['1h'].districts.A.risk = 11.2;
    assert.notEqual(h.F.cityMap(nudged, {measure: 'risk'}, 0, fig, CONFIG), NO_UPDATE);
});

test('cityMap outlines the spotlight district and refits a resized map', (t) => {
    const h = figures(t, {width: 1000, height: 500});
    h.fire('live-tick');
    const fig = {layout: {meta: {measure: 'all', size: '800x600', bounds: [113.9, 22.4, 114.2, 22.7]}}};
    const built = h.F.cityMap(STORE, {measure: 'all', highlight: 'B'}, 0, fig, CONFIG);
    assert.deepEqual(patched(built, 'data', 0, 'marker', 'line', 'color'), ['grey', 'gold']);
    assert.deepEqual(patched(built, 'data', 0, 'marker', 'line', 'width'), [1, 4]);
    assert.equal(patched(built, 'layout', 'meta', 'highlight'), 'B');
    assert.equal(patched(built, 'layout', 'meta', 'size'), '1000x500');
    const fit = h.F.fitView(fig.layout.meta.bounds, 1000, 500);
    assert.deepEqual(patched(built, 'layout', 'geo', 'center'), fit.center);
    // the geo subplot's ranges are the map's edges: its corners project to the paper's corners
    const [west, east] = patched(built, 'layout', 'geo', 'lonaxis', 'range');
    const [south, north] = patched(built, 'layout', 'geo', 'lataxis', 'range');
    h.F.project(west, north, fit, 1000, 500).forEach((v, i) => close(v, [0, 1][i]));
    h.F.project(east, south, fit, 1000, 500).forEach((v, i) => close(v, [1, 0][i]));
    // the labels' layer over the graph's box (30,60 in a panel at 10,20), each label at its district's centre
    assert.deepEqual([h.layer.style.left, h.layer.style.top, h.layer.style.width, h.layer.style.height],
        ['20px', '40px', '1000px', '500px']);
    const [x, y] = h.F.project(114.0, 22.5, fit, 1000, 500);
    assert.equal(h.layer.children[0].style.left, (x * 1000).toFixed(1) + 'px');
    assert.equal(h.layer.children[0].style.top, ((1 - y) * 500).toFixed(1) + 'px');
    assert.ok(h.layer.classes.has('is-placed'), 'shown once placed');
});

test('cityMap scales every colour bar shown when the map is resized: a district wall\'s streets\' too', (t) => {
    const h = figures(t, {width: 1920, height: 1080});
    stub(t, 'innerWidth', 3840);  // a 4K wall: type twice the size of the 1080p design
    h.fire('live-tick');
    // a district's wall: the district's own scale hidden, points, then the streets' areas with their colour bar
    const fig = {data: [{type: 'choropleth', showscale: false, colorbar: {thickness: 10}}, {type: 'scattergeo'},
        {type: 'choropleth', colorbar: {thickness: 10}}],
    layout: {meta: {measure: 'all', size: '800x600', bounds: [113.9, 22.4, 114.2, 22.7]}}};
    const built = h.F.cityMap(STORE, {measure: 'all'}, 0, fig, Object.assign({}, CONFIG, {page: 'wall'}));
    const k = h.F.scale(Object.assign({}, CONFIG, {page: 'wall'}));
    assert.equal(k, 2);
    assert.equal(patched(built, 'data', 2, 'colorbar', 'thickness'), 20);
    assert.equal(patched(built, 'data', 1, 'colorbar', 'thickness'), undefined, 'a trace without a colour bar');
});

test('cityMap writes a label\'s number at once, even while the map\'s redraw is held back', (t) => {
    const h = figures(t);
    h.fire('live-map');
    const fig = {layout: {meta: {measure: 'all', size: '800x600'}}};
    const held = Object.assign({}, CONFIG, {figure_ms: 60_000});
    const timers = [];
    stub(t, 'setTimeout', (fn, ms) => timers.push([fn, ms]));
    assert.notEqual(h.F.cityMap(STORE, {measure: 'all'}, 0, fig, held), NO_UPDATE);
    const more = structuredClone(STORE);
    more.state.windows['1h'].districts.B.counts.traffic = 9;
    assert.equal(h.F.cityMap(more, {measure: 'all'}, 0, fig, held), NO_UPDATE, 'the colours wait');
    assert.equal(number(h.layer, 1), '9', 'the number does not');
    // ... until the limit ends: then the page asks for the redraw (no tick runs the map every second)
    assert.equal(timers.length, 1);
    assert.ok(timers[0][1] > 59_000 && timers[0][1] <= 60_000, timers[0][1]);
    timers[0][0]();
    assert.deepEqual(h.calls.map(([id]) => id), ['live-redraw']);
    // a page left since (no live page, no map) is not written to: Dash throws on a store it does not have
    h.F.redrawIn(0);
    delete h.byId['live-indicator'];
    timers[1][0]();
    assert.equal(h.calls.length, 1);
    h.fire('live-redraw');
    assert.notEqual(h.F.cityMap(more, {measure: 'all'}, 0, fig, CONFIG), NO_UPDATE, 'drawn when asked');
});

test('cityMap sizes the labels\' type with the wall (their offsets, in em, grow with it)', (t) => {
    const h = figures(t, {width: 1000, height: 500});
    stub(t, 'innerWidth', 3840);
    h.fire('live-tick');
    const meta = {measure: 'all', size: '800x600', bounds: [113.9, 22.4, 114.2, 22.7], labels: [[-2, 0.5], [0, 0]]};
    const wall = Object.assign({}, CONFIG, {page: 'wall'});
    h.F.cityMap(STORE, {measure: 'all'}, 0, {layout: {meta}}, wall);
    assert.equal(h.layer.style.fontSize, '30px');  // 15 px at 1920, twice at 3840
});

test('trend patches x stamps and y series; unchanged data is no update', (t) => {
    const h = figures(t);
    h.fire('live-trend');
    const start = Date.UTC(2024, 0, 1, 8, 0);
    const store = {state: {trend: {start, step_ms: 60_000, series: {traffic: [1, 2, 3], security: [0, 0, 1]}}}};
    const fig = {layout: {font: {size: 12}}};
    const built = h.F.trend(store, 0, CONFIG, fig);
    assert.deepEqual(patched(built, 'data', 0, 'x'), ['2024-01-01 08:00', '2024-01-01 08:01', '2024-01-01 08:02']);
    assert.deepEqual(patched(built, 'data', 1, 'y'), [0, 0, 1]);
    assert.equal(patched(built, 'layout', 'font', 'size'), undefined, 'the font is already the right size');
    assert.equal(h.F.trend(store, 1, CONFIG, fig), NO_UPDATE);
    assert.equal(h.F.trend({state: {}}, 1, CONFIG, fig), NO_UPDATE);
    stub(t, 'innerWidth', 3840);
    const wall = h.F.trend(store, 2, Object.assign({}, CONFIG, {page: 'wall'}), fig);
    assert.equal(patched(wall, 'layout', 'font', 'size'), 24);
});

test('trend\'s first call leaves the lines the server drew, and patches lines of another minute', (t) => {
    const h = figures(t);
    h.fire();
    const start = Date.UTC(2024, 0, 1, 8, 0);
    const store = {state: {trend: {start, step_ms: 60_000, series: {traffic: [1, 2], security: [0, 3]}}}};
    const x = ['2024-01-01 08:00', '2024-01-01 08:01'];
    const fig = {layout: {font: {size: 12}}, data: [{x: x, y: [1, 2]}, {x: x, y: [0, 3]}]};
    assert.equal(h.F.trend(store, 0, CONFIG, fig), NO_UPDATE, 'the same lines: no redraw as the page loads');
    const later = structuredClone(store);
    later.state.trend.start += 60_000;
    h.F.last.trend = null;
    assert.deepEqual(patched(h.F.trend(later, 0, CONFIG, fig), 'data', 0, 'x'), ['2024-01-01 08:01', '2024-01-01 08:02']);
    const other = {layout: {font: {size: 12}}, data: [{x: x, y: [1, 2]}, {x: x, y: [0, 4]}]};
    h.F.last.trend = null;
    assert.deepEqual(patched(h.F.trend(store, 0, CONFIG, other), 'data', 1, 'y'), [0, 3]);
    assert.equal(h.F.sameLines(null, x, [[1, 2]]), false);
});

test('spotTrend patches the spotlit district\'s lines, and waits for its data', (t) => {
    const h = figures(t);
    const start = Date.UTC(2024, 0, 1, 8, 0);
    const data = {code: 'A', trend: {start, step_ms: 60_000, series: {traffic: [1, 2], security: [0, 3]}}};
    const [built] = h.F.spotTrend([data], {highlight: 'A'}, CONFIG);
    assert.deepEqual(patched(built, 'data', 0, 'x'), ['2024-01-01 08:00', '2024-01-01 08:01']);
    assert.deepEqual(patched(built, 'data', 1, 'y'), [0, 3]);
    assert.deepEqual(h.F.spotTrend([data], {highlight: 'B'}, CONFIG), [NO_UPDATE]);
    assert.deepEqual(h.F.spotTrend([null], {highlight: 'A'}, CONFIG), [NO_UPDATE]);
});

test('cityMap on risk without a baseline says so in its title, and again when the baseline comes', (t) => {
    const h = figures(t);
    h.fire('live-windows');
    const fig = {layout: {meta: {measure: 'risk', size: '800x600'}}};
    const early = structuredClone(STORE);
    early.state.windows['1h'].risk_basis = 'population';
    const built = h.F.cityMap(early, {measure: 'risk'}, 0, fig, CONFIG);
    assert.equal(patched(built, 'data', 0, 'colorbar', 'title', 'text'), 'Risk (per resident)');
    assert.equal(patched(built, 'layout', 'meta', 'basis'), 'population');
    fig.layout.meta.basis = 'population';
    const later = h.F.cityMap(STORE, {measure: 'risk'}, 0, fig, CONFIG);
    assert.equal(patched(later, 'data', 0, 'colorbar', 'title', 'text'), 'Risk');
});
