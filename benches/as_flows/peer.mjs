// The comparison peer for the as_flows benchmark: node-oidc-provider (npm
// `oidc-provider`, pinned in package.json) configured for the OAuth
// equivalent of a brand-new GNAP agent getting its first token:
//
//   POST /reg    open dynamic client registration (RFC 7591), no initial
//                access token; grant_types ["client_credentials"],
//                response_types [], token_endpoint_auth_method
//                client_secret_basic (the provider refuses "none" for a
//                client that can only use client_credentials: such a
//                client must authenticate).
//   POST /token  grant_type=client_credentials, scope=mcp:github, with a
//                DPoP proof (RFC 9449); the answer is a DPoP-bound opaque
//                access token for the default resource.
//
// Everything else is the provider's default: its in-memory adapter (an LRU
// of 1000-2000 entries, nothing on disk), DPoP without server nonces
// (`requireNonce` returns false and no `nonceSecret` is set, so no
// `use_dpop_nonce` round trip), DPoP replay detection on.
//
// PEER_DPOP_NONCE=1 in the environment turns server nonces on
// (`nonceSecret` set, `requireNonce` always true): every brand-new client's
// first token request is then answered `use_dpop_nonce` and retried, one
// more round trip per flow. Off by default; it exercises the generator's
// nonce path and shows what a nonce-requiring deployment costs.
//
// Usage: node peer.mjs [--port 0]
// Prints "peer listening on ADDR, issuer URL" as its first stdout line.
// Stops on SIGTERM / SIGINT.

import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { once } from 'node:events';

import Provider, { errors } from 'oidc-provider';

const RESOURCE = 'urn:gnapd-bench:mcp:github';
const SCOPE = 'mcp:github';

const portArg = process.argv.indexOf('--port');
const port = portArg === -1 ? 0 : Number(process.argv[portArg + 1]);

// Bind first so the issuer (which DPoP `htu` is checked against) carries the
// real port.
const server = http.createServer();
server.listen(port, '127.0.0.1');
await once(server, 'listening');
const { address, port: bound } = server.address();
const issuer = `http://${address}:${bound}`;

// A signing key of our own so the provider does not fall back to (and warn
// about) its development keys. RS256 because that is the default
// `id_token_signed_response_alg` a registered client gets. Opaque access
// tokens do not use it.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  // No browser clients here; this also keeps the default's warning away.
  clientBasedCORS: () => false,
  scopes: [SCOPE],
  features: {
    devInteractions: { enabled: false },
    registration: {
      enabled: true,
      initialAccessToken: false,
      // RFC 7591 registration needs no registration access token; not
      // issuing one saves the peer a stored artifact per flow.
      issueRegistrationAccessToken: false,
    },
    clientCredentials: { enabled: true },
    dPoP: process.env.PEER_DPOP_NONCE === '1'
      ? { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true }
      : { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => {
        if (indicator !== RESOURCE) throw new errors.InvalidTarget();
        return { scope: SCOPE, audience: RESOURCE, accessTokenFormat: 'opaque', accessTokenTTL: 3600 };
      },
    },
  },
  ttl: { ClientCredentials: 3600 },
});

provider.on('server_error', (ctx, err) => {
  console.error('peer server_error', err);
});

server.on('request', provider.callback());

console.log(`peer listening on ${address}:${bound}, issuer ${issuer}`);
if (process.env.PEER_DPOP_NONCE === '1') console.error('peer: DPoP server nonces required');

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
