// Helpers shared by the browser tests: launch Debian's chromium through playwright-core, start
// `toploss review` and read its address, and fail a script with a clear message.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

// Chromium binary, from env CHROMIUM (Debian's package installs /usr/bin/chromium).
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// Maximum wait for a server to print its address or to stop, in milliseconds.
const SERVER_TIMEOUT_MS = 60_000;

// Without the networking flags, chromium contacts Google's hosts at start, and a closed network
// refuses many connections. The other flags keep the run headless and quiet.
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Servers started by startReview and not stopped yet; killed when the script exits, so that a
// failed check leaves no server running.
const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

// Prints `message` and ends the script with exit status 1.
export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

// Fails with `message` unless `condition` holds.
export function check(condition, message) {
  if (!condition) fail(message);
}

// Returns the value of env `name`, failing when it is unset.
export function requireEnv(name, hint) {
  const value = process.env[name];
  if (!value) fail(`env ${name} is not set: ${hint}`);
  return value;
}

// Returns the value after `flag` in the command-line arguments, or undefined.
export function argValue(flag) {
  const position = process.argv.indexOf(flag);
  if (position < 0) return undefined;
  const value = process.argv[position + 1];
  if (!value || value.startsWith("--")) fail(`${flag} needs a value`);
  return value;
}

// Launches headless chromium with a fresh, empty profile. Returns { context, close }.
export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) {
    fail(`chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set CHROMIUM`);
  }
  const profile = mkdtempSync(path.join(tmpdir(), "toploss-e2e-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1280, height: 860 },
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    fail(`cannot launch ${CHROMIUM}: ${error.message}`);
  }
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Starts `TOPLOSS_BIN review RUN --port 0 ARGS...` and waits for its first stdout line,
// `Review page: URL`. Returns { url, stop }; stop() sends SIGINT (as Ctrl-C does) and fails
// unless the server exits with status 0.
export async function startReview(run, args = []) {
  const bin = requireEnv("TOPLOSS_BIN", "set it to the toploss binary (cargo sets it for the Rust test)");
  const child = spawn(bin, ["review", run, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (text) => {
    stderr += text;
  });
  const exited = new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );

  let listening = false;
  const url = await new Promise((resolve) => {
    let stdout = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(`toploss review printed no address within ${SERVER_TIMEOUT_MS} ms; stderr:\n${stderr}`);
    }, SERVER_TIMEOUT_MS);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (text) => {
      stdout += text;
      const newline = stdout.indexOf("\n");
      if (newline < 0) return;
      clearTimeout(timer);
      listening = true;
      const match = /^Review page: (http:\/\/\S+)$/.exec(stdout.slice(0, newline).trim());
      if (!match) {
        child.kill("SIGKILL");
        fail(`unexpected first line from toploss review: ${JSON.stringify(stdout.slice(0, newline))}`);
      }
      resolve(match[1]);
    });
    exited.then(({ code, signal }) => {
      if (listening) return;
      clearTimeout(timer);
      fail(`toploss review exited (status ${code}, signal ${signal}) before printing its address; stderr:\n${stderr}`);
    });
  });

  return {
    url,
    async stop() {
      child.kill("SIGINT");
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        fail(`toploss review did not stop within ${SERVER_TIMEOUT_MS} ms of SIGINT`);
      }, SERVER_TIMEOUT_MS);
      const { code, signal } = await exited;
      clearTimeout(timer);
      check(code === 0, `toploss review exited with status ${code} (signal ${signal}); stderr:\n${stderr}`);
      return stderr;
    },
  };
}
