'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const {FakeElement, NO_UPDATE, fakeDocument, load, stub} = require('./helpers');

const CONFIG = {
    page: 'panorama', lang: 'en', tz: 'UTC', domains: ['traffic', 'security'], codes: ['A', 'B', 'C'],
    districts: {A: {name: 'Alpha', population: 1_250_000}, B: {name: 'Beta', population: 10},
        C: {name: 'Gamma', population: 10}},
    kinds: {jam: 'Traffic jam'}, stale_after: {traffic: 60, security: 60},
    labels: {traffic: 'Traffic', security: 'Security', never: 'never', seconds_ago: '{s}s ago',
        minutes_ago: '{m}m ago', hours_ago: '{h}h ago', per_min: '{n}/min', events: 'events', spotlight: 'Spotlight',
        risk: 'Risk', population: 'Population', risk_rank: 'rank {rank}/{n}', city_share: '{p}% of the city',
        ten_thousand: '{n}万'},
};
const WINDOW = {totals: {traffic: 12, security: 3}, previous: {traffic: 10, security: 3},
    districts: {A: {risk: 20, counts: {traffic: 2}}, B: {risk: 75.56, counts: {traffic: 6, security: 2}},
        C: {risk: 20, counts: {traffic: 4, security: 1}}}};
const STORE = {state: {windows: {'1h': WINDOW}}};

function render(t, byId = {}) {
    const h = load('live_common', 'live_render');
    const doc = fakeDocument(byId);
    stub(t, 'document', doc);
    h.R = h.mods.live_render;
    return h;
}

const ev = (id, ts, more) => Object.assign({id: id, domain: 'traffic', ts: ts, severity: 2, district: 'A',
    street: null, kind: 'jam', title: 'T' + id}, more);

test('deltaOf: flat, up and down, with a percentage when there was a previous count', (t) => {
    const {R} = render(t);
    assert.deepEqual(R.deltaOf(5, 5), ['— 0', 'kpi-delta flat']);
    assert.deepEqual(R.deltaOf(12, 10), ['▲ 2 · +20%', 'kpi-delta up']);
    assert.deepEqual(R.deltaOf(7, 10), ['▼ 3 · −30%', 'kpi-delta down']);
    assert.deepEqual(R.deltaOf(4, 0), ['▲ 4', 'kpi-delta up']);
});

test('kpis: counts, change texts and classes drawn into the tiles; dashes before any state; nothing through Dash', (t) => {
    const ids = ['kpi-traffic', 'kpi-security', 'kpi-traffic-delta', 'kpi-security-delta'];
    const el = Object.fromEntries(ids.map((id) => [id, new FakeElement('span')]));
    const h = render(t, el);
    const tiles = () => ids.map((id) => el[id].textContent).concat([el['kpi-traffic-delta'].className,
        el['kpi-security-delta'].className]);
    assert.deepEqual(h.R.kpis(null, {}, CONFIG), Array(6).fill(NO_UPDATE));
    assert.deepEqual(tiles(), ['–', '–', '', '', 'kpi-delta', 'kpi-delta']);
    h.fire('live-windows');
    assert.deepEqual(h.R.kpis(STORE, {}, CONFIG), Array(6).fill(NO_UPDATE));
    assert.deepEqual(tiles(), ['12', '3', '▲ 2 · +20%', '— 0', 'kpi-delta up', 'kpi-delta flat']);
});

test('drawTicker: false without a ticker or config', (t) => {
    const {R} = render(t);
    assert.equal(R.drawTicker([ev('1', 1)], CONFIG), false);
    const r2 = render(t, {'event-ticker': new FakeElement('ul')}).R;
    assert.equal(r2.drawTicker([], null), false);
});

test('drawTicker draws rows newest first by event time, ties in arrival order', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    assert.equal(R.drawTicker([ev('1', 100), ev('2', 300), ev('3', 100), ev('4', 200)], CONFIG), true);
    assert.deepEqual(ul.children.map((li) => li.dataset.key), ['traffic:2', 'traffic:4', 'traffic:1', 'traffic:3']);
    const li = ul.children[0];
    assert.equal(li.className, 'ticker-item sev-2 dom-traffic');
    assert.deepEqual(li.children.map((s) => s.className), ['ticker-time', 'ticker-dom', 'ticker-place', 'ticker-title']);
    assert.equal(li.textContent, '00:00:00|Traffic|Alpha|T2');
});

