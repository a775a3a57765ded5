/* The websocket gateway's frames, as the browser reads them. The one definition is dashboard/core/messages.py
 * (snapshot_frame, delta_frame, heartbeat_frame, status_frame, EventView, IncidentView, TaskView); the shapes
 * below document the same, and `readFrame` is where every page parses a frame (live_conn.js's socket; it hands
 * the parsed frame on to dispatch_live.js and mobile.js).
 *
 * Every frame carries `v` (messages.VERSION, 1) and `type`. A change to a shape that old pages would misread
 * bumps the version: a page drops (and logs once) a frame of another version instead of misreading it; a frame
 * without `v` is version 1 (what the gateway sent before the field existed). */

/**
 * An event as screens show it (messages.EventView / EVENT_FIELDS).
 * @typedef {Object} EventView
 * @property {string} id
 * @property {string} domain      one of config.domains
 * @property {string} kind
 * @property {string} district    district code
 * @property {?string} street
 * @property {number} severity    1..4
 * @property {?string} title
 * @property {number} ts          epoch ms
 * @property {?number} value
 * @property {?string} unit
 */

/**
 * An incident as the API shows it (messages.IncidentView).
 * @typedef {Object} IncidentView
 * @property {number} id
 * @property {string} kind
 * @property {string} district
 * @property {number} severity
 * @property {string} status
 * @property {number} reports
 * @property {string} opened_at   RFC 3339 with the city's offset
 * @property {string} title
 * @property {string} [domain]
 * @property {boolean} [escalated]
 * @property {?string} [centre]  the centre that runs it: null the city centre, else a district's code (lists, deltas)
 */

/**
 * An active major incident (messages.MajorView, SPEC section 10). Every client gets them; a snapshot's
 * `state.majors` and a delta's `majors` each hold the whole list (empty: peacetime), replacing the last one.
 * The command view redraws from the server when the list changes (live_major.js).
 * @typedef {Object} MajorView
 * @property {IncidentView} incident
 * @property {number} level        1 (I, the gravest) .. 4 (IV)
 * @property {string} declared_at  RFC 3339 with the city's offset
 * @property {string} declared_by
 */

/**
 * An alert as deltas carry it (messages.AlertView, SPEC section 9): `title` in Chinese and `title_en` beside it.
 * Every client gets them (alerts are every viewer's); a snapshot's `state.alerts` holds the firing and
 * acknowledged ones; a delta's `alerts` the ones that changed (status `resolved`: gone from the screens).
 * The alert-list redraws from the server when they come (live_alerts.js).
 * @typedef {Object} AlertView
 * @property {number} id
 * @property {string} rule
 * @property {string} level        blue | yellow | orange | red
 * @property {string} status       pending | firing | acknowledged | resolved
 * @property {?string} district
 * @property {?string} zone
 * @property {string} started_at   RFC 3339 with the city's offset
 * @property {?string} resolved_at
 * @property {string} title
 * @property {string} title_en
 * @property {number} version
 */

/**
 * A response unit as the API shows it (messages.UnitView, SPEC section 11). Snapshots carry every unit the socket's
 * holder may read in `state.units` (a liaison: their department's; a wall: without `task_id`), deltas the units that
 * changed in `units`, one per unit (the latest report). Drawn over the maps by live_units.js.
 * @typedef {Object} UnitView
 * @property {string} unit
 * @property {string} department
 * @property {string} kind
 * @property {('available'|'en_route'|'on_scene'|'off_duty')} status
 * @property {?number} lat
 * @property {?number} lon
 * @property {?string} updated_at   RFC 3339 with the city's offset
 * @property {?number} task_id
 */

/**
 * A dispatch task as the API shows it (messages.TaskView).
 * @typedef {Object} TaskView
 * @property {number} id
 * @property {number} incident_id
 * @property {string} department
 * @property {string} state
 * @property {number} version
 * @property {string} ack_due      RFC 3339
 * @property {string} resolve_due  RFC 3339
 * @property {boolean} escalated
 * @property {('acknowledge'|'resolve')} [overdue]  in `escalations` only
 */

