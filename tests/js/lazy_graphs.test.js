/* dcc.Graph's lazy Plotly URL pinned to the partial bundle that the page's meta tag names. */
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {pin} = require('../../assets/lazy_graphs.js');

function doc(url) {
    return {querySelector: (sel) => (url !== null && sel === 'meta[name="panorama-plotly"]'
        ? {getAttribute: (name) => (name === 'content' ? url : null)} : null)};
}

test('pin keeps the bundle\'s URL whatever the renderer assigns later', () => {
    const win = {};
    assert.equal(pin(win, doc('/assets/vendor/plotly-panorama.0123456789abcdef.js')),
        '/assets/vendor/plotly-panorama.0123456789abcdef.js');
    win._dashPlotlyJSURL = '/_dash-component-suites/plotly/package_data/plotly.min.js';
    assert.equal(win._dashPlotlyJSURL, '/assets/vendor/plotly-panorama.0123456789abcdef.js');
});

test('without the meta tag (no bundle built) the renderer\'s URL stands', () => {
    const win = {};
    assert.equal(pin(win, doc(null)), null);
    win._dashPlotlyJSURL = '/plotly.min.js';
    assert.equal(win._dashPlotlyJSURL, '/plotly.min.js');
});
