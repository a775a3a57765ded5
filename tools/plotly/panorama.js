/* The pages' Plotly: its core (scatter included) and only the trace types the figures use (dashboard/figures).
 * Built by `npm run build:plotly` (tools/plotly/build.js) into assets/vendor; see docs/performance.md, issue 15. */
'use strict';
const Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/bar'),         // the district's streets (figures.make_street_bars)
    require('plotly.js/lib/choropleth'),  // the maps' districts (figures.make_city_map, incident_map)
    require('plotly.js/lib/scattergeo'),  // an incident's reports on its map (incident_map)
]);

module.exports = Plotly;
