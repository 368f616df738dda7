#!/usr/bin/env node
// panva's `openid-client` (v6, unmodified) as an OAuth 2.1 client with DPoP
// (RFC 9449) against gnapd: none of the MCP SDKs sends DPoP proofs, so this
// independent client library does the whole OAuth side and carries the MCP
// messages to the gateway itself.
//
//   dpop_client.mjs --issuer ISSUER --url http://HOST/mcp/UPSTREAM
//                   --client-id ID --redirect http://127.0.0.1:PORT/callback
//                   --tool NAME --tool-args JSON --token-file FILE [--alg ES256]
//
// Discovery (RFC 8414) → authorization request with PKCE and `resource` →
// one GET of the authorization URL without following the redirect (gnapd
// --dev approves at once; the Location is the callback) → code exchange with
// a DPoP proof → MCP `initialize`, `notifications/initialized`, `tools/call`
// with `Authorization: DPoP` and a fresh proof each → the attacks (the same
// token as Bearer, as DPoP without a proof, with another key's proof) →
// refresh with the same DPoP key → one more `tools/call` with the new token.
//
// One JSON line per step on stdout ({"step": ..., "ok": ...}); exit 0 when
// every step ran (the test judges the values), 1 on an exception. The access
// tokens go to --token-file (one a line) so the test can check the upstream
// never saw one.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import * as client from 'openid-client';

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    url: { type: 'string' },
    'client-id': { type: 'string' },
    redirect: { type: 'string' },
    tool: { type: 'string' },
    'tool-args': { type: 'string', default: '{}' },
    'token-file': { type: 'string' },
    alg: { type: 'string', default: 'ES256' }
  }
});

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

// What the MCP Streamable HTTP transport sends with every POST.
function mcpHeaders(session) {
  const headers = new Headers({
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream'
  });
  if (session.protocol) headers.set('mcp-protocol-version', session.protocol);
  if (session.id) headers.set('mcp-session-id', session.id);
  return headers;
}

// The JSON-RPC response in a JSON body or in the SSE stream's data events.
async function jsonRpc(response) {
  const text = await response.text();
  if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    return text ? JSON.parse(text) : null;
  }
  for (const event of text.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).trimStart())
      .join('\n');
    if (!data) continue;
    const message = JSON.parse(data);
    if ('result' in message || 'error' in message) return message;
  }
  return null;
}

// One MCP message to the gateway by openid-client's protected resource
// request: `Authorization: DPoP <token>` and a proof with `htm`, `htu` and
// `ath` for this request.
async function mcp(config, token, dpop, session, message) {
  const response = await client.fetchProtectedResource(
    config,
    token,
    new URL(args.url),
    'POST',
    JSON.stringify(message),
    mcpHeaders(session),
    { DPoP: dpop }
  );
  const id = response.headers.get('mcp-session-id');
  if (id) session.id = id;
  return { status: response.status, body: await jsonRpc(response) };
}

// The status a refused request got: openid-client throws on a 401 with a
// challenge, and hands back the response.
async function refusedStatus(attempt) {
  try {
    const response = await attempt();
    return { status: response.status, www_authenticate: response.headers.get('www-authenticate') };
  } catch (error) {
    if (!(error instanceof client.WWWAuthenticateChallengeError)) throw error;
    return {
      status: error.response.status,
      www_authenticate: error.response.headers.get('www-authenticate')
    };
  }
}

async function callTool(config, token, dpop, session, id) {
  const answer = await mcp(config, token, dpop, session, {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: { name: args.tool, arguments: JSON.parse(args['tool-args']) }
  });
  const result = answer.body?.result;
  return {
    status: answer.status,
    ok: answer.status === 200 && !!result && !result.isError,
    text: (result?.content ?? []).map((c) => c.text ?? '').join(' '),
    error: answer.body?.error ?? null
  };
}

