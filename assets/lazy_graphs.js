/* dcc.Graph loads Plotly itself when the page has none yet (window.Plotly), from window._dashPlotlyJSURL, which
 * Dash's renderer sets to the full plotly.min.js (4.8 MB) as it starts. The pages use a partial bundle
 * (tools/plotly, named by dashboard/web/plotly_bundle.py in a meta tag): a graph mounted by an in-app navigation
 * from a page without one (/briefings, /m) loads that bundle instead. */
(function (root) {
    'use strict';

    /** Pin doc's window's lazy Plotly URL to the bundle its meta tag names; return that URL (null: none). */
    function pin(win, doc) {
        const meta = doc.querySelector('meta[name="panorama-plotly"]');
        const url = meta && meta.getAttribute('content');
        if (!url) {
            return null;
        }
        // The renderer's own assignment (on mount) is ignored: the property keeps the bundle's URL.
        Object.defineProperty(win, '_dashPlotlyJSURL', {configurable: true, get: () => url, set: () => {}});
        return url;
    }

    if (root.document) {
        pin(root, root.document);
    }
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = {pin: pin};
    }
})(typeof window !== 'undefined' ? window : globalThis);