/**
 * The live state a screen shows (dashboard/panorama/state.py build_state); a delta's `state` carries only the
 * parts that changed.
 * @typedef {Object} LiveState
 * @property {number} generated_at   epoch ms
 * @property {Object<string, {start: number, end: number, minutes: number, totals: Object<string, number>,
 *     previous: Object<string, number>, risk_basis: ('baseline'|'population'),
 *     districts: Object<string, {counts: Object<string, number>, risk: number}>}>} windows
 *     by window name ('1h', ...)
 * @property {{start: number, step_ms: number, series: Object<string, number[]>}} trend
 * @property {Object<string, {last_event_age_s: ?number, rate_per_min: number, stale: boolean}>} feeds  by domain
 * @property {EventView[]} events    newest first, at most messages.TICKER_EVENTS
 * @property {UnitView[]} [units]    snapshots only: every unit its holder may read
 */

/**
 * The first frame after every (re)connect: the whole live state as of `seq` (messages.snapshot_frame).
 * @typedef {Object} SnapshotFrame
 * @property {number} v           1
 * @property {'snapshot'} type
 * @property {number} seq
 * @property {LiveState} state
 */

/**
 * What changed since the previous frame; only the parts that changed are present (messages.delta_frame).
 * A wall (kiosk token) is never sent incidents, tasks or escalations.
 * @typedef {Object} DeltaFrame
 * @property {number} v           1
 * @property {'delta'} type
 * @property {number} seq         increasing; a page ignores a delta whose seq it has applied
 * @property {Partial<LiveState>} [state]  the parts of the live state that changed
 * @property {EventView[]} [events]          newest first
 * @property {IncidentView[]} [incidents]
 * @property {TaskView[]} [tasks]
 * @property {TaskView[]} [escalations]
 * @property {UnitView[]} [units]            one per unit, its latest
 */

/**
 * Sent every 5 s: lets a page tell a silently dead connection (messages.heartbeat_frame).
 * @typedef {Object} HeartbeatFrame
 * @property {number} v           1
 * @property {'heartbeat'} type
 * @property {number} at          epoch ms
 */

/**
 * Whether live updates flow: the gateway's link to the bus (messages.status_frame).
 * @typedef {Object} StatusFrame
 * @property {number} v           1
 * @property {'status'} type
 * @property {('up'|'down')} bus
 */

/** @typedef {SnapshotFrame|DeltaFrame|HeartbeatFrame|StatusFrame} Frame */

(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const VERSION = 1;  // messages.VERSION
    const EVENT_FIELDS = ['id', 'domain', 'kind', 'district', 'street', 'severity', 'title', 'ts', 'value', 'unit'];
    let warned = false;  // a page can get ten frames a second: one warning tells enough

    function drop(why) {
        if (!warned) {
            warned = true;
            console.warn('panorama: dropped a gateway frame (' + why + '); further drops are not logged');
        }
        return null;
    }

    /**
     * One websocket message's text -> the frame, or null for a frame this page does not read: not JSON, not an
     * object, or of another version than VERSION (a frame without `v` is version 1).
     * @param {string} text
     * @returns {?Frame}
     */
    function readFrame(text) {
        let msg;
        try {
            msg = JSON.parse(text);
        } catch {
            return drop('not JSON');
        }
        if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
            return drop('not an object');
        }
        const v = msg.v === undefined ? 1 : msg.v;
        if (v !== VERSION) {
            return drop('version ' + JSON.stringify(v) + '; this page reads ' + VERSION);
        }
        return msg;
    }

    const api = {VERSION: VERSION, EVENT_FIELDS: EVENT_FIELDS, readFrame: readFrame};
    dc.panoramaFrames = api;
    if (typeof module !== 'undefined' && module.exports) {
        module.exports = api;
    }
})(typeof window !== 'undefined' ? window : globalThis);