test('drawTicker keeps its rows in place: a new event rewrites their text, no row moves', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    R.drawTicker([ev('1', 100), ev('2', 50)], CONFIG);
    const [row1, row2] = ul.children;
    const title1 = row1.children[3];
    R.drawTicker([ev('3', 200), ev('1', 100), ev('2', 50)], CONFIG);
    assert.deepEqual(ul.children.map((li) => li.dataset.key), ['traffic:3', 'traffic:1', 'traffic:2']);
    assert.equal(ul.children[0], row1, 'the first row stays the first row and shows the newest event');
    assert.equal(ul.children[1], row2, 'the second row stays where it was');
    assert.equal(row1.children[3].textContent, 'T3');
    assert.equal(row1.children[3], title1, 'its spans are kept and their text rewritten: no new element to paint');
    assert.equal(ul.children[2].children[3].textContent, 'T2', 'a row added below the others');
});

test('drawTicker rewrites the rows the server drew in place: their spans are kept, their text replaced', (t) => {
    const ul = new FakeElement('ul');
    const served = new FakeElement('li');  // as layouts/common.py live_ticker_rows draws it
    for (const [cls, text] of [['ticker-time', '00:00:00'], ['ticker-dom', 'Traffic'], ['ticker-place', 'Alpha'],
        ['ticker-title', 'old']]) {
        const span = served.appendChild(new FakeElement('span'));
        span.className = cls;
        span.textContent = text;
    }
    ul.appendChild(served);
    const spans = served.children.slice();
    const {R} = render(t, {'event-ticker': ul});
    R.drawTicker([ev('9', 1000)], CONFIG);
    assert.equal(ul.children[0], served);
    assert.deepEqual(served.children, spans, 'the same four spans');
    assert.deepEqual(spans.map((s) => s.textContent), ['00:00:01', 'Traffic', 'Alpha', 'T9']);
    assert.equal(served.className, 'ticker-item sev-2 dom-traffic');
    assert.equal(served.dataset.key, 'traffic:9');
});

test('rowParts: a district wall\'s row names the street (every row is its district\'s), else the district', (t) => {
    const {R} = render(t);
    const own = Object.assign({}, CONFIG, {page: 'wall', district: 'A', streets: {A: {'黄贝街道': 'Huangbei'}}});
    assert.deepEqual(R.rowParts(ev('1', 0, {street: '黄贝街道'}), own).map(([, text]) => text)[1], 'Huangbei');
    assert.deepEqual(R.rowParts(ev('2', 0), own).map(([, text]) => text)[1], 'Alpha');
    const city = Object.assign({}, CONFIG, {page: 'wall'});
    assert.deepEqual(R.rowParts(ev('3', 0, {street: '黄贝街道'}), city).map(([, text]) => text)[1], 'Alpha');
});

test('rowParts: a row of another shape (the wall has no domain badge) is rebuilt', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    R.drawTicker([ev('1', 100)], CONFIG);
    const row = ul.children[0];
    assert.equal(row.children.length, 4);
    R.fillRow(row, ev('1', 100), 'traffic:1', Object.assign({}, CONFIG, {page: 'wall'}));
    assert.deepEqual(row.children.map((s) => s.className), ['ticker-time', 'ticker-place', 'ticker-title']);
    assert.deepEqual(R.rowParts(ev('2', 0, {title: null}), CONFIG).map(([, text]) => text),
        ['00:00:00', 'Traffic', 'Alpha', 'Traffic jam']);
});

test('drawTicker rewrites only the rows whose event or content changed', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    R.drawTicker([ev('1', 100), ev('2', 50)], CONFIG);
    const kept = ul.children[0].children[3];
    R.drawTicker([ev('1', 100), ev('2', 50, {title: 'changed'})], CONFIG);
    assert.equal(ul.children[0].children[3], kept, 'the same event in the same row: untouched');
    assert.equal(ul.children[1].children[3].textContent, 'changed');
    R.drawTicker([ev('1', 100)], CONFIG);
    assert.equal(ul.children.length, 1, 'a row with nothing left to show goes');
});

