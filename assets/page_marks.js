/* The page's marks on <html> (is-wall, is-mobile, in-replay, has-major, shell-empty), which the stylesheets read
 * instead of :has(). A rule anchored by :has() on html, body or the page (html:has(.page-wall)) made Blink match
 * it again over the whole page at every node inserted anywhere: on the wall, a restyle of all ~1,250 elements
 * for each of Dash's loading divs and each text node a panel wrote (issue 17's trace: 1,373 "affected by :has()"
 * restyles of BODY and HTML in 8 s). The server sets the marks in the HTML from the page it draws first
 * (dashboard/web/page_marks.py, the same rules); this keeps them as the live page changes, and writes the
 * class only when a mark changes. */
(function (root) {
    'use strict';
    // mark -> the class whose presence anywhere in the document sets it (dashboard/web/page_marks.py: MARKS)
    const MARKS = [
        ['is-wall', 'page-wall'],
        ['is-mobile', 'page-mobile'],
        ['in-replay', 'replay-banner'],
        ['has-major', 'major-view'],
    ];
    const SHELL_EMPTY = 'shell-empty';  // the shell's top bar holds neither navigation nor user: nobody signed in

    /** The marks `doc` calls for, in MARKS' order, then shell-empty. */
    function marksOf(doc) {
        const out = MARKS.filter(function (m) { return doc.getElementsByClassName(m[1]).length > 0; })
            .map(function (m) { return m[0]; });
        const tops = doc.getElementsByClassName('shell-top');
        for (let i = 0; i < tops.length; i += 1) {
            if (tops[i].getElementsByClassName('user-bar').length === 0
                    && tops[i].getElementsByClassName('shell-nav').length === 0) {
                out.push(SHELL_EMPTY);
                break;
            }
        }
        return out;
    }

    /** Put `doc`'s marks on its <html>, touching only those that changed (a class write restyles the page). */
    function apply(doc) {
        const want = marksOf(doc);
        const classes = doc.documentElement.classList;
        const all = MARKS.map(function (m) { return m[0]; }).concat([SHELL_EMPTY]);
        for (const mark of all) {
            const on = want.indexOf(mark) >= 0;
            if (classes.contains(mark) !== on) {
                classes.toggle(mark, on);
            }
        }
        return want;
    }

    /** Keep `doc`'s marks current as nodes come and go (one check per batch of mutations). */
    function watch(doc, Observer) {
        apply(doc);
        const observer = new Observer(function () { apply(doc); });
        observer.observe(doc.body, {childList: true, subtree: true});
        return observer;
    }

    const api = {MARKS: MARKS, SHELL_EMPTY: SHELL_EMPTY, marksOf: marksOf, apply: apply, watch: watch};
    if (typeof module !== 'undefined' && module.exports) {
        module.exports = api;
    } else if (root.document) {
        watch(root.document, root.MutationObserver);
    }
}(typeof window !== 'undefined' ? window : globalThis));
