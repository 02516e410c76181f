// A real OpenID Connect provider (panva's oidc-provider) for the test suite, on loopback only.
//
// node provider.mjs CONFIG_JSON
//
// CONFIG_JSON (written by tests/accounts/oidc_provider.py) names the client and where the test accounts
// are kept: {"client_id", "client_secret", "redirect_uris": [...], "accounts_file"}. The accounts file is
// read again on every look-up, so a test changes a person's claims between two sign-ins by rewriting it:
// {"<login>": {"password": "...", "amr": ["pwd"], "claims": {"email": ..., "team": ..., "role": ...}}}.
//
// The server listens on 127.0.0.1 on a port the system picks and prints one line, `listening <port>`;
// the issuer is http://127.0.0.1:<port>. Sign-in and consent are plain HTML forms (below), so a test
// drives them with any HTTP client or a browser.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function accounts() {
  return JSON.parse(readFileSync(config.accounts_file, 'utf8'));
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>${escapeHtml(title)}</title></head><body>`
    + `<h1>${escapeHtml(title)}</h1>${body}</body></html>`);
}

function loginForm(uid, error = '') {
  return `${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}`
    + `<form id="login" method="post" action="/interaction/${uid}/login">`
    + '<input name="login" autocomplete="username"> <input name="password" type="password">'
    + ' <button type="submit">Sign in</button></form>';
}

function consentForm(uid, scopes) {
  return `<p>The application asks for: <span id="scopes">${escapeHtml(scopes)}</span></p>`
    + `<form id="consent" method="post" action="/interaction/${uid}/confirm">`
    + '<button type="submit">Allow</button></form>';
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: ['openid', 'email', 'profile', 'martech'],
    claims: {
      acr: null,
      auth_time: null,
      iss: null,
      sid: null,
      // amr (how the person signed in: "pwd", "mfa"...) in every ID token, as most providers send it
      openid: ['sub', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      martech: ['team', 'role'],
    },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accounts()[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, preferred_username: sub, ...accounts()[sub]?.claims };
        },
      };
    },
  });

  const handleOidc = provider.callback();

  server.on('request', async (req, res) => {
    const match = /^\/interaction\/([\w-]+)(\/login|\/confirm)?$/.exec(req.url.split('?')[0]);
    if (!match) {
      handleOidc(req, res);
      return;
    }
    try {
      const [, uid, action] = match;
      const details = await provider.interactionDetails(req, res);
      const { prompt, params, session } = details;
      if (!action && req.method === 'GET') {
        if (prompt.name === 'login') page(res, 200, 'Sign in', loginForm(uid));
        else page(res, 200, 'Allow access', consentForm(uid, params.scope));
        return;
      }
      if (action === '/login' && req.method === 'POST') {
        const form = await formBody(req);
        const account = accounts()[form.get('login')];
        if (!account || account.password !== form.get('password')) {
          page(res, 401, 'Sign in', loginForm(uid, 'Wrong login or password.'));
          return;
        }
        await provider.interactionFinished(req, res, {
          login: { accountId: form.get('login'), amr: account.amr || ['pwd'] },
        }, { mergeWithLastSubmission: false });
        return;
      }
      if (action === '/confirm' && req.method === 'POST') {
        const grant = details.grantId
          ? await provider.Grant.find(details.grantId)
          : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
        if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
        if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      page(res, 405, 'Not allowed', '');
    } catch (err) {
      page(res, 400, 'Interaction failed', `<p id="error">${escapeHtml(err.message)}</p>`);
    }
  });

  process.stdout.write(`listening ${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
