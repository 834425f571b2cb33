// Browser test of examples/live_progress in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core; no browser download).
//
//   node tests/browser/live_progress.mjs BINARY [--screenshot PATH]
//
// BINARY is the built example (build/examples/live_progress/live_progress).
// The screenshot path may also come from LIVE_PROGRESS_SCREENSHOT; default
// build/artifacts/live_progress.png. CHROMIUM overrides the browser path.
//
// 1. Three tabs start jobs of different sizes at once: each reaches 100 %
//    with exactly its own results (count, checksum, work-unit total, the last
//    results shown), and /stats reports executions that held items of more
//    than one job. A screenshot of the three tabs is saved.
// 2. Two tabs start; one is closed mid-run. The other still finishes with
//    its right results, the server reports the closed job abandoned with
//    items it never ran, and serves a new job afterwards.
// 3. SIGTERM stops the server, with exit status 0.
//
// Exits 1 with a message naming what failed; the server is killed in any case.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const seconds = 1000;
const jobTimeout = 60 * seconds;

// The example's functions (examples/live_progress/live_progress.cpp).
const resultOf = (i) => (i * i + 1) % 1000003;
const workUnitsOf = (i) => 1 + (i % 7);
const modulus = 1000000007;

function expectedFor(n) {
  let checksum = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    checksum = (checksum + (i + 1) * resultOf(i)) % modulus;
    total += workUnitsOf(i);
  }
  const last = [];
  for (let i = Math.max(0, n - 5); i < n; i++) last.push(`${i}: ${resultOf(i)}`);
  return { checksum, total, last };
}

class TestFailure extends Error {}

function check(condition, message) {
  if (!condition) throw new TestFailure(message);
}

function parseArguments(argv) {
  let binary = null;
  let screenshot = process.env.LIVE_PROGRESS_SCREENSHOT || null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--screenshot" && i + 1 < argv.length) {
      screenshot = argv[++i];
    } else if (!binary && !argv[i].startsWith("--")) {
      binary = argv[i];
    } else {
      throw new TestFailure(`unknown argument ${argv[i]}`);
    }
  }
  if (!binary) {
    throw new TestFailure("usage: node live_progress.mjs BINARY [--screenshot PATH]");
  }
  screenshot ??= resolve(here, "../../build/artifacts/live_progress.png");
  return { binary: resolve(binary), screenshot: resolve(screenshot) };
}

// --- the server ------------------------------------------------------------------