test('drawTicker keeps at most TICKER_ROWS rows and removes what scrolled off', (t) => {
    const ul = new FakeElement('ul');
    ul.appendChild(new FakeElement('li'));  // anything else found in the list goes
    const {R} = render(t, {'event-ticker': ul});
    const many = Array.from({length: R.TICKER_ROWS + 10}, (_, i) => ev(String(i), 1000 - i));
    R.drawTicker(many, CONFIG);
    assert.equal(ul.children.length, R.TICKER_ROWS);
    assert.equal(ul.children[0].dataset.key, 'traffic:0');
    R.drawTicker(many.slice(5), CONFIG);
    assert.equal(ul.children.length, R.TICKER_ROWS);
    assert.equal(ul.children[0].dataset.key, 'traffic:5');
});

test('drawTicker: the wall shows no domain badge and no street; other pages show the street', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    const e = ev('1', 0, {street: 'Main St', title: null, district: 'Z'});
    R.drawTicker([e], CONFIG);
    assert.equal(ul.children[0].textContent, '00:00:00|Traffic|Z · Main St|Traffic jam');
    const wallTicker = new FakeElement('ul');
    globalThis.document.byId['event-ticker'] = wallTicker;
    R.drawTicker([e], Object.assign({}, CONFIG, {page: 'wall'}));
    assert.equal(wallTicker.children[0].textContent, '00:00:00|Z|Traffic jam');
});

test('feeds: drawn into the list at once, fresh and stale with age and rate, counted on by the page\'s timer', (t) => {
    const ul = new FakeElement('ul');
    const h = render(t, {'feed-status': ul});
    const timers = [];
    stub(t, 'setInterval', (fn, ms) => timers.push([fn, ms]) && timers.length);
    const now = Date.now();
    const store = {feeds_at: now, state: {feeds: {traffic: {last_event_age_s: 5, rate_per_min: 2.345},
        security: {last_event_age_s: 600}}}};
    h.R.takeFeeds(store, CONFIG);
    assert.deepEqual(ul.children.map((li) => li.className), ['feed fresh', 'feed stale']);
    assert.deepEqual(ul.children.map((li) => li.textContent), ['|Traffic|2.3/min|5s ago',
        '|Security|0/min|stale · 10m ago']);
    const rows = ul.children.slice();
    // the page's own timer, once however often the store is written, counts the ages on in the same rows
    h.R.takeFeeds(store, CONFIG);
    assert.deepEqual(timers.map(([, ms]) => ms), [1000]);
    h.R.drawFeeds(store, CONFIG, now + 60_000);
    assert.deepEqual(ul.children, rows, 'the rows are kept, their text rewritten');
    assert.deepEqual(ul.children.map((li) => li.textContent), ['|Traffic|2.3/min|stale · 1m ago',
        '|Security|0/min|stale · 11m ago']);
    assert.equal(ul.children[0].className, 'feed stale');
});

test('clockStart: the clock drawn now and by the page\'s timer, nothing through Dash', (t) => {
    const clock = new FakeElement('span');
    const h = render(t, {clock: clock});
    const timers = [];
    stub(t, 'setInterval', (fn, ms) => timers.push([fn, ms]) && timers.length);
    h.dc.panorama.clock = (_n, config) => 'now in ' + config.tz;  // live_conn.js's: the time (or the replayed one)
    assert.equal(h.R.clockStart(CONFIG), NO_UPDATE);
    assert.equal(clock.textContent, 'now in UTC');
    h.dc.panorama.clock = () => 'a second later';
    timers[0][0]();
    assert.equal(clock.textContent, 'a second later');
});

