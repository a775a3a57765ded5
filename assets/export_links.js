/* The officers' download links: the drill-down's events table, /dispatch's task board and /alerts' trail as CSV
 * and Excel, with what each shows.
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

    /** The task board's filters (its department, the incident it is limited to or all) -> the two links. */
    function taskHrefs(department, scope, selected, lang) {
        const q = new URLSearchParams();
        if (department) {
            q.set('department', department);
        }
        if (scope !== 'all' && Number.isInteger(selected) && selected > 0) {
            q.set('incident', String(selected));
        }
        q.set('lang', lang === 'en' ? 'en' : 'zh');
        return ['csv', 'xlsx'].map((fmt) => '/api/tasks.' + fmt + '?' + q.toString());
    }

    /** /alerts' filters (each toggle's presses and id: on after an odd number; the district) -> the two links. */
    function alertHrefs(clicks, district, lang, ids) {
        const on = {status: [], level: []};
        (ids || []).forEach((id, i) => {
            const n = (clicks || [])[i];
            if (id && on[id['alerts-filter']] && Number.isInteger(n) && n % 2 === 1) {
                on[id['alerts-filter']].push(id.value);
            }
        });
        const q = new URLSearchParams();
        ['status', 'level'].forEach((k) => {
            if (on[k].length) {
                q.set(k, on[k].join(','));
            }
        });
        if (district) {
            q.set('district', district);
        }
        q.set('lang', lang === 'en' ? 'en' : 'zh');
        return ['csv', 'xlsx'].map((fmt) => '/api/alerts.' + fmt + '?' + q.toString());
    }

    const E = {exportHref: exportHref, hrefs: hrefs, taskHrefs: taskHrefs, alertHrefs: alertHrefs};
    dc.panoramaExport = E;
    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = E;
    }
}(typeof window !== 'undefined' ? window : globalThis));
