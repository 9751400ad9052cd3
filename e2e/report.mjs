// Browser test of `toploss report`: the grid must show each epoch's top ids in the order
// that `toploss top` ranks them, when the epoch slider moves and when a class is chosen, and
// clicking a tile must show that sample's history. The page must load nothing from any host.
//
// Env: TOPLOSS_BIN (the toploss binary) and E2E_RUN (a run folder with at least two epochs).
// Options: --screenshot PATH saves the page after the checks; --measure prints how long the
// grid takes to redraw when the slider moves across every epoch (3 rounds, --max-k tiles).

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { argValue, check, fail, launchBrowser, requireEnv } from "./lib.mjs";

const bin = requireEnv("TOPLOSS_BIN", "set it to the toploss binary");
const run = requireEnv("E2E_RUN", "set it to a run folder with at least two epochs");
const screenshot = argValue("--screenshot");
const measure = process.argv.includes("--measure");
const maxK = Number(argValue("--max-k") || 64);
const work = mkdtempSync(path.join(tmpdir(), "toploss-report-e2e-"));

// Runs toploss and fails with its stderr when it does not succeed.
function toploss(args) {
  const result = spawnSync(bin, args, { encoding: "utf8" });
  if (result.status !== 0) fail(`toploss ${args.join(" ")} exited with ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

// The ids that `toploss top` ranks first, read from its --csv.
function topIds(epoch, k, cls) {
  const csv = path.join(work, `top-${epoch}-${cls ?? "all"}.csv`);
  const args = ["top", run, "--epoch", String(epoch), "-k", String(k), "--csv", csv,
    "--out", path.join(work, "grid.png"), "--no-table"];
  if (cls !== undefined) args.push("--class", String(cls));
  toploss(args);
  return readFileSync(csv, "utf8").trim().split("\n").slice(1).map((line) => Number(line.split(",")[1]));
}

function sameList(got, expected, what) {
  check(JSON.stringify(got) === JSON.stringify(expected),
    `${what}: the grid shows ids ${JSON.stringify(got)}, toploss top ranks ${JSON.stringify(expected)}`);
}

const report = path.join(work, "report.html");
toploss(["report", run, "--out", report, "--max-k", String(maxK)]);
const epochs = JSON.parse(readFileSync(path.join(run, "run.json"), "utf8")).epochs.length;
check(epochs >= 2, `${run} has ${epochs} epoch(s); the test needs at least two`);

const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(String(error)));
  const outside = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:") || url.startsWith("data:")) return route.continue();
    outside.push(url);
    return route.abort();
  });
  await page.goto(pathToFileURL(report).href, { waitUntil: "load" });
  const gridIds = () => page.$$eval("#grid .tile", (tiles) => tiles.map((t) => Number(t.dataset.id)));

  // The page opens on the last epoch with 16 tiles.
  sameList(await gridIds(), topIds(epochs, 16), `epoch ${epochs}`);

  // Move the slider to epoch 1 with the keyboard, one step at a time.
  await page.focus("#epoch");
  for (let step = 1; step < epochs; step++) await page.keyboard.press("ArrowLeft");
  check((await page.textContent("#epoch-value")).startsWith("1 /"), "the slider did not reach epoch 1");
  sameList(await gridIds(), topIds(1, 16), "epoch 1");

  // A class filter and a larger k.
  await page.selectOption("#class", "3");
  await page.$eval("#k", (input) => { input.value = "25"; input.dispatchEvent(new Event("input")); });
  sameList(await gridIds(), topIds(1, 25, 3), "epoch 1, class 3, k 25");

  // The test split.
  await page.selectOption("#class", "-1");
  await page.selectOption("#split", { index: 1 });
  sameList(await gridIds(), (() => {
    const csv = path.join(work, "test.csv");
    toploss(["top", run, "--epoch", "1", "-k", "25", "--split", "test", "--csv", csv,
      "--out", path.join(work, "grid.png"), "--no-table"]);
    return readFileSync(csv, "utf8").trim().split("\n").slice(1).map((line) => Number(line.split(",")[1]));
  })(), "test split, epoch 1");

  // Clicking a tile shows its history: one table row per epoch.
  const first = (await gridIds())[0];
  await page.click("#grid .tile >> nth=0");
  const heading = await page.textContent("#detail h3");
  check(heading.includes(`#${first}`), `the detail panel shows "${heading}" after a click on #${first}`);
  const historyRows = await page.$$eval("#detail table.history tr", (rows) => rows.length - 1);
  check(historyRows === epochs, `the history has ${historyRows} rows for ${epochs} epochs`);

  // Back to the train split at the last epoch for the screenshot.
  await page.selectOption("#split", { index: 0 });
  await page.$eval("#k", (input) => { input.value = "16"; input.dispatchEvent(new Event("input")); });
  await page.focus("#epoch");
  for (let step = 1; step < epochs; step++) await page.keyboard.press("ArrowRight");
  await page.click("#grid .tile >> nth=0");

  if (measure) {
    const times = await page.evaluate(async (k) => {
      const kInput = document.getElementById("k");
      kInput.value = String(k);
      kInput.dispatchEvent(new Event("input"));
      const slider = document.getElementById("epoch");
      const n = Number(slider.max) + 1;
      const times = [];
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < n; i++) {
          const started = performance.now();
          slider.value = String((i + 1) % n);
          slider.dispatchEvent(new Event("input"));
          // The next frame after the change, i.e. once the new grid is painted.
          await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
          times.push(performance.now() - started);
        }
      }
      return times;
    }, maxK);
    times.sort((a, b) => a - b);
    const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(1);
    console.log(`redraw of ${maxK} tiles over ${times.length} slider moves: median ${at(0.5)} ms, ` +
      `95th percentile ${at(0.95)} ms, max ${times[times.length - 1].toFixed(1)} ms`);
  }
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: false });

  check(errors.length === 0, `the page threw: ${errors.join("; ")}`);
  check(outside.length === 0, `the page requested other hosts: ${outside.join(", ")}`);
  console.log(`report page ok: ${epochs} epochs, grid order matches toploss top`);
} finally {
  await browser.close();
  rmSync(work, { recursive: true, force: true });
}
