// Drives Debian's chromium (headless, through playwright-core) through
// gnapd's interaction pages the way a person would: reads the page, unticks,
// types, clicks. Run by tests/it/interaction_browser.rs; one JSON argument
// names the flow:
//
//   {"flow": "redirect", "url": LINK, "untick": ["tool name", ...],
//    "finish_prefix": URI, "not_found": URL, "out": DIR}
//   {"flow": "user-code", "url": DEVICE_URL, "code": "XXXX-XXXX", "out": DIR}
//   {"flow": "deny", "url": LINK, "out": DIR}
//   {"flow": "connect-again", "url": LINK1, "urls": [LINK1, LINK2, LINK3], "key": KEY, "out": DIR}
//
// Saves a full-page PNG of every page it sees under DIR, at a phone's
// viewport, and prints one JSON line: {"ok": true, "final_url": ...,
// "screenshots": [...]}; on failure {"ok": false, "error": ...} and exit 1.
// A missing browser is a failure, never a skip.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const plan = JSON.parse(process.argv[2] ?? '{}');
const screenshots = [];
const problems = [];

function fail(message) {
  throw new Error(message);
}

async function shot(page, name) {
  const path = join(plan.out, `${String(screenshots.length + 1).padStart(2, '0')}-${plan.flow}-${name}.png`);
  await page.screenshot({ path, fullPage: true });
  screenshots.push(path);
}

// The inline stylesheet applied: the CSP's style hash matched.
async function checkStyled(page) {
  const font = await page.evaluate(() => getComputedStyle(document.querySelector('main')).maxWidth);
  if (font !== '640px') fail(`the stylesheet did not apply (main max-width ${font})`);
}

async function headingIs(page, text) {
  const heading = await page.locator('h1').innerText();
  if (heading.trim() !== text) fail(`expected the page "${text}", got "${heading}"`);
}

async function redirectFlow(page) {
  await page.goto(plan.url);
  await headingIs(page, 'Approve access for an agent?');
  await checkStyled(page);
  const unverified = await page.locator('.unverified').innerText();
  if (unverified !== '(unverified)') fail('the agent name is not marked unverified');
  await shot(page, 'consent');
  for (const tool of plan.untick ?? []) {
    await page.getByRole('checkbox', { name: `tool ${tool}`, exact: true }).uncheck();
  }
  await shot(page, 'consent-unticked');
  await Promise.all([
    page.waitForURL((url) => url.href.startsWith(plan.finish_prefix)),
    page.getByRole('button', { name: 'Approve' }).click(),
  ]);
  await shot(page, 'client-callback');
  const finalUrl = page.url();
  if (plan.not_found) {
    const response = await page.goto(plan.not_found);
    if (response.status() !== 404) fail(`an unknown link answered ${response.status()}`);
    await headingIs(page, 'Nothing to approve here');
    await shot(page, 'not-found');
  }
  return finalUrl;
}

async function userCodeFlow(page) {
  await page.goto(plan.url);
  await headingIs(page, 'Enter the code your agent shows');
  await checkStyled(page);
  await shot(page, 'device');
  const code = page.getByLabel('Code');
  await code.fill('2222-2222');
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Continue' }).click()]);
  await page.getByRole('alert').waitFor();
  await shot(page, 'device-wrong-code');
  // As a person types it: lowercase, a dash, stray spaces.
  await page.getByLabel('Code').fill(` ${plan.code.toLowerCase()} `);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { name: 'Approve access for an agent?' }).waitFor();
  await shot(page, 'consent');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByRole('heading', { name: 'Access approved' }).waitFor();
  await shot(page, 'done');
  return page.url();
}

async function denyFlow(page) {
  await page.goto(plan.url);
  await headingIs(page, 'Approve access for an agent?');
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByRole('heading', { name: 'Access denied' }).waitFor();
  await checkStyled(page);
  await shot(page, 'denied');
  return page.url();
}

// Three grants in one browser: a key pasted on the first page; on the
// second page the same key offered again (its choice preselected) and
// approved without pasting anything; on the third, forgotten.
async function connectAgainFlow(page) {
  const [first, second, third] = plan.urls ?? fail('connect-again needs three urls');
  await page.goto(first);
  await headingIs(page, 'Approve access for an agent?');
  if ((await page.getByRole('radio').count()) !== 0) fail('a fresh browser was offered an earlier connection');
  await page.getByLabel(/Paste your key/).fill(plan.key);
  await shot(page, 'connect-key');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByRole('heading', { name: 'Access approved' }).waitFor();
  await page.goto(second);
  await headingIs(page, 'Approve access for an agent?');
  await checkStyled(page);
  const earlier = page.getByRole('radio', { name: /A key you connected/ });
  if ((await earlier.count()) !== 1) fail('the key connected on the first page is not offered');
  if (!(await earlier.isChecked())) fail('the earlier key is not preselected');
  await shot(page, 'connect-earlier');
  await page.getByRole('button', { name: 'Approve' }).click();
  await page.getByRole('heading', { name: 'Access approved' }).waitFor();
  await shot(page, 'done');
  await page.goto(third);
  await page.getByRole('button', { name: /^Forget: A key you connected/ }).click();
  await page.getByRole('alert').filter({ hasText: 'Forgotten' }).waitFor();
  if ((await page.getByRole('radio').count()) !== 0) fail('a forgotten key is still offered');
  await shot(page, 'forgotten');
  return page.url();
}

const flows = { redirect: redirectFlow, 'user-code': userCodeFlow, deny: denyFlow, 'connect-again': connectAgainFlow };

async function main() {
  if (!flows[plan.flow] || !plan.url || !plan.out) fail(`usage: flow.mjs '{"flow": ..., "url": ..., "out": ...}'`);
  if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: install Debian's chromium (scripts/test.sh does)`);
  const profile = mkdtempSync(join(tmpdir(), 'gnapd-chromium-'));
  let context;
  try {
    // A fresh profile per run (playwright passes it as --user-data-dir).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 390, height: 844 },
      locale: 'en-US',
      timeout: 60_000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    const finalUrl = await flows[plan.flow](page);
    const csp = problems.filter((p) => /Content Security Policy/i.test(p));
    if (csp.length) fail(`CSP violations: ${csp.join(' | ')}`);
    return finalUrl;
  } finally {
    if (context) await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

try {
  const finalUrl = await main();
  console.log(JSON.stringify({ ok: true, final_url: finalUrl, screenshots }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.message ?? error), screenshots, console: problems }));
  process.exit(1);
}
