// Browser test of `toploss review`: relabel one candidate and discard another with the
// keyboard, restart the server, and check that the page and RUN/corrections.csv keep exactly
// those two decisions.
//
//   TOPLOSS_BIN=target/release/toploss TOPLOSS_RUN=runs/small node e2e/review.mjs [--screenshot PATH]
//
// RUN must be a run folder without corrections.csv; the script writes one there.

import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { argValue, check, fail, launchBrowser, requireEnv, startReview } from "./lib.mjs";

// Maximum wait for one page change, in milliseconds.
const STEP_TIMEOUT_MS = 15_000;

const run = requireEnv("TOPLOSS_RUN", "set it to a run folder written by `toploss train`");
const screenshot = argValue("--screenshot");
const correctionsPath = path.join(run, "corrections.csv");
check(
  !existsSync(correctionsPath),
  `${correctionsPath} exists already; use a run without decisions, so that the file can be checked`,
);

const browser = await launchBrowser();
let server = await startReview(run, ["-k", "16"]);
const page = await browser.context.newPage();

// The page must make no request to any other host.
const foreign = [];
page.on("request", (request) => {
  const url = request.url();
  if (!url.startsWith("data:") && !url.startsWith(new URL(server.url).origin)) foreign.push(url);
});
const pageErrors = [];
page.on("pageerror", (error) => pageErrors.push(error.message));

async function open() {
  await page.goto(server.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: STEP_TIMEOUT_MS });
}

// Waits until the strip shows `action` on the thumbnail of `id`.
async function expectThumb(id, action) {
  try {
    await page.waitForSelector(`.thumb[data-id="${id}"][data-action="${action}"]`, {
      timeout: STEP_TIMEOUT_MS,
    });
  } catch {
    const found = await page.getAttribute(`.thumb[data-id="${id}"]`, "data-action");
    fail(`thumbnail of id ${id} shows ${found}, expected ${action}`);
  }
}

// Checks the decision panel of the sample on screen.
async function expectPanel(id, action, text) {
  const panel = page.locator("#decision");
  check((await panel.getAttribute("data-id")) === String(id), `the panel shows id ${await panel.getAttribute("data-id")}, expected ${id}`);
  check((await panel.getAttribute("data-action")) === action, `id ${id}: panel action ${await panel.getAttribute("data-action")}, expected ${action}`);
  const shown = await panel.textContent();
  check(shown.includes(text), `id ${id}: panel says ${JSON.stringify(shown)}, expected it to contain ${JSON.stringify(text)}`);
}

await open();
const state = await (await fetch(new URL("api/state", server.url))).json();
check(state.candidates.length === 16, `expected 16 candidates, got ${state.candidates.length}`);
const [first, second] = state.candidates;
// A digit key for a class other than the given label: the predicted class when it differs,
// as a reviewer would mostly choose.
const newLabel = first.predicted !== first.label ? first.predicted : (first.label + 1) % 10;
check(newLabel < 10, `class ${newLabel} has no digit key; run the script on a 10-class run`);

// Relabel the first candidate and discard the second with the keyboard; the page moves on to
// the next candidate after each decision.
await page.keyboard.press(String(newLabel));
await expectThumb(first.id, "relabel");
await page.keyboard.press("d");
await expectThumb(second.id, "discard");
check(
  (await page.getAttribute("#decision", "data-id")) === String(state.candidates[2].id),
  "the page did not move on to the third candidate",
);

// Back to the first (j, then ArrowLeft) and forward again (l).
await page.keyboard.press("j");
await expectPanel(second.id, "discard", "Discarded");
await page.keyboard.press("ArrowLeft");
await expectPanel(first.id, "relabel", `Relabelled → ${newLabel}`);
await page.keyboard.press("l");
await expectPanel(second.id, "discard", "Discarded");

// Restart the server (it gets a new port) and reload: the decisions come back from the file.
await server.stop();
server = await startReview(run, ["-k", "16"]);
await open();
await expectThumb(first.id, "relabel");
await expectThumb(second.id, "discard");
await expectPanel(first.id, "relabel", `Relabelled → ${newLabel}`);
const undecided = await page.locator('.thumb[data-action="none"]').count();
check(undecided === 14, `expected 14 undecided candidates after the restart, got ${undecided}`);

// The file contains exactly those two rows.
const lines = readFileSync(correctionsPath, "utf8").trimEnd().split("\n");
const expected = [
  "id,action,new_label,note",
  `${first.id},relabel,${newLabel},`,
  `${second.id},discard,,`,
];
check(
  JSON.stringify(lines) === JSON.stringify(expected),
  `${correctionsPath} holds ${JSON.stringify(lines)}, expected ${JSON.stringify(expected)}`,
);

if (screenshot) {
  // Wait for every thumbnail, so that none is blank in the picture.
  const loaded = () =>
    [...document.querySelectorAll(".thumb img")].every((img) => img.complete && img.naturalWidth > 0);
  try {
    await page.waitForFunction(loaded, null, { timeout: STEP_TIMEOUT_MS });
  } catch {
    const blank = await page.evaluate(() =>
      [...document.querySelectorAll(".thumb img")]
        .filter((img) => !(img.complete && img.naturalWidth > 0))
        .map((img) => img.src),
    );
    fail(`thumbnails not loaded after ${STEP_TIMEOUT_MS} ms: ${blank.join(", ")}`);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(`wrote ${screenshot}`);
}
check(foreign.length === 0, `the page requested other hosts: ${foreign.join(", ")}`);
check(pageErrors.length === 0, `the page threw: ${pageErrors.join("; ")}`);

await server.stop();
await browser.close();
console.log(`review page: relabel of id ${first.id} and discard of id ${second.id} kept across a restart`);
