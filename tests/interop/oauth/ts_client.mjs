#!/usr/bin/env node
// The TypeScript MCP SDK's OAuth client, unmodified, against gnapd's gateway:
// a `StreamableHTTPClientTransport` with an `OAuthClientProvider`, exactly as
// an application wires it. Everything is discovered from the gateway's 401.
//
//   ts_client.mjs --url http://HOST/mcp/UPSTREAM --tool NAME --tool-args JSON
//                 --token-file FILE [--cimd-cert PEM --cimd-key PEM]
//                 [--client-id ID] [--redirect http://127.0.0.1:PORT/callback]
//                 [--wait-before-call SECONDS] [--revoke-before-call]
//
// The "browser" is the provider's `redirectToAuthorization`: it GETs the
// authorization URL without following redirects (gnapd --dev approves at once)
// and reads the code from the Location, as a browser landing on the callback
// would. With --cimd-cert/--cimd-key the script also hosts its own Client ID
// Metadata Document over https on loopback and gives its URL as
// `clientMetadataUrl`; with --client-id the provider holds a pre-registered
// client; otherwise the SDK registers dynamically.
//
// One JSON line per step on stdout ({"step": ..., "ok": ...}); exit 0 when all
// steps passed, 1 otherwise. Every access token the client held goes to
// --token-file (one a line) so the test can check the upstream never saw one.
// --wait-before-call lets the access token expire before the tools/call: the
// SDK then refreshes it on the gateway's 401 (step "refresh").
// --revoke-before-call revokes the access token (RFC 7009, at the endpoint
// the metadata names) before the tools/call: the gateway must refuse it and
// the application recover, by the SDK's refresh or by authorizing again
// (step "revoke").

import { createServer } from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    tool: { type: 'string' },
    'tool-args': { type: 'string', default: '{}' },
    'token-file': { type: 'string' },
    'cimd-cert': { type: 'string' },
    'cimd-key': { type: 'string' },
    'client-id': { type: 'string' },
    'wait-before-call': { type: 'string', default: '0' },
    'revoke-before-call': { type: 'boolean', default: false },
    redirect: { type: 'string', default: 'http://127.0.0.1:33418/callback' }
  }
});

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

