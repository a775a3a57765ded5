/* The SVG maps' offline topojson: Plotly finds an empty world topology and fetches none from its CDN. */
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {register, NAMES} = require('../../assets/geo_offline.js');

test('register puts an empty topology under each name Plotly may ask for', () => {
    const root = {};
    const assets = register(root);
    assert.equal(root.PlotlyGeoAssets, assets);
    for (const name of NAMES) {
        assert.deepEqual(assets.topojson[name], {type: 'Topology', objects: {}, arcs: []});
    }
});

test('register keeps what Plotly (or a real topology) put there first', () => {
    const real = {type: 'Topology', objects: {land: {}}, arcs: [[0, 0]]};
    const root = {PlotlyGeoAssets: {topojson: {world_110m: real}, 'x.json': 1}};
    register(root);
    assert.equal(root.PlotlyGeoAssets.topojson.world_110m, real);
    assert.equal(root.PlotlyGeoAssets['x.json'], 1);
    assert.ok(root.PlotlyGeoAssets.topojson.world_50m);
});
