// The page live_progress serves at GET /: one job per Start, its events read
// with EventSource from GET /jobs?n=N. Everything it runs is here (no CDN).
// tests/browser/live_progress.mjs reads the elements by id; body[data-state]
// is idle, running, finished or failed.
#pragma once

#include <string_view>

inline constexpr std::string_view page_html = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>batch_serving: live progress</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 40rem; margin: 1.5rem auto;
         padding: 0 1rem; color: #1d2330; }
  h1 { font-size: 1.35rem; margin-bottom: .3rem; }
  .lead { color: #4a5568; margin-top: 0; }
  form { display: flex; gap: .6rem; align-items: center; margin: 1rem 0; }
  input { width: 7rem; font: inherit; padding: .25rem .4rem; }
  button { font: inherit; padding: .3rem 1.1rem; }
  #bar { width: 100%; height: 1.3rem; }
  .line { display: flex; justify-content: space-between; margin: .2rem 0 .8rem; }
  #percent { font-weight: 600; font-variant-numeric: tabular-nums; }
  body[data-state="finished"] #status { color: #1f7a3a; }
  body[data-state="failed"] #status { color: #b3261e; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1.2rem; margin: 0; }
  dt { color: #4a5568; }
  dd { margin: 0; font-variant-numeric: tabular-nums; }
  #last { font-family: ui-monospace, monospace; margin: .3rem 0; }
  footer { margin-top: 1.2rem; color: #4a5568; font-size: .9rem; }
</style>
</head>
<body data-state="idle">
<h1>Live progress</h1>
<p class="lead">Each Start is a job of its own, sent to one batch_serving streaming server that
every tab shares. Open several tabs and start them together: their items share executions,
and each tab sees only its own progress and results.</p>
<form id="form">
  <label for="count">Items</label>
  <input id="count" type="number" min="1" max="100000" value="300" required>
  <button id="start" type="submit">Start</button>
</form>
<progress id="bar" max="1" value="0"></progress>
<div class="line"><span id="percent">0 %</span><span id="status">idle</span></div>
<dl>
  <dt>Job</dt><dd id="job">-</dd>
  <dt>Items done (progress hook)</dt><dd><span id="done">0</span> / <span id="of">0</span></dd>
  <dt>Work units (sum of hook entries)</dt><dd id="total">0</dd>
  <dt>Results received</dt><dd id="results">0</dd>
  <dt>Checksum: sum of (i+1)&middot;f(i) mod 10<sup>9</sup>+7</dt><dd id="checksum">0</dd>
  <dt>Executions / shared with other jobs</dt>
  <dd><span id="executions">0</span> / <span id="shared">0</span></dd>
  <dt>Unexpected results</dt><dd id="unexpected">0</dd>
</dl>
<p>Last results (highest i so far), i: f(i) = (i&middot;i + 1) mod 1000003</p>
<ol id="last"></ol>
<footer><a href="/stats" target="_blank">/stats</a>: executions, and how many held
items of more than one job.</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const modulus = 1000000007;
const shownResults = 5;
let source = null;

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
}

function run(n) {
  if (source) source.close();
  let jobId = null;
  let done = 0, total = 0, results = 0, checksum = 0, unexpected = 0;
  const seen = new Uint8Array(n);
  const executions = new Set(), shared = new Set();
  let last = [];
  $("bar").max = n;
  $("bar").value = 0;
  $("of").textContent = n;
  for (const id of ["done", "total", "results", "checksum", "executions", "shared",
                    "unexpected"]) {
    $(id).textContent = 0;
  }
  $("percent").textContent = "0 %";
  $("job").textContent = "-";
  $("last").replaceChildren();
  $("start").disabled = true;
  setState("running", "starting");

  const stream = new EventSource("/jobs?n=" + n);
  source = stream;
  let ended = false;
  const end = (state, text) => {
    ended = true;
    stream.close();
    $("start").disabled = false;
    setState(state, text);
  };

  stream.addEventListener("job", (e) => {
    jobId = JSON.parse(e.data).id;
    $("job").textContent = jobId;
    setState("running", "running");
  });
  stream.addEventListener("progress", (e) => {
    for (const [, units, jobs, execution] of JSON.parse(e.data).entries) {
      done += 1;
      total += units;
      executions.add(execution);
      if (jobs > 1) shared.add(execution);
    }
    $("done").textContent = done;
    $("total").textContent = total;
    $("executions").textContent = executions.size;
    $("shared").textContent = shared.size;
    $("bar").value = done;
    $("percent").textContent = Math.floor(done * 100 / n) + " %";
  });
  stream.addEventListener("results", (e) => {
    for (const [job, i, value] of JSON.parse(e.data).results) {
      results += 1;
      if (job !== jobId || !(i >= 0 && i < n) || seen[i]) {
        unexpected += 1;
        continue;
      }
      seen[i] = 1;
      checksum = (checksum + (i + 1) * value) % modulus;
      last.push([i, value]);
    }
    // The highest indices so far: a job's calls may finish in any order.
    last = last.sort((a, b) => a[0] - b[0]).slice(-shownResults);
    $("results").textContent = results;
    $("checksum").textContent = checksum;
    $("unexpected").textContent = unexpected;
    $("last").replaceChildren(...last.map(([i, value]) => {
      const li = document.createElement("li");
      li.textContent = i + ": " + value;
      return li;
    }));
  });
  stream.addEventListener("done", () => end("finished", "finished"));
  stream.addEventListener("failed", (e) => end("failed", "failed: " + JSON.parse(e.data).error));
  // A dropped connection would make EventSource reconnect, and so start a second job.
  stream.onerror = () => { if (!ended) end("failed", "connection lost"); };
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const n = Number($("count").value);
  if (!Number.isInteger(n) || n < 1 || n > 100000) {
    setState("failed", "enter 1 to 100000 items");
    return;
  }
  run(n);
});
</script>
</body>
</html>
)html";
