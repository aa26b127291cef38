// Cloisonné's embedded OpenID Connect provider for `make up` and the tests.
//
// panva's oidc-provider (pinned to 8.x: the 9.x line targets Node 22, this machine has Node 20)
// with a login form, automatic consent for the hub's own client, and everything it must keep
// across restarts in files under its data folder:
//
//   <data>/accounts.json  {"users": {name: {password_hash: "scrypt$salt$digest", groups, email}}}
//                          re-read at every login, so a change of membership applies at once
//   <data>/clients.json   [{client_id, client_secret, redirect_uris, auto_consent}]
//   <data>/jwks.json      signing keys (RSA, generated on first start)
//   <data>/cookie-keys.json
//   <data>/store/*.json   sessions, grants, codes and tokens (one file per model)
//
// Usage: node provider.mjs --data DIR --port PORT --module .node/node_modules/oidc-provider
// It writes "listening <issuer>" on stdout once it accepts connections.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const scrypt = promisify(crypto.scrypt);

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) {
    if (fallback === undefined) throw new Error(`missing --${name}`);
    return fallback;
  }
  return process.argv[i + 1];
}

const DATA = path.resolve(arg('data'));
const PORT = Number(arg('port'));
const HOST = arg('host', '127.0.0.1');
const ISSUER = arg('issuer', `http://${HOST}:${PORT}`);
const STORE = path.join(DATA, 'store');
// The package lives under the repository's .node/ (like configurable-http-proxy), not next to
// this file, so it is imported by path.
const MODULE = path.resolve(arg('module'));
const { default: Provider } = await import(pathToFileURL(path.join(MODULE, 'lib', 'index.js')).href);
fs.mkdirSync(STORE, { recursive: true, mode: 0o700 });

function readJSON(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT' && fallback !== undefined) return fallback;
    throw err;
  }
}

function writeJSON(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

// Keys are made once and kept: tokens and sessions stay valid across restarts.
function persistent(file, make) {
  const full = path.join(DATA, file);
  if (!fs.existsSync(full)) writeJSON(full, make());
  return readJSON(full);
}

const jwks = persistent('jwks.json', () => {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: crypto.randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' }] };
});
const cookieKeys = persistent('cookie-keys.json', () => [crypto.randomBytes(32).toString('hex')]);
const clients = readJSON(path.join(DATA, 'clients.json'));

function accounts() {
  return readJSON(path.join(DATA, 'accounts.json')).users || {};
}

// scrypt hashes in the same format as Python's hashlib.scrypt(n=2**14, r=8, p=1, dklen=64).
async function checkPassword(password, stored) {
  const parts = String(stored || '').split('$');
  if (parts.length !== 3 || parts[0] !== 'scrypt') return false;
  const salt = Buffer.from(parts[1], 'base64');
  const expected = Buffer.from(parts[2], 'base64');
  const got = await scrypt(password, salt, expected.length, { N: 2 ** 14, r: 8, p: 1 });
  return got.length === expected.length && crypto.timingSafeEqual(got, expected);
}

// TOTP (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits), the second factor of accounts that have a
// `totp_secret` (base32). One step either side is accepted for clock drift; a code is accepted
// once per account (no replay within its window).
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of String(text).toUpperCase().replace(/=+$/, '')) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error('invalid base32 secret');
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

function totpAt(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(code).padStart(6, '0');
}

const usedCodes = new Map(); // account -> last accepted step
function checkTotp(name, secret, code) {
  const now = Math.floor(Date.now() / 30000);
  for (const step of [now - 1, now, now + 1]) {
    const expected = totpAt(secret, step);
    if (String(code).length === 6 && crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(String(code)))) {
      if ((usedCodes.get(name) ?? -Infinity) >= step) return false;
      usedCodes.set(name, step);
      return true;
    }
  }
  return false;
}

// A small file-backed adapter: one JSON file per model, rewritten on change. Enough for a
// single-machine site (a few hundred users); production sites use their own provider.
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest']);
const tables = new Map();

class FileAdapter {
  constructor(model) {
    this.model = model;
    this.file = path.join(STORE, `${model}.json`);
    if (!tables.has(model)) tables.set(model, readJSON(this.file, {}));
  }

  get table() {
    return tables.get(this.model);
  }

  save() {
    const now = Date.now() / 1000;
    for (const [id, entry] of Object.entries(this.table)) {
      if (entry.expiresAt && entry.expiresAt < now) delete this.table[id];
    }
    writeJSON(this.file, this.table);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? Date.now() / 1000 + expiresIn : undefined;
    this.table[id] = { payload, expiresAt };
    this.save();
  }

  async find(id) {
    const entry = this.table[id];
    if (!entry || (entry.expiresAt && entry.expiresAt < Date.now() / 1000)) return undefined;
    return entry.payload;
  }

  async findByUid(uid) {
    const hit = Object.values(this.table).find((e) => e.payload.uid === uid);
    return hit && this.find(hit.payload.jti);
  }

  async findByUserCode(userCode) {
    const hit = Object.values(this.table).find((e) => e.payload.userCode === userCode);
    return hit && this.find(hit.payload.jti);
  }

  async consume(id) {
    if (this.table[id]) {
      this.table[id].payload.consumed = Math.floor(Date.now() / 1000);
      this.save();
    }
  }

  async destroy(id) {
    delete this.table[id];
    this.save();
  }