function startServer(binary) {
  const child = spawn(binary, ["--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  const server = { child, output: "", exited: null, url: null };
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (text) => (server.output += text));
  child.stderr.on("data", (text) => (server.output += text));
  server.exit = new Promise((resolveExit) => {
    child.on("exit", (code, signal) => {
      server.exited = { code, signal };
      resolveExit(server.exited);
    });
    child.on("error", (error) => {
      server.exited = { code: null, signal: null, error };
      resolveExit(server.exited);
    });
  });
  return server;
}

async function waitForListening(server) {
  const give_up = Date.now() + 20 * seconds;
  while (Date.now() < give_up) {
    const found = /^listening on (http:\/\/\S+)$/m.exec(server.output);
    if (found) {
      server.url = found[1];
      return;
    }
    if (server.exited) {
      throw new TestFailure(`the server exited before listening (${describeExit(server.exited)})`);
    }
    await sleep(50);
  }
  throw new TestFailure("the server printed no 'listening on http://...' line within 20 s");
}

function describeExit({ code, signal, error }) {
  if (error) return `could not start: ${error.message}`;
  return signal ? `killed by ${signal}` : `exit status ${code}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function stats(server) {
  let response;
  try {
    response = await fetch(`${server.url}/stats`, { signal: AbortSignal.timeout(10 * seconds) });
  } catch (error) {
    throw new TestFailure(`GET /stats failed: ${error.message}`);
  }
  check(response.ok, `GET /stats answered ${response.status}`);
  return response.json();
}

// Polls /stats until `ready(stats)` or the timeout; returns the last stats.
async function statsUntil(server, ready, what) {
  const give_up = Date.now() + 20 * seconds;
  let last = null;
  while (Date.now() < give_up) {
    last = await stats(server);
    if (ready(last)) return last;
    await sleep(100);
  }
  throw new TestFailure(`/stats never showed ${what}; last: ${JSON.stringify(last)}`);
}

// --- the page --------------------------------------------------------------------

async function openTab(context, server, n) {
  const page = await context.newPage();
  await page.goto(server.url + "/");
  await page.fill("#count", String(n));
  return { page, n };
}

async function readTab(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    return {
      state: document.body.dataset.state,
      status: text("status"),
      job: Number(text("job")),
      percent: text("percent"),
      bar: document.getElementById("bar").value,
      done: Number(text("done")),
      total: Number(text("total")),
      results: Number(text("results")),
      checksum: Number(text("checksum")),
      executions: Number(text("executions")),
      shared: Number(text("shared")),
      unexpected: Number(text("unexpected")),
      last: [...document.querySelectorAll("#last li")].map((li) => li.textContent),
    };
  });
}

async function waitUntilEnded(tab, label) {
  try {
    await tab.page.waitForSelector('body[data-state="finished"], body[data-state="failed"]', {
      timeout: jobTimeout,
    });
  } catch {
    const seen = await readTab(tab.page);
    throw new TestFailure(
      `${label} (n=${tab.n}) did not finish within ${jobTimeout / seconds} s: ${JSON.stringify(seen)}`,
    );
  }
}

// Everything the tab shows must be its own job's n results, and complete.
async function checkTab(tab, label) {
  const seen = await readTab(tab.page);
  const want = expectedFor(tab.n);
  const where = `${label} (n=${tab.n}, job ${seen.job})`;
  check(seen.state === "finished", `${where}: ended '${seen.status}', not finished`);
  check(seen.percent === "100 %", `${where}: shows ${seen.percent}, not 100 %`);
  check(seen.bar === tab.n, `${where}: the bar is at ${seen.bar} of ${tab.n}`);
  check(seen.done === tab.n, `${where}: ${seen.done} items done, want ${tab.n}`);
  check(seen.results === tab.n, `${where}: ${seen.results} results, want ${tab.n}`);
  check(seen.unexpected === 0, `${where}: ${seen.unexpected} results of another job or repeated`);
  check(seen.checksum === want.checksum, `${where}: checksum ${seen.checksum}, want ${want.checksum}`);
  check(seen.total === want.total, `${where}: work units ${seen.total}, want ${want.total}`);
  check(
    JSON.stringify(seen.last) === JSON.stringify(want.last),
    `${where}: last results ${JSON.stringify(seen.last)}, want ${JSON.stringify(want.last)}`,
  );
  // A batch holds at most 16 items: fewer executions would mean results not computed here.
  check(
    seen.executions >= Math.ceil(tab.n / 16),
    `${where}: its items ran in ${seen.executions} executions, fewer than n/16`,
  );
  return seen;
}

function jobOf(statsJson, id) {
  return statsJson.recent_jobs.find((j) => j.id === id);
}

// --- the scenarios -------------------------------------------------------------

async function threeTabsAtOnce(browser, server, screenshotPath) {
  const context = await browser.newContext({ viewport: { width: 640, height: 620 } });
  const counts = [400, 250, 130];
  const tabs = [];
  for (const n of counts) tabs.push(await openTab(context, server, n));

  await Promise.all(tabs.map((tab) => tab.page.click("#start")));
  // Mid-run, all three move at once (an image only: how far each got is timing).
  await tabs[2].page.waitForFunction(() => Number(document.getElementById("done").textContent) >= 32, null, {
    timeout: jobTimeout,
    polling: 50,
  });
  await saveScreenshot(context, tabs, screenshotPath.replace(/\.png$/, "") + "-running.png");
  for (const [k, tab] of tabs.entries()) await waitUntilEnded(tab, `tab ${k + 1}`);

  const seen = [];
  for (const [k, tab] of tabs.entries()) seen.push(await checkTab(tab, `tab ${k + 1}`));
  check(new Set(seen.map((s) => s.job)).size === tabs.length, "two tabs show the same job id");

  const after = await statsUntil(server, (s) => s.jobs.open === 0, "every job closed");
  check(after.mixed_executions > 0, `no execution held items of more than one job: ${JSON.stringify(after)}`);
  for (const s of seen) {
    const job = jobOf(after, s.job);
    check(job && job.state === "finished", `/stats: job ${s.job} is ${job ? job.state : "missing"}`);
  }
  console.log(
    `three tabs: ${counts.join(" + ")} items, each finished with its own results; ` +
      `shared executions per tab ${seen.map((s) => s.shared).join(", ")}; ` +
      `/stats: ${after.executions} executions, ${after.mixed_executions} mixed, ` +
      `up to ${after.max_jobs_in_execution} jobs in one`,
  );

  await checkMetrics(server, after.executions);
  await saveScreenshot(context, tabs, screenshotPath);
  await context.close();
}

// GET /metrics: Prometheus text that counts the executions /stats saw, and
// that promtool (Debian's prometheus package) accepts, when it is installed.
async function checkMetrics(server, executions) {
  const response = await fetch(`${server.url}/metrics`, { signal: AbortSignal.timeout(10 * seconds) });
  check(response.ok, `GET /metrics answered ${response.status}`);
  const text = await response.text();
  let counted = 0;
  for (const m of text.matchAll(/^batch_serving_executions_total\{serving="live_progress",trigger="[a-z]+"\} (\d+)$/gm)) {
    counted += Number(m[1]);
  }
  check(counted === executions, `/metrics counts ${counted} executions, /stats ${executions}`);
  const promtool = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
  if (promtool.error && promtool.error.code === "ENOENT") {
    check(!process.env.CI, "promtool is not installed and CI is set: apt-get install prometheus");
    console.log("promtool not installed (apt-get install prometheus): /metrics not linted");
    return;
  }
  check(promtool.status === 0 && promtool.stdout + promtool.stderr === "",
    `promtool check metrics rejects /metrics: ${promtool.stdout}${promtool.stderr}`);
  console.log(`/metrics: ${counted} executions, promtool check metrics: clean`);
}

// The tabs side by side in one image.
async function saveScreenshot(context, tabs, path) {
  const shots = [];
  for (const tab of tabs) {
    // A tab in the background draws no new frames: its screenshot would wait for one.
    await tab.page.bringToFront();
    shots.push((await tab.page.screenshot()).toString("base64"));
  }
  const board = await context.newPage();
  await board.setViewportSize({ width: tabs.length * (640 + 12) + 12, height: 400 });
  await board.setContent(
    `<body style="margin:0;padding:12px;background:#c9ced6;display:flex;gap:12px;align-items:flex-start">` +
      shots
        .map((s) => `<img style="width:640px;box-shadow:0 1px 4px #0005" src="data:image/png;base64,${s}">`)
        .join("") +
      `</body>`,
  );
  mkdirSync(dirname(path), { recursive: true });
  await board.screenshot({ path, fullPage: true });
  await board.close();
  console.log(`screenshot: ${path}`);
}

async function oneTabClosedMidRun(browser, server) {
  const context = await browser.newContext({ viewport: { width: 640, height: 620 } });
  const keep = await openTab(context, server, 600);
  const leave = await openTab(context, server, 3000);

  await Promise.all([keep.page.click("#start"), leave.page.click("#start")]);
  // Live updates: the tab to be closed shows progress while its job runs.
  try {
    await leave.page.waitForFunction(() => Number(document.getElementById("done").textContent) >= 48, null, {
      timeout: jobTimeout,
      polling: 50,
    });
  } catch {
    throw new TestFailure(`the 3000-item tab showed no progress: ${JSON.stringify(await readTab(leave.page))}`);
  }
  const left = await readTab(leave.page);
  const kept = await readTab(keep.page);
  check(left.state === "running", `the tab to close is not running: '${left.status}'`);
  check(kept.state === "running", `the other tab is not running when the first is closed: '${kept.status}'`);
  await leave.page.close();

  await waitUntilEnded(keep, "the tab left open");
  await checkTab(keep, "the tab left open");

  const after = await statsUntil(
    server,
    (s) => s.jobs.open === 0 && jobOf(s, left.job)?.state === "abandoned",
    `job ${left.job} abandoned and every job closed`,
  );
  const abandoned = jobOf(after, left.job);
  check(
    abandoned.items_executed < abandoned.n,
    `the closed tab's job ran all its ${abandoned.n} items: its calls were not cancelled`,
  );
  console.log(
    `closed tab: job ${left.job} abandoned after ${left.done} of 3000 items shown ` +
      `(${abandoned.items_executed} executed, ${after.server.calls_cancelled} calls cancelled); ` +
      `the other tab finished its 600`,
  );

  // Still serving: the tab left open runs another job.
  keep.n = 64;
  await keep.page.fill("#count", "64");
  await keep.page.click("#start");
  await waitUntilEnded(keep, "a new job after the closed tab");
  await checkTab(keep, "a new job after the closed tab");
  await context.close();
}

