/* The drill-down's download links: the events table as CSV and Excel, with what the table shows.
 *
 * The links follow the table's state in the browser (no round trip): its window, its filter row exactly as
 * DataTable writes it, its sorted column, and the page's language. The server reads the same filter grammar and
 * falls back from a sort it cannot serve exactly as the table does (dashboard/web/exports.py), so the file holds
 * the rows the table pages through, in its order. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});

    /** Return the address of the district's events as `fmt` (csv or xlsx) for the table's state. */
    function exportHref(code, fmt, state) {
        const s = state || {};
        const q = new URLSearchParams();
        q.set('window', s.window || '1h');
        if (s.filterQuery) {
            q.set('filter', s.filterQuery);
        }
        const first = Array.isArray(s.sortBy) && s.sortBy.length ? s.sortBy[0] : null;
        if (first && first.column_id && (first.direction === 'asc' || first.direction === 'desc')) {
            q.set('sort_by', first.column_id + ':' + first.direction);
        }
        q.set('lang', s.lang === 'en' ? 'en' : 'zh');
        return '/api/districts/' + encodeURIComponent(code || '') + '/events.' + fmt + '?' + q.toString();
    }

    /** The clientside callback: table sort, filter, window, district, language -> the two links' addresses. */
    function hrefs(sortBy, filterQuery, windowValue, code, lang) {
        const state = {sortBy: sortBy, filterQuery: filterQuery, window: windowValue, lang: lang};
        return [exportHref(code, 'csv', state), exportHref(code, 'xlsx', state)];
    }

    const E = {exportHref: exportHref, hrefs: hrefs};
    dc.panoramaExport = E;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = E;
    }
}(typeof window !== 'undefined' ? window : globalThis));
