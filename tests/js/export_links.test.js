'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {load} = require('./helpers');

const E = () => load('export_links').mods.export_links;

function params(href) {
    const url = new URL(href, 'http://panorama.test');
    return {path: url.pathname, q: Object.fromEntries(url.searchParams)};
}

test('a link carries the window, the filter row as written, the sorted column and the language', () => {
    const [csv, xlsx] = E().hrefs([{column_id: 'severity', direction: 'desc'}],
                                  '{severity} >= 3 && {street} contains 园岭', '24h', '440304', 'en');
    assert.deepEqual(params(csv), {path: '/api/districts/440304/events.csv',
                                   q: {window: '24h', filter: '{severity} >= 3 && {street} contains 园岭',
                                       sort_by: 'severity:desc', lang: 'en'}});
    assert.equal(params(xlsx).path, '/api/districts/440304/events.xlsx');
    assert.deepEqual(params(xlsx).q, params(csv).q);
});

test('an untouched table exports the last hour newest first in Chinese', () => {
    const [csv] = E().hrefs([], '', undefined, '440304', undefined);
    assert.deepEqual(params(csv).q, {window: '1h', lang: 'zh'});
});

test('characters that mean something in a URL stay inside their parameter', () => {
    const href = E().exportHref('a/b', 'csv', {filterQuery: '{title} contains a&b=c#d?', sortBy: [{column_id: 'title', direction: 'asc'}]});
    const {path, q} = params(href);
    assert.equal(path, '/api/districts/a%2Fb/events.csv');
    assert.equal(q.filter, '{title} contains a&b=c#d?');
    assert.equal(q.sort_by, 'title:asc');
});

test('a sort with no direction is not sent', () => {
    const {q} = params(E().exportHref('440304', 'csv', {sortBy: [{column_id: 'time', direction: 'sideways'}]}));
    assert.equal(q.sort_by, undefined);
});

test('it registers on dash_clientside for the page', () => {
    const {dc, mods} = load('export_links');
    assert.equal(dc.panoramaExport, mods.export_links);
});

test('the task board\'s links follow its department and the incident it is limited to', () => {
    const [csv, xlsx] = E().taskHrefs('fire', 'incident', 7, 'en');
    assert.deepEqual(params(csv), {path: '/api/tasks.csv', q: {department: 'fire', incident: '7', lang: 'en'}});
    assert.equal(params(xlsx).path, '/api/tasks.xlsx');
    assert.deepEqual(params(E().taskHrefs(null, 'all', 7, 'zh')[0]).q, {lang: 'zh'});  // every incident
    assert.deepEqual(params(E().taskHrefs(null, 'incident', null, undefined)[0]).q, {lang: 'zh'});  // none selected
});

test('/alerts\' links carry the toggles pressed on, the district and the language', () => {
    const ids = [{'alerts-filter': 'status', value: 'firing'}, {'alerts-filter': 'status', value: 'pending'},
        {'alerts-filter': 'level', value: 'red'}, {'alerts-filter': 'level', value: 'orange'}];
    const [csv, xlsx] = E().alertHrefs([1, 2, 3, 1], '440304', 'en', ids);  // pending pressed twice: off again
    assert.deepEqual(params(csv), {path: '/api/alerts.csv',
                                   q: {status: 'firing', level: 'red,orange', district: '440304', lang: 'en'}});
    assert.equal(params(xlsx).path, '/api/alerts.xlsx');
    assert.deepEqual(params(E().alertHrefs([0, 0, 0, 0], null, 'zh', ids)[0]).q, {lang: 'zh'});
    assert.deepEqual(params(E().alertHrefs(undefined, null, 'zh', undefined)[0]).q, {lang: 'zh'});
});
