/* The committed partial Plotly bundle (assets/vendor) is what tools/plotly/build.js builds from the pinned
 * plotly.js: a version bump or a new trace type without `npm run build:plotly` fails here. */
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const {build, nameOf, OUT_DIR, PREFIX, VERSION} = require('../../tools/plotly/build.js');

test('the committed bundle is the build of tools/plotly/panorama.js, named by its content', async () => {
    const committed = fs.readdirSync(OUT_DIR).filter((f) => f.startsWith(PREFIX));
    const bytes = await build();
    assert.deepEqual(committed, [nameOf(bytes)]);
    assert.ok(bytes.equals(fs.readFileSync(`${OUT_DIR}/${committed[0]}`)));
    assert.ok(bytes.subarray(0, 200).toString().includes(`plotly.js ${VERSION} `));
});

test('the bundle holds the trace types the figures use, and no map (MapLibre) trace', async () => {
    const text = (await build()).toString();
    for (const type of ['"scatter"', '"bar"', '"choropleth"', '"scattergeo"']) {
        assert.ok(text.includes(type), type);
    }
    assert.ok(!text.includes('maplibregl'), 'no MapLibre');
});