test('riskTop: by risk, then by events, drawn into the list; bars clamped; rows kept; nothing through Dash', (t) => {
    const ol = new FakeElement('ol');
    const h = render(t, {'risk-top': ol});
    const make = globalThis.document.createElement;
    globalThis.document.createElement = (tag) => Object.assign(make(tag), {style: {}});
    assert.equal(h.R.riskTop(null, {}, CONFIG), NO_UPDATE);
    assert.equal(ol.children.length, 0);
    assert.equal(h.R.riskTop(STORE, {}, CONFIG), NO_UPDATE);
    assert.deepEqual(ol.children.map((li) => li.dataset.code), ['B', 'C', 'A']);
    assert.equal(ol.children[0].textContent, '1|Beta||75.6|8 events');
    const fill = (i) => ol.children[i].children[2].firstElementChild.style.width;
    assert.equal(fill(0), '75.56%');
    const first = ol.children[0];
    const low = {state: {windows: {'1h': {districts: {A: {risk: 0.5}}}}}};
    h.R.riskTop(low, {}, CONFIG);
    assert.equal(ol.children[0], first, 'the row is kept, its text rewritten');
    assert.equal(ol.children[0].textContent, '1|Alpha||0.5|0 events');
    assert.equal(fill(0), '2%');
});

test('viewControls and cycle: the view follows the selectors; the spotlight moves round', (t) => {
    const {R} = render(t);
    assert.deepEqual(R.viewControls('24h', 'risk', {highlight: 'A', window: '1h'}),
        {highlight: 'A', window: '24h', measure: 'risk'});
    assert.equal(R.cycle(1, {highlight: 'A'}, CONFIG).highlight, 'B');
    assert.equal(R.cycle(1, {highlight: 'C'}, CONFIG).highlight, 'A');
    assert.equal(R.cycle(1, null, CONFIG).highlight, 'A');
});

test('cycle: a district centre\'s wall goes round its busiest streets, as its refresh last sent them', (t) => {
    const {R} = render(t);
    const own = Object.assign({}, CONFIG, {district: 'B', codes: ['B'], cycle: ['東门', '桂园']});
    assert.equal(R.cycle(1, {highlight: '東门'}, own, []).highlight, '桂园');  // as first drawn
    assert.equal(R.cycle(2, {highlight: '桂园'}, own, []).highlight, '東门');
    const sent = [{cycle: ['黄贝', '東门', '桂园']}];
    assert.equal(R.cycle(3, {highlight: '東门'}, own, sent).highlight, '桂园');
    assert.equal(R.cycle(4, {highlight: '桂园'}, own, sent).highlight, '黄贝');
    assert.equal(R.cycle(5, null, own, sent).highlight, '黄贝');
    assert.equal(R.cycle(6, {highlight: 'A'}, CONFIG, [null]).highlight, 'B', 'the city\'s wall: its districts');
});

test('spotlight: a district wall spotlights a street: its counts, rank and share of the district, its name in the page\'s language', (t) => {
    const h = render(t);
    const labels = Object.assign({}, CONFIG.labels, {street_rank: 'street {rank} of {n}',
        district_share: '{p}% of the district', street_open: '{n} open'});
    const wall = Object.assign({}, CONFIG, {page: 'wall', district: 'B', codes: ['B'], labels: labels,
        districts: {B: {name: 'Beta'}}, streets: {B: {'黄贝街道': 'Huangbei'}}});
    const sent = [{cycle: ['黄贝街道'], streets: [{name: '桂园街道', counts: {traffic: 3}, total: 3, open: 0},
        {name: '黄贝街道', counts: {traffic: 1, security: 1}, total: 2, open: 1}]}];
    const [head, meta, grid] = h.R.spotlight({highlight: '黄贝街道'}, STORE, sent, wall)[0];
    assert.equal(head.props.children[1].props.children, 'Huangbei');
    assert.equal(head.props.children[2].props.children, '1 open');
    assert.equal(meta.props.children, 'Beta · street 2 of 2 · 40% of the district');
    assert.deepEqual(grid.props.children.map((k) => k.props.children[1].props.children), ['1', '1']);
    h.fire('live-windows');
    assert.deepEqual(h.R.spotlight({highlight: '黄贝街道'}, STORE, sent, wall), [NO_UPDATE]);
});

