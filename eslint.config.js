// Lint of the browser JavaScript (assets/, plain scripts loaded by Dash) and of its Node tests (tests/js).
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
    // the partial Plotly bundle: built by tools/plotly/build.js from plotly.js, not written here
    {ignores: ['assets/vendor/**']},
    js.configs.recommended,
    {
        files: ['assets/**/*.js'],
        languageOptions: {
            ecmaVersion: 2022,
            sourceType: 'script',
            // `module` only for the guarded `module.exports` that lets Node's tests load the files
            globals: {...globals.browser, module: 'readonly'},
        },
    },
    {
        files: ['tests/js/**/*.js', 'tools/plotly/**/*.js', 'eslint.config.js'],
        languageOptions: {
            ecmaVersion: 2022,
            sourceType: 'commonjs',
            globals: {...globals.node},
        },
    },
    {
        // the tests' OpenID Connect provider (tests/test_sso.py), an ES module run by Node
        files: ['tests/*.mjs'],
        languageOptions: {ecmaVersion: 2024, sourceType: 'module', globals: {...globals.node}},
    },
    {
        rules: {
            'no-unused-vars': ['error', {args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none'}],
            eqeqeq: ['error', 'always'],
            'no-var': 'error',
            'prefer-const': 'error',
        },
    },
];