// Hosts the client's metadata document (draft-ietf-oauth-client-id-metadata-document):
// `client_id` is the document's own URL. Counts the fetches so the test can
// see gnapd really read it.
async function hostMetadataDocument(cert, key, redirect) {
  const fetches = [];
  let url = '';
  const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
    fetches.push(req.url);
    if (req.url !== '/oauth/client.json') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
    res.end(
      JSON.stringify({
        client_id: url,
        client_name: 'gnapd interop (TypeScript SDK)',
        redirect_uris: [redirect],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none'
      })
    );
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${server.address().port}/oauth/client.json`;
  return { url, fetches, server };
}

// An in-memory OAuthClientProvider: what an application supplies. The only
// "browser" it has is one GET that does not follow the redirect.
class Provider {
  constructor(redirect, clientMetadataUrl, clientId) {
    this._redirect = redirect;
    this.clientMetadataUrl = clientMetadataUrl;
    this._client = clientId ? { client_id: clientId } : undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this._discovery = undefined;
    this._state = undefined;
    this.authorization = undefined;
  }
  get redirectUrl() {
    return this._redirect;
  }
  get clientMetadata() {
    return {
      client_name: 'gnapd interop (TypeScript SDK)',
      redirect_uris: [this._redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    };
  }
  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }
  codeVerifier() {
    return this._verifier;
  }
  saveDiscoveryState(state) {
    this._discovery = state;
  }
  discoveryState() {
    return this._discovery;
  }
  // What the SDK drops after the server refused it (invalid_grant: the
  // tokens; invalid_client: everything), before it tries again.
  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }
  async redirectToAuthorization(url) {
    const response = await fetch(url, { redirect: 'manual' });
    const location = response.headers.get('location');
    const sent = Object.fromEntries(url.searchParams);
    if (!location) {
      const body = await response.text();
      throw new Error(`authorization answered ${response.status} without a redirect: ${body}`);
    }
    const back = new URL(location, url);
    const got = Object.fromEntries(back.searchParams);
    const issuer = this._discovery?.authorizationServerMetadata?.issuer;
    // What an application must check itself: the redirect target, `state`
    // (CSRF) and `iss` (RFC 9207, mix-up).
    const expected = new URL(this._redirect);
    if (back.origin !== expected.origin || back.pathname !== expected.pathname) {
      throw new Error(`redirected to ${back.origin}${back.pathname}, not ${this._redirect}`);
    }
    if (got.error) {
      throw new Error(`authorization error ${got.error}: ${got.error_description ?? ''}`);
    }
    if (got.state !== this._state) {
      throw new Error(`state ${got.state} != ${this._state}`);
    }
    if (got.iss !== issuer) {
      throw new Error(`iss ${got.iss} != issuer ${issuer}`);
    }
    this.authorization = { status: response.status, sent, iss: got.iss, code: got.code };
  }
}

async function connect(provider, seen) {
  // The SDK is given a fetch that only records what the gateway answered, so
  // the test can check the challenge the client discovered everything from.
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      seen.push({
        url: String(input),
        status: response.status,
        www_authenticate: response.headers.get('www-authenticate')
      });
    }
    return response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(args.url), {
    authProvider: provider,
    fetch: recording
  });
  const client = new Client({ name: 'gnapd-interop-ts', version: '0.0.0' });
  await client.connect(transport);
  return { client, transport };
}

async function main() {
  let cimd;
  if (args['cimd-cert']) {
    cimd = await hostMetadataDocument(args['cimd-cert'], args['cimd-key'], args.redirect);
  }
  const provider = new Provider(args.redirect, cimd?.url, args['client-id']);
  const seen = [];
  let step = 'discover';
  try {
    // First connection: 401 → discovery → registration (CIMD or DCR) →
    // authorization (redirectToAuthorization) → UnauthorizedError, as the
    // SDK documents: the application then finishes with the code.
    let first;
    try {
      first = await connect(provider, seen);
    } catch (error) {
      if (!(error instanceof UnauthorizedError)) throw error;
    }
    if (first) throw new Error('the gateway let an unauthenticated client in');
    if (!provider.authorization) throw new Error('no authorization happened');
    const transport = new StreamableHTTPClientTransport(new URL(args.url), {
      authProvider: provider
    });
    step = 'token';
    await transport.finishAuth(provider.authorization.code);
    const tokens = provider.tokens();
    if (args['token-file']) writeFileSync(args['token-file'], tokens.access_token);
    emit({
      step: 'authorize',
      ok: true,
      challenge: seen[0] ?? null,
      client_id: provider.clientInformation()?.client_id,
      cimd: cimd ? { url: cimd.url, fetches: cimd.fetches } : null,
      issuer: provider.discoveryState()?.authorizationServerMetadata?.issuer,
      authorization_status: provider.authorization.status,
      sent: provider.authorization.sent,
      token_type: tokens.token_type,
      scope: tokens.scope ?? null,
      refresh: typeof tokens.refresh_token === 'string'
    });

    step = 'connect';
    const { client, transport: live } = await connect(provider, seen);
    emit({ step: 'connect', ok: true, server: client.getServerVersion()?.name });

    step = 'list_tools';
    const tools = await client.listTools();
    emit({ step: 'list_tools', ok: true, tools: tools.tools.map((t) => t.name) });

    const held = [tokens.access_token];
    const wait = Number(args['wait-before-call']);
    if (wait > 0) {
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
    }
    let revoked;
    if (args['revoke-before-call']) {
      step = 'revoke';
      const metadata = provider.discoveryState().authorizationServerMetadata;
      const answer = await fetch(metadata.revocation_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          token: tokens.access_token,
          token_type_hint: 'access_token',
          client_id: provider.clientInformation().client_id
        })
      });
      revoked = { status: answer.status, before: seen.length, recovered_by: 'refresh' };
    }
    step = 'call';
    const request = () =>
      client.callTool({ name: args.tool, arguments: JSON.parse(args['tool-args']) });
    let result;
    try {
      result = await request();
    } catch (error) {
      // What an application does when the SDK needs the person again: the
      // browser step ran (redirectToAuthorization); finish and retry.
      if (!revoked || !(error instanceof UnauthorizedError)) throw error;
      revoked.recovered_by = 'authorization';
      await live.finishAuth(provider.authorization.code);
      try {
        result = await request();
      } catch (again) {
        // A new authorization is a new grant: the gateway ends the session
        // the old one opened (404), and the MCP client starts a new one.
        revoked.session_ended = String(again);
        const fresh = await connect(provider, seen);
        result = await fresh.client.callTool({
          name: args.tool,
          arguments: JSON.parse(args['tool-args'])
        });
      }
    }
    const text = result.content.map((c) => c.text ?? '').join(' ');
    emit({ step: 'call', ok: !result.isError, text });
    const now = provider.tokens();
    if (now.access_token !== tokens.access_token) held.push(now.access_token);
    if (args['token-file']) writeFileSync(args['token-file'], held.join('\n'));
    if (revoked) {
      const refused = seen.slice(revoked.before).filter((s) => s.status === 401).length;
      emit({
        step: 'revoke',
        ok: revoked.status === 200 && refused > 0 && now.access_token !== tokens.access_token,
        status: revoked.status,
        refused,
        recovered_by: revoked.recovered_by,
        session_ended: revoked.session_ended ?? null,
        session_status: seen.slice(revoked.before).filter((s) => s.status === 404).length
      });
    }
    if (wait > 0) {
      emit({
        step: 'refresh',
        ok: now.access_token !== tokens.access_token,
        access_rotated: now.access_token !== tokens.access_token,
        refresh_rotated: now.refresh_token !== tokens.refresh_token,
        unauthorized: seen.filter((s) => s.status === 401).length
      });
    }
    await client.close();
    cimd?.server.close();
    const refreshed =
      (wait <= 0 && !revoked) || now.access_token !== tokens.access_token;
    process.exit(result.isError || !refreshed ? 1 : 0);
  } catch (error) {
    emit({ step, ok: false, error: String(error?.stack ?? error), seen });
    cimd?.server.close();
    process.exit(1);
  }
}

await main();