  async revokeByGrantId(grantId) {
    for (const model of GRANTABLE) {
      const adapter = new FileAdapter(model);
      for (const [id, entry] of Object.entries(adapter.table)) {
        if (entry.payload.grantId === grantId) delete adapter.table[id];
      }
      adapter.save();
    }
  }
}

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// Every page is self-contained: the library's defaults load web fonts from a third party,
// which a health-data site's sign-in must not do.
function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font-family:sans-serif;max-width:22em;margin:4em auto}label,input,button{display:block;width:100%;margin:.4em 0}
.error{color:#a00}</style></head><body>${body}</body></html>`;
}

const provider = new Provider(ISSUER, {
  adapter: FileAdapter,
  clients: clients.map(({ auto_consent: _auto, ...client }) => client),
  jwks,
  cookies: { keys: cookieKeys },
  pkce: { methods: ['S256'], required: () => true },
  scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
  // `acr` and `amr` of each login go into the ID token (what a hub's MFA gate checks)
  acrValues: ['urn:cloisonne:acr:pwd', 'urn:cloisonne:acr:mfa'],
  claims: {
    // the login's assurance and methods in every ID token (the hub's MFA gate reads them)
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['name', 'preferred_username', 'training_expires'],
    email: ['email'],
    groups: ['groups'],
  },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `<h1>Sign out of Cloisonné?</h1>${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<h1>You are signed out.</h1>');
      },
    },
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Sign-in error', `<h1>Sign-in error</h1><p class="error">${escape(out.error)}: ${
      escape(out.error_description || '')}</p><p>Start again from the hub.</p>`);
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { Session: 8 * 3600, Interaction: 600, Grant: 14 * 24 * 3600 },
  async findAccount(ctx, sub) {
    const user = accounts()[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          preferred_username: sub,
          name: user.name || sub,
          email: user.email || `${sub}@example.org`,
          groups: user.groups || [],
          ...(user.training_expires ? { training_expires: user.training_expires } : {}),
        };
      },
    };
  },
});
provider.proxy = false;

function otpPage(uid, error) {
  return page('Second factor', `<h1>Cloisonné sign-in</h1>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/otp">
<label for="code">Code from your authenticator app</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required autofocus>
<button type="submit">Verify</button></form>`);
}

const passwordOk = new Map(); // interaction uid -> account whose password was right

function loginPage(uid, error) {
  return page('Sign in', `<h1>Cloisonné sign-in</h1>
${error ? `<p class="error" role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="username">Username</label><input id="username" name="username" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 10000) throw new Error('form too large');
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function send(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    // no form-action: Chromium applies it to the redirects after the POST, which end at the
    // hub's (registered, checked) redirect URI on another origin
  });
  res.end(html);
}

async function autoConsent(details) {
  const { prompt, params, session, grantId } = details;
  const client = clients.find((c) => c.client_id === params.client_id);
  if (!client || !client.auto_consent) return undefined;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return { consent: { grantId: await grant.save() } };
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (details.prompt.name === 'login') {
    if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid));
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const name = String(form.username || '').trim().toLowerCase();
      const user = accounts()[name];
      const ok = user && (await checkPassword(String(form.password || ''), user.password_hash));
      if (!ok) {
        console.log(`login failed for ${JSON.stringify(name)}`);
        return send(res, 401, loginPage(uid, 'Wrong username or password.'));
      }
      if (user.totp_secret) {
        passwordOk.set(uid, name);
        return send(res, 200, otpPage(uid));
      }
      console.log(`login ok for ${name} (password)`);
      return provider.interactionFinished(req, res,
        { login: { accountId: name, amr: ['pwd'], acr: 'urn:cloisonne:acr:pwd' } },
        { mergeWithLastSubmission: false });
    }
    if (req.method === 'POST' && action === 'otp') {
      const name = passwordOk.get(uid);
      const user = name && accounts()[name];
      if (!user || !user.totp_secret) return send(res, 401, loginPage(uid, 'Sign in again.'));
      const form = await readForm(req);
      if (!checkTotp(name, user.totp_secret, String(form.code || '').trim())) {
        console.log(`second factor failed for ${JSON.stringify(name)}`);
        return send(res, 401, otpPage(uid, 'Wrong or already used code.'));
      }
      passwordOk.delete(uid);
      console.log(`login ok for ${name} (password + TOTP)`);
      return provider.interactionFinished(req, res,
        { login: { accountId: name, amr: ['pwd', 'otp', 'mfa'], acr: 'urn:cloisonne:acr:mfa' } },
        { mergeWithLastSubmission: false });
    }
  }
  if (details.prompt.name === 'consent') {
    const result = await autoConsent(details);
    if (result) return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    return send(res, 403, 'This client needs explicit consent, which this provider does not offer.');
  }
  return send(res, 400, 'unexpected interaction');
}

const handler = provider.callback();
const server = http.createServer(async (req, res) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(login|otp))?\/?(?:\?.*)?$/.exec(req.url);
  if (!m) return handler(req, res);
  try {
    await interaction(req, res, m[1], m[2]);
  } catch (err) {
    console.error('interaction error:', err.message);
    if (!res.headersSent) send(res, 400, `Sign-in failed: ${escape(err.message)}. Start again from the hub.`);
  }
});

// Stop at once: keep-alive connections from the hub and browsers would hold close() open.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
server.listen(PORT, HOST, () => console.log(`listening ${ISSUER}`));