async function main() {
  let step = 'discover';
  try {
    const config = await client.discovery(
      new URL(args.issuer),
      args['client-id'],
      { redirect_uris: [args.redirect] },
      client.None(),
      { execute: [client.allowInsecureRequests], algorithm: 'oauth2' }
    );
    const metadata = config.serverMetadata();
    emit({
      step,
      ok: true,
      issuer: metadata.issuer,
      dpop_algs: metadata.dpop_signing_alg_values_supported ?? null
    });

    step = 'authorize';
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: args.redirect,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      resource: args.url
    });
    const approval = await fetch(authorizationUrl, { redirect: 'manual' });
    const location = approval.headers.get('location');
    if (!location) {
      throw new Error(`authorization answered ${approval.status}: ${await approval.text()}`);
    }
    const callback = new URL(location, authorizationUrl);
    emit({
      step,
      ok: true,
      status: approval.status,
      sent: Object.fromEntries(authorizationUrl.searchParams),
      iss: callback.searchParams.get('iss')
    });

    // The client's DPoP key: one per client instance, for every token
    // request and every resource request (RFC 9449 §4).
    step = 'token';
    const keyPair = await client.randomDPoPKeyPair(args.alg);
    const dpop = client.getDPoPHandle(config, keyPair);
    const tokens = await client.authorizationCodeGrant(
      config,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state },
      { resource: args.url },
      { DPoP: dpop }
    );
    const held = [tokens.access_token];
    if (args['token-file']) writeFileSync(args['token-file'], held.join('\n'));
    emit({
      step,
      ok: true,
      token_type: tokens.token_type,
      scope: tokens.scope ?? null,
      expires_in: tokens.expires_in ?? null,
      refresh: typeof tokens.refresh_token === 'string'
    });

    step = 'initialize';
    const session = {};
    const init = await mcp(config, tokens.access_token, dpop, session, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'gnapd-interop-openid-client', version: '0.0.0' }
      }
    });
    session.protocol = init.body?.result?.protocolVersion;
    emit({
      step,
      ok: init.status === 200 && !!init.body?.result,
      status: init.status,
      session: !!session.id,
      protocol: session.protocol ?? null,
      server: init.body?.result?.serverInfo?.name ?? null
    });

    step = 'initialized';
    const initialized = await mcp(config, tokens.access_token, dpop, session, {
      jsonrpc: '2.0',
      method: 'notifications/initialized'
    });
    emit({ step, ok: initialized.status === 202, status: initialized.status });

    step = 'call';
    emit({ step, ...(await callTool(config, tokens.access_token, dpop, session, 2)) });

    // The attacks: whoever copies the token without the key gets nothing.
    step = 'attacks';
    const toolsCall = JSON.stringify({
      jsonrpc: '2.0',
      id: 3,
      method: 'tools/call',
      params: { name: args.tool, arguments: JSON.parse(args['tool-args']) }
    });
    const bearer = await refusedStatus(() => {
      const headers = mcpHeaders(session);
      headers.set('authorization', `Bearer ${tokens.access_token}`);
      return fetch(args.url, { method: 'POST', headers, body: toolsCall });
    });
    const noProof = await refusedStatus(() => {
      const headers = mcpHeaders(session);
      headers.set('authorization', `DPoP ${tokens.access_token}`);
      return fetch(args.url, { method: 'POST', headers, body: toolsCall });
    });
    const thief = client.getDPoPHandle(config, await client.randomDPoPKeyPair(args.alg));
    const otherKey = await refusedStatus(() =>
      client.fetchProtectedResource(
        config,
        tokens.access_token,
        new URL(args.url),
        'POST',
        toolsCall,
        mcpHeaders(session),
        { DPoP: thief }
      )
    );
    emit({ step, ok: true, bearer, no_proof: noProof, other_key: otherKey });

    step = 'refresh';
    const refreshed = await client.refreshTokenGrant(
      config,
      tokens.refresh_token,
      { resource: args.url },
      { DPoP: dpop }
    );
    held.push(refreshed.access_token);
    if (args['token-file']) writeFileSync(args['token-file'], held.join('\n'));
    emit({
      step,
      ok: true,
      token_type: refreshed.token_type,
      access_rotated: refreshed.access_token !== tokens.access_token,
      refresh_rotated:
        typeof refreshed.refresh_token === 'string' &&
        refreshed.refresh_token !== tokens.refresh_token
    });

    step = 'call_after_refresh';
    emit({ step, ...(await callTool(config, refreshed.access_token, dpop, session, 4)) });
    process.exit(0);
  } catch (error) {
    emit({ step, ok: false, error: String(error?.stack ?? error), cause: error?.cause ?? null });
    process.exit(1);
  }
}

await main();