async function stopServer(server) {
  server.child.kill("SIGTERM");
  let timer;
  const timeout = new Promise((r) => (timer = setTimeout(() => r(null), 15 * seconds)));
  const exited = await Promise.race([server.exit, timeout]);
  clearTimeout(timer);
  check(exited !== null, "the server did not exit within 15 s of SIGTERM");
  check(
    exited.code === 0,
    `the server did not stop cleanly on SIGTERM (${describeExit(exited)})`,
  );
  check(/^stopped /m.test(server.output), "the server exited without its 'stopped' line");
}

// On failure: what every open tab showed, for the log and as images.
async function recordFailure(browser, screenshotPath) {
  let k = 0;
  for (const context of browser.contexts()) {
    for (const page of context.pages()) {
      k += 1;
      const path = screenshotPath.replace(/\.png$/, "") + `-failure-${k}.png`;
      try {
        console.error(`  tab ${k}: ${JSON.stringify(await readTab(page))}`);
        mkdirSync(dirname(path), { recursive: true });
        await page.screenshot({ path, fullPage: true });
        console.error(`  tab ${k}: screenshot ${path}`);
      } catch {
        // A page that is not the live progress page, or is closing.
      }
    }
  }
}

async function main() {
  const started = Date.now();
  const { binary, screenshot } = parseArguments(process.argv.slice(2));
  const server = startServer(binary);
  let browser = null;
  try {
    await waitForListening(server);
    console.log(`server: ${server.url} (${binary})`);
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      args: ["--no-sandbox"],
      headless: true,
    });
    console.log(`browser: Chromium ${browser.version()}`);
    await threeTabsAtOnce(browser, server, screenshot);
    await oneTabClosedMidRun(browser, server);
    await browser.close();
    browser = null;
    await stopServer(server);
    console.log(`live_progress browser test: OK (${((Date.now() - started) / seconds).toFixed(1)} s)`);
  } catch (error) {
    const why = error instanceof TestFailure ? error.message : error.stack;
    console.error(`live_progress browser test: FAILED: ${why}`);
    if (browser) await recordFailure(browser, screenshot);
    console.error(`server output:\n${server.output.replace(/^/gm, "  | ")}`);
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (!server.exited) {
      server.child.kill("SIGKILL");
      await server.exit;
    }
  }
}

main().catch((error) => {
  console.error(`live_progress browser test: FAILED: ${error instanceof TestFailure ? error.message : error.stack}`);
  process.exitCode = 1;
});
