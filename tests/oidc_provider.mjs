// The tests' OpenID Connect provider: the certified `oidc-provider` package (package.json), run with Node.
//
//   node tests/oidc_provider.mjs CONFIG.json
//
// CONFIG: {"issuer", "port", "jwks": {"keys": [private JWKs]}, "clients": [client metadata],
//          "accounts": {"<id>": {claims}}, "scopes": ["panorama", ...]}
// Its sign-in page takes an account id alone (the tests' people have no passwords) and grants what the client
// asked for; every claim an account has is released through the scope named in "scopes". PKCE is required of
// every client, so a relying party that does not send it is refused. Prints "ready <port>" once listening.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts;
const claimNames = [...new Set(Object.values(accounts).flatMap((claims) => Object.keys(claims)))];

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: ['panorama-tests-only'] },
  pkce: { required: () => true },
  scopes: ['openid', 'profile', ...config.scopes],
  claims: Object.fromEntries([['openid', ['sub']], ...config.scopes.map((scope) => [scope, claimNames])]),
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) { return undefined; }
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
  },
});
// Behind the tests' proxy, which forwards the issuer's host.
provider.proxy = true;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) { chunks.push(chunk); }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The sign-in page: one field, the account id; login and consent in one step.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<!doctype html><title>City identity</title><form method="post" action="/interaction/${details.uid}">
      <label for="login">Account</label><input id="login" name="login" autofocus>
      <button id="sign-in" type="submit">Sign in</button></form>`);
    return;
  }
  const accountId = (await body(req)).get('login') || '';
  if (!Object.hasOwn(accounts, accountId)) {
    res.statusCode = 400;
    res.end(`unknown account ${escapeHtml(accountId)}`);
    return;
  }
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false });
}

const handler = provider.callback();
const server = createServer((req, res) => {
  if (req.url === '/favicon.ico') {  // no icon, and no 404 in the browser's log
    res.statusCode = 204;
    res.end();
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(escapeHtml(err.message));
    });
    return;
  }
  handler(req, res);
});
server.listen(config.port, '127.0.0.1', () => { process.stdout.write(`ready ${server.address().port}\n`); });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
