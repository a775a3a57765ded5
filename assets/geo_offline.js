/* The maps are SVG: Plotly's geo subplot with the city pack's GeoJSON and no base layer. Plotly still asks for a
 * world topojson whenever a trace has a locationmode (geojson-id included) and fetches it from its CDN, which an
 * offline centre cannot reach (the draw fails). Nothing of it is drawn with every base layer hidden, so an empty
 * topology is registered under the name Plotly looks for before it loads (it keeps a PlotlyGeoAssets it finds). */
(function (root) {
    'use strict';
    const EMPTY = {type: 'Topology', objects: {}, arcs: []};
    const NAMES = ['world_110m', 'world_50m'];  // figures.geo_view: scope world, at either resolution

    /** Register the empty topology under each name Plotly may ask for, keeping any real one; return the store. */
    function register(target) {
        const assets = (target.PlotlyGeoAssets = target.PlotlyGeoAssets || {});
        assets.topojson = assets.topojson || {};
        NAMES.forEach((name) => {
            assets.topojson[name] = assets.topojson[name] || EMPTY;
        });
        return assets;
    }

    register(root);
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {register: register, NAMES: NAMES};
    }
})(typeof window !== 'undefined' ? window : globalThis);
