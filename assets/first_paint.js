/* The first paint: the page as the server drew it into the HTML (dashboard/web/first_paint.py), shown until
 * Dash has drawn the page itself, then removed. If the app never draws (a script failed), the drawing goes after
 * GIVE_UP_MS anyway: a screen must not go on showing a moment long past as if it were now. */
(function (root) {
    'use strict';
    const GIVE_UP_MS = 20000;

    /** Remove the drawing once the live page (#page) has content; true when there is no drawing left. */
    function settle(doc) {
        const drawing = doc.getElementById('first-paint');
        if (!drawing) {
            return true;
        }
        const page = doc.getElementById('page');
        if (page && page.childElementCount > 0) {
            drawing.remove();
            return true;
        }
        return false;
    }

    /** Watch `doc` until the live page has drawn itself (or GIVE_UP_MS passed), then remove the drawing. */
    function watch(doc, Observer, setTimer) {
        if (settle(doc)) {
            return null;
        }
        const observer = new Observer(function () {
            if (settle(doc)) {
                observer.disconnect();
            }
        });
        observer.observe(doc.body, {childList: true, subtree: true});
        setTimer(function () {
            observer.disconnect();
            const drawing = doc.getElementById('first-paint');
            if (drawing) {
                drawing.remove();
            }
        }, GIVE_UP_MS);
        return observer;
    }

    const api = {settle: settle, watch: watch, GIVE_UP_MS: GIVE_UP_MS};
    if (typeof module !== 'undefined' && module.exports) {
        module.exports = api;
    } else if (root.document) {
        watch(root.document, root.MutationObserver, root.setTimeout.bind(root));
    }
}(typeof window !== 'undefined' ? window : globalThis));
