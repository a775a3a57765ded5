// Load the browser scripts of assets/ into Node, as Dash loads them into a page: each registers on
// globalThis.dash_clientside (fresh for every load()) and exports the same functions to `require`.
'use strict';
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const NO_UPDATE = Object.freeze({description: 'dash no_update (fake)'});

/** dash_clientside.Patch: records its assignments. */
class FakePatch {
    constructor() {
        this.ops = [];
    }

    assign(location, value) {
        this.ops.push([location, value]);
    }

    build() {
        return {patch: true, ops: this.ops};
    }
}

/** The value a built patch assigns at `location` (undefined when it assigns none). */
function patched(built, ...location) {
    const key = JSON.stringify(location);
    const op = built.ops.find(([loc]) => JSON.stringify(loc) === key);
    return op ? op[1] : undefined;
}

/** Load (afresh: no state kept from an earlier load) the named assets, in the order given. */
function load(...names) {
    const calls = [];
    const dc = {
        no_update: NO_UPDATE,
        Patch: FakePatch,
        callback_context: {triggered: []},
        set_props: (id, props) => calls.push([id, props]),
    };
    globalThis.dash_clientside = dc;
    const mods = {};
    for (const name of names) {
        const file = path.join(ROOT, 'assets', name + '.js');
        delete require.cache[require.resolve(file)];
        mods[name] = require(file);
    }
    return {
        dc, calls, mods,
        /** Make the running callback's triggered inputs these component ids ([]: the initial call). */
        fire(...ids) {
            dc.callback_context = {triggered: ids.map((id) => ({prop_id: id + '.data'}))};
        },
    };
}

/** A small DOM element: enough for the ticker (live_render.js) and the page checks. */
class FakeElement {
    constructor(tag) {
        this.tagName = tag.toUpperCase();
        this.children = [];
        this.parentNode = null;
        this.dataset = {};
        this.className = '';
        this._text = '';
        this.clientWidth = 0;
        this.clientHeight = 0;
        this.attributes = {};
    }

    getAttribute(name) {
        return Object.prototype.hasOwnProperty.call(this.attributes, name) ? this.attributes[name] : null;
    }

    setAttribute(name, value) {
        this.attributes[name] = String(value);
    }

    removeAttribute(name) {
        delete this.attributes[name];
    }

    get textContent() {
        return this.children.length ? this.children.map((c) => c.textContent).join('|') : this._text;
    }

    set textContent(text) {
        this.children = [];
        this._text = String(text);
    }

    get firstElementChild() {
        return this.children[0] || null;
    }

    get nextElementSibling() {
        if (!this.parentNode) {
            return null;
        }
        const sibs = this.parentNode.children;
        return sibs[sibs.indexOf(this) + 1] || null;
    }

    appendChild(child) {
        return this.insertBefore(child, null);
    }

    insertBefore(child, ref) {
        if (child.parentNode) {
            child.remove();
        }
        const at = ref === null ? this.children.length : this.children.indexOf(ref);
        if (at < 0) {
            throw new Error('insertBefore: the reference is not a child');
        }
        this.children.splice(at, 0, child);
        child.parentNode = this;
        return child;
    }

    remove() {
        if (this.parentNode) {
            const sibs = this.parentNode.children;
            sibs.splice(sibs.indexOf(this), 1);
            this.parentNode = null;
        }
    }
}

/** A document with the given elements (id -> FakeElement) and query results (selector -> list). */
function fakeDocument(byId = {}, queries = {}) {
    return {
        byId,
        createElement: (tag) => new FakeElement(tag),
        getElementById: (id) => byId[id] || null,
        querySelectorAll: (selector) => queries[selector] || [],
    };
}

/** Set globalThis[name] for the test, restored after it. */
function stub(t, name, value) {
    const had = Object.prototype.hasOwnProperty.call(globalThis, name);
    const before = globalThis[name];
    globalThis[name] = value;
    t.after(() => {
        if (had) {
            globalThis[name] = before;
        } else {
            delete globalThis[name];
        }
    });
}

module.exports = {ROOT, NO_UPDATE, FakePatch, FakeElement, fakeDocument, patched, load, stub};
