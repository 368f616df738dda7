#!/usr/bin/env node
// Runs the official MCP conformance suite's `authorization` command
// (@modelcontextprotocol/conformance) against an authorization server, with
// the one step it leaves to a person done headlessly: the suite prints the
// authorization URL and waits for its callback on
// http://127.0.0.1:PORT/callback; this driver GETs that URL without following
// redirects (gnapd --dev approves at once) and delivers the Location to the
// suite's callback, as a browser would.
//
//   conformance.mjs --url ISSUER --client-id ID --port PORT [--resource URI] --out DIR
//
// JSON lines on stdout: {"step": "login", ...} for the browser step, one
// {"step": "scenario", "name": ..., "checks": [...]} per scenario the suite
// saved (from DIR/**/checks.json), and {"step": "exit", "code": N}. The
// suite's own output goes to stderr.

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    'client-id': { type: 'string' },
    port: { type: 'string' },
    resource: { type: 'string' },
    out: { type: 'string' }
  }
});

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

const require = createRequire(import.meta.url);
const suite = join(
  dirname(require.resolve('@modelcontextprotocol/conformance/package.json')),
  'dist/index.js'
);
const argv = [
  suite,
  'authorization',
  '--url',
  args.url,
  '--client-id',
  args['client-id'],
  '--port',
  args.port,
  '-o',
  args.out
];
if (args.resource) argv.push('--resource', args.resource);

const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });

// The browser: the authorization URL is the line that starts with the
// authorization endpoint and carries response_type=code.
async function login(line) {
  try {
    const response = await fetch(line, { redirect: 'manual' });
    const location = response.headers.get('location');
    if (!location) {
      emit({ step: 'login', ok: false, status: response.status, body: await response.text() });
      return;
    }
    const target = new URL(location, line);
    const delivered = await fetch(target, { redirect: 'manual' });
    emit({
      step: 'login',
      ok: delivered.status === 200,
      status: response.status,
      redirect: `${target.origin}${target.pathname}`,
      params: [...target.searchParams.keys()],
      error: target.searchParams.get('error'),
      error_description: target.searchParams.get('error_description'),
      callback_status: delivered.status
    });
  } catch (error) {
    emit({ step: 'login', ok: false, error: String(error) });
  }
}

const lines = createInterface({ input: child.stdout });
lines.on('line', (line) => {
  process.stderr.write(`[suite] ${line}\n`);
  const text = line.trim();
  if (/^https?:\/\//.test(text) && text.includes('response_type=code')) {
    void login(text);
  }
});

function checksFiles(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...checksFiles(path));
    else if (name === 'checks.json') found.push(path);
  }
  return found;
}

child.on('exit', (code) => {
  for (const file of checksFiles(args.out)) {
    const checks = JSON.parse(readFileSync(file, 'utf-8'));
    emit({
      step: 'scenario',
      file,
      checks: checks.map((c) => ({ id: c.id, status: c.status, error: c.errorMessage ?? null }))
    });
  }
  emit({ step: 'exit', code });
  process.exit(0);
});
