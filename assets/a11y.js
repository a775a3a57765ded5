/* Repair the ARIA of Dash 4's own components, which take no aria-* props, so every page reads right in a screen
 * reader (and passes axe-core, the engine of Lighthouse's accessibility audits; tests/test_accessibility.py).
 *
 * - dcc.RadioItems renders a role=listbox of <label role=option aria-selected> each wrapping a real radio input:
 *   an option may not hold an interactive element, and the listbox has no name. The native radios already say
 *   all of it, so the list becomes a role=radiogroup named by the element with id "<list id>-label" (the
 *   layouts put a visible label there), and the labels lose their role and aria-selected.
 * - dcc.Dropdown keeps a focus target hidden from assistive technology (aria-hidden) yet reachable by Tab.
 * - dash_table's page buttons (first, previous, next, last) are icons with no name: named in the page's language.
 *
 * React sets aria-selected again when the choice changes, and pages are drawn anew on every route, so a
 * MutationObserver repairs what appears or changes; each repair is idempotent, so its own writes settle. */
(function (root) {
    'use strict';
    const dc = (root.dash_clientside = root.dash_clientside || {});
    const LISTS = '.dash-radioitems';
    const FOCUS_TARGETS = '.dash-dropdown-focus-target[aria-hidden="true"]';
    const PAGE_BUTTONS = '.previous-next-container button';
    const PAGE_NAMES = {
        'first-page': ['第一页', 'First page'], 'previous-page': ['上一页', 'Previous page'],
        'next-page': ['下一页', 'Next page'], 'last-page': ['最后一页', 'Last page'],
    };

    const A = {
        /** Make one RadioItems list a named radiogroup of plain labels; return whether anything changed. */
        repairOptionsList(list, doc) {
            let changed = false;
            const set = (el, name, value) => {
                if (el.getAttribute(name) !== value) {
                    el.setAttribute(name, value);
                    changed = true;
                }
            };
            const drop = (el, name) => {
                if (el.hasAttribute(name)) {
                    el.removeAttribute(name);
                    changed = true;
                }
            };
            set(list, 'role', 'radiogroup');
            if (list.id && doc.getElementById(list.id + '-label')) {
                set(list, 'aria-labelledby', list.id + '-label');
            }
            for (const label of list.querySelectorAll('[role="option"], [aria-selected]')) {
                drop(label, 'role');
                drop(label, 'aria-selected');
            }
            return changed;
        },
        /** Take a focus target hidden from assistive technology out of the Tab order. */
        repairFocusTarget(el) {
            if (el.getAttribute('tabindex') === '-1') {
                return false;
            }
            el.setAttribute('tabindex', '-1');
            return true;
        },
        /** Name an icon-only page button of a table in ``lang`` (the html element's); return whether it changed. */
        namePageButton(button, lang) {
            const kind = Object.keys(PAGE_NAMES).find((k) => (button.className || '').split(' ').includes(k));
            const name = kind ? PAGE_NAMES[kind][lang === 'en' ? 1 : 0] : null;
            if (!name || button.getAttribute('aria-label') === name) {
                return false;
            }
            button.setAttribute('aria-label', name);
            return true;
        },
        /** Repair everything under ``doc``; return how many elements changed. */
        repair(doc) {
            let n = 0;
            for (const list of doc.querySelectorAll(LISTS)) {
                n += A.repairOptionsList(list, doc) ? 1 : 0;
            }
            for (const el of doc.querySelectorAll(FOCUS_TARGETS)) {
                n += A.repairFocusTarget(el) ? 1 : 0;
            }
            const lang = doc.documentElement && doc.documentElement.getAttribute
                ? doc.documentElement.getAttribute('lang') : null;
            for (const el of doc.querySelectorAll(PAGE_BUTTONS)) {
                n += A.namePageButton(el, lang) ? 1 : 0;
            }
            return n;
        },
        /** Repair now and whenever the page's DOM changes; return the observer. */
        watch(doc, Observer) {
            A.repair(doc);
            const observer = new Observer(() => A.repair(doc));
            observer.observe(doc.documentElement || doc, {subtree: true, childList: true, attributes: true,
                attributeFilter: ['role', 'aria-selected', 'tabindex', 'aria-hidden', 'aria-label', 'lang']});
            return observer;
        },
    };
    dc.panoramaA11y = A;

    if (typeof module !== 'undefined' && module.exports) {  // Node's tests (tests/js)
        module.exports = A;
    } else if (root.document && root.MutationObserver) {
        A.watch(root.document, root.MutationObserver);
    }
})(typeof window !== 'undefined' ? window : globalThis);