test('spotlight: the wall only; rank, share and counts (the latest events are the ticker\'s)', (t) => {
    const h = render(t);
    const wall = Object.assign({}, CONFIG, {page: 'wall'});
    assert.deepEqual(h.R.spotlight({highlight: 'A'}, STORE, [], CONFIG), []);
    assert.deepEqual(h.R.spotlight({}, STORE, [], wall), []);
    const parts = h.R.spotlight({highlight: 'A'}, STORE, [], wall)[0];
    assert.equal(parts.filter(Boolean).length, 3, 'head, meta and the counts: no latest events');
    const [head, meta, grid] = parts;
    assert.equal(head.props.children[1].props.children, 'Alpha');
    assert.equal(head.props.children[2].props.children, 'Risk 20.0');
    // A: 2 of 15 events; B has more risk, C the same: rank 2 of 3
    assert.equal(meta.props.children, 'Population 1,250,000 · rank 2/3 · 13.3% of the city');
    assert.deepEqual(grid.props.children.map((k) => k.props.children[1].props.children), ['2', '0']);
    h.fire('live-windows');
    assert.deepEqual(h.R.spotlight({highlight: 'A'}, STORE, [], wall), [NO_UPDATE]);
    const zh = h.R.spotlight({highlight: 'B'}, STORE, [], Object.assign({}, wall, {lang: 'zh'}));
    assert.match(zh[0][1].props.children, /^Population 0\.0万/);
});

test('drillDown: a district click opens its page, except on the wall', (t) => {
    const {R} = render(t);
    const click = {points: [{location: 'A/1'}]};
    assert.equal(R.drillDown(click, CONFIG), '/district/A%2F1');
    assert.equal(R.drillDown(click, {page: 'wall'}), NO_UPDATE);
    assert.equal(R.drillDown({points: []}, CONFIG), NO_UPDATE);
    assert.equal(R.drillDown(null, CONFIG), NO_UPDATE);
});

test('drawTicker: in English a street is its pinyin name from the city pack, by name or code', (t) => {
    const ul = new FakeElement('ul');
    const {R} = render(t, {'event-ticker': ul});
    const config = Object.assign({}, CONFIG, {streets: {A: {'南头街道': 'Nantou', '南头': 'Nantou', nt: 'Nantou'}}});
    R.drawTicker([ev('1', 0, {street: '南头街道'}), ev('2', 0, {street: 'nt'}), ev('3', 0, {street: '未知路'}),
        ev('4', 0, {street: '南头街道', district: 'B'})], config);
    assert.deepEqual(ul.children.map((li) => li.children[2].textContent),
        ['Alpha · Nantou', 'Alpha · Nantou', 'Alpha · 未知路', 'Beta · 南头街道']);
    // a name the pack does not map, or a page without names, shows the street as it came; never a prototype key
    assert.equal(R.streetName({district: 'A', street: 'constructor'}, config), 'constructor');
    assert.equal(R.streetName({district: 'A', street: '南头'}, CONFIG), '南头');
    assert.equal(R.streetName({district: 'A', street: null}, config), '');
});

test('spotIncidents: the spotlit district\'s open incidents, titles as text, statuses translated', (t) => {
    const h = render(t);
    const config = Object.assign({}, CONFIG, {page: 'wall', labels: Object.assign({}, CONFIG.labels, {
        status_open: 'open', status_in_progress: 'in progress', sev_4: 'critical', sev_2: 'minor',
        no_open_incidents: 'No open incidents', incidents_rest: '{n} more open incidents'})});
    const data = {code: 'A', open: 3, incidents: [
        {id: 7, title: '<b>Gas</b> leak', kind: 'gas_leak', severity: 4, status: 'in_progress'},
        {id: 8, title: null, kind: 'fire', severity: 2, status: 'open'}]};
    const [rows] = h.R.spotIncidents([data], {highlight: 'A'}, config);
    assert.deepEqual(rows.map((li) => li.props.key), ['7', '8', 'more']);
    const cells = rows[0].props.children.map((c) => c.props.children);
    assert.deepEqual(cells, ['critical', '<b>Gas</b> leak', 'in progress']);  // a text child: never parsed
    assert.equal(rows[2].props.children, '1 more open incidents');
    assert.deepEqual(h.R.spotIncidents([data], {highlight: 'B'}, config), [[]]);  // not yet B's
    const [none] = h.R.spotIncidents([{code: 'A', open: 0, incidents: []}], {highlight: 'A'}, config);
    assert.equal(none[0].props.children, 'No open incidents');
});
