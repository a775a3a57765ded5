'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {ROOT, load} = require('./helpers');

const MESSAGES = fs.readFileSync(path.join(ROOT, 'dashboard', 'core', 'messages.py'), 'utf8');
const SOURCE = fs.readFileSync(path.join(ROOT, 'assets', 'live_frames.js'), 'utf8');

function frames(t) {
    const warn = t.mock.method(console, 'warn', () => {});
    return {F: load('live_frames').mods.live_frames, warn};
}

/** The @property names of one @typedef in live_frames.js. */
function documented(name) {
    const block = SOURCE.split('/**').find((b) => new RegExp('@typedef \\{[^}]*\\} ' + name + '\\b').test(b));
    assert.ok(block, 'no typedef ' + name);
    return [...block.matchAll(/@property \{[^}]*\}\s+\[?(\w+)/g)].map((m) => m[1]);
}

test('a version 1 frame is read as sent', (t) => {
    const {F, warn} = frames(t);
    const msg = F.readFrame('{"v":1,"type":"delta","seq":7,"events":[{"id":"a"}]}');
    assert.deepEqual(msg, {v: 1, type: 'delta', seq: 7, events: [{id: 'a'}]});
    assert.equal(warn.mock.callCount(), 0);
});

test('a frame without v is version 1', (t) => {
    const {F} = frames(t);
    assert.deepEqual(F.readFrame('{"type":"heartbeat","at":5}'), {type: 'heartbeat', at: 5});
});

test('a frame of another version is dropped with a warning', (t) => {
    const {F, warn} = frames(t);
    assert.equal(F.readFrame('{"v":2,"type":"snapshot","seq":1,"state":{}}'), null);
    assert.equal(warn.mock.callCount(), 1);
    assert.match(String(warn.mock.calls[0].arguments[0]), /version 2/);
});

test('the version is compared strictly: "1" and null are not 1', (t) => {
    const {F} = frames(t);
    assert.equal(F.readFrame('{"v":"1","type":"heartbeat"}'), null);
    assert.equal(F.readFrame('{"v":null,"type":"heartbeat"}'), null);
});

test('what is not an object is no frame', (t) => {
    const {F} = frames(t);
    for (const text of ['null', '[]', '[{"type":"delta"}]', '42', '"delta"', 'true']) {
        assert.equal(F.readFrame(text), null, text);
    }
});

test('text that is not JSON is no frame', (t) => {
    const {F} = frames(t);
    assert.equal(F.readFrame('{"type":'), null);
    assert.equal(F.readFrame(''), null);
});

test('dropped frames warn once, not once per frame', (t) => {
    const {F, warn} = frames(t);
    F.readFrame('{"v":3}');
    F.readFrame('[]');
    F.readFrame('{"v":4}');
    assert.equal(warn.mock.callCount(), 1);
    assert.deepEqual(F.readFrame('{"v":1,"type":"status","bus":"down"}'), {v: 1, type: 'status', bus: 'down'});
});

test('readFrame is registered on the page for live_conn.js', () => {
    const {dc, mods} = load('live_frames');
    assert.equal(dc.panoramaFrames.readFrame, mods.live_frames.readFrame);
    assert.equal(dc.panoramaFrames.VERSION, 1);
});

test('VERSION is messages.VERSION', () => {
    const {mods} = load('live_frames');
    assert.equal(mods.live_frames.VERSION, Number(MESSAGES.match(/^VERSION = (\d+)$/m)[1]));
});

test('the event fields are messages.EventView\'s, in order, and documented', () => {
    const {mods} = load('live_frames');
    const body = MESSAGES.split('class EventView(TypedDict):')[1].split('\nclass ')[0];
    const fields = [...body.matchAll(/^ {4}(\w+): /gm)].map((m) => m[1]);
    assert.ok(fields.length >= 10, fields);
    assert.deepEqual(mods.live_frames.EVENT_FIELDS, fields);
    assert.deepEqual(documented('EventView'), fields);
});

test('every frame the gateway encodes is documented with its fields', () => {
    const encoders = {snapshot: 'SnapshotFrame', delta: 'DeltaFrame', heartbeat: 'HeartbeatFrame', status: 'StatusFrame'};
    for (const [type, typedef] of Object.entries(encoders)) {
        const def = MESSAGES.split('def ' + type + '_frame(')[1];
        assert.ok(def, 'messages.py has no ' + type + '_frame');
        const dumped = def.match(/orjson\.dumps\(\{(.*)\}\)/)[1];
        const keys = [...dumped.matchAll(/"(\w+)":/g)].map((m) => m[1]);
        assert.ok(keys.includes('v') && keys.includes('type'), type + ': ' + keys);
        const props = documented(typedef);
        for (const key of keys) {
            assert.ok(props.includes(key), typedef + ' does not document ' + key);
        }
    }
    assert.deepEqual(documented('DeltaFrame'), ['v', 'type', 'seq', 'state', 'events', 'incidents', 'tasks', 'escalations',
        'units']);
});
