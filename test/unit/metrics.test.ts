/**
 * flock's metrics on prom-client: names that follow the Prometheus conventions (checked purely, on
 * the registry's list and at registration), one registry per node, the process defaults once.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Metrics, metricNameProblem, metricNameProblems, typesInExposition } from "../../runtime/metrics.js";
import { LocalInfoReporter } from "../../runtime/daemon/local-info.js";
import { SlotLedger } from "../../runtime/daemon/slots.js";
import { EventLoopLag } from "../../runtime/metrics.js";
import { exercisedMetrics, peer } from "./metrics-exercise.js";

test("the naming check: _total only on counters, base units, snake_case", () => {
  assert.equal(metricNameProblem("flock_bad_input_total", "counter"), undefined);
  assert.equal(metricNameProblem("flock_event_loop_lag_seconds", "gauge"), undefined);
  assert.equal(metricNameProblem("flock_trainer_grad_bytes_total", "counter"), undefined);
  assert.equal(metricNameProblem("flock_trainer_step_seconds", "histogram"), undefined);
  // The three promtool reported before prom-client.
  assert.match(metricNameProblem("flock_event_loop_lag_ms", "gauge") ?? "", /"ms" is no base unit/);
  assert.match(metricNameProblem("flock_heartbeat_lag_ms", "gauge") ?? "", /"ms" is no base unit/);
  assert.match(metricNameProblem("flock_slots_total", "gauge") ?? "", /only counters end in _total/);
  assert.match(metricNameProblem("flock_steps", "counter") ?? "", /ends in _total/);
  assert.match(metricNameProblem("flock_step_time", "histogram") ?? "", /ends in its unit/);
  assert.match(metricNameProblem("flock_stepTime_seconds", "gauge") ?? "", /snake_case/);
  assert.match(metricNameProblem("flock_payload_kb", "gauge") ?? "", /no base unit/);
  assert.deepEqual(
    metricNameProblems([
      { name: "a_total", type: "gauge" },
      { name: "b_total", type: "counter" },
    ]),
    ["a_total: only counters end in _total (this is a gauge)"],
  );
});

test("every series a node and its process export follows the conventions", async () => {
  const m = exercisedMetrics();
  const list = typesInExposition(await m.render());
  assert.deepEqual(
    list.filter((x) => x.name.startsWith("flock_")),
    m.list(),
    "the exposition declares the node's series, with their types",
  );
  assert.deepEqual(metricNameProblems(list), []);
  const names = new Set(list.map((x) => x.name));
  for (const renamed of ["flock_slots", "flock_event_loop_lag_seconds", "flock_heartbeat_age_seconds"])
    assert.ok(names.has(renamed), renamed);
  for (const old of ["flock_slots_total", "flock_event_loop_lag_ms", "flock_heartbeat_age_ms"])
    assert.ok(!names.has(old), old);
  assert.ok(names.has("process_cpu_seconds_total") && names.has("nodejs_eventloop_lag_seconds"), "defaults");
  assert.ok(!names.has("nodejs_active_handles_total"), "prom-client's _total gauge is left out");
});

test("a misnamed metric is refused where it is first used", () => {
  const m = new Metrics({ node: "n1" });
  assert.throws(() => m.set("flock_slots_total", 1), /only counters end in _total/);
  assert.throws(() => m.inc("flock_steps"), /ends in _total/);
  assert.throws(() => m.observe("flock_lag_ms", 1), /no base unit/);
  assert.throws(() => m.set("flock_age_seconds", 1, { node: "n2" }), /label "node" is this node's id/);
  m.inc("flock_x_total");
  assert.throws(() => m.set("flock_x_total", 1), /is a counter, not a gauge/);
});

test("two nodes in one process: separate registries, each series labelled with its node", async () => {
  const a = new Metrics({ node: "a" });
  const b = new Metrics({ node: "b" });
  a.inc("flock_bad_input_total", { reason: "schema" }, 2, "bad input");
  b.inc("flock_bad_input_total", { reason: "schema" }, 5, "bad input");
  assert.equal(a.get("flock_bad_input_total", { reason: "schema" }), 2);
  assert.equal(b.total("flock_bad_input_total"), 5);
  const text = await a.render();
  assert.match(text, /^flock_bad_input_total\{reason="schema",node="a"\} 2$/m);
  assert.doesNotMatch(text, /node="b"/);
  assert.equal((text.match(/^# TYPE process_cpu_seconds_total counter$/gm) ?? []).length, 1);
  assert.equal(a.contentType, "text/plain; version=0.0.4; charset=utf-8");
});

test("histograms: observations in seconds, counted and summed; a declared series exports before its first value", async () => {
  const m = new Metrics({ node: "n" });
  m.declare("flock_messages_in_total", "counter", "in");
  m.declare("flock_job_recovery_seconds", "histogram", "recovery", ["kind"]);
  let text = await m.render();
  assert.match(text, /^flock_messages_in_total\{node="n"\} 0$/m);
  assert.match(text, /^# TYPE flock_job_recovery_seconds histogram$/m);
  m.observe("flock_job_recovery_seconds", 0.3, { kind: "death" });
  m.observe("flock_job_recovery_seconds", 1.2, { kind: "death" });
  assert.equal(m.count("flock_job_recovery_seconds", { kind: "death" }), 2);
  assert.equal(m.get("flock_job_recovery_seconds", { kind: "death" }), 1.5);
  text = await m.render();
  // prom-client orders a histogram's labels le, defaults, own: look for each, in any order.
  const series = (name: string, labels: string[], value: number) =>
    new RegExp(`^${name}\\{${labels.map((l) => `(?=[^}]*${l})`).join("")}[^}]*\\} ${value}$`, "m");
  assert.match(
    text,
    series("flock_job_recovery_seconds_bucket", ['le="0.5"', 'kind="death"', 'node="n"'], 1),
  );
  assert.match(text, series("flock_job_recovery_seconds_bucket", ['le="2.5"', 'kind="death"'], 2));
  assert.match(text, series("flock_job_recovery_seconds_count", ['kind="death"', 'node="n"'], 2));
});

test("heartbeat age: seconds per live peer; a peer that died stops being exported", async () => {
  const m = new Metrics({ node: "n1" });
  const reporter = new LocalInfoReporter(m);
  const lag = new EventLoopLag();
  const src = (peers: ReturnType<typeof peer>[]) => ({
    nodeId: "n1",
    slots: new SlotLedger(1),
    device: "cpu",
    backend: undefined,
    lag,
    system: undefined,
    peers: () => peers,
  });
  try {
    reporter.read(src([peer("n2", "alive"), peer("n3", "alive")]));
    const age = m.get("flock_heartbeat_age_seconds", { peer: "n2" });
    assert.ok(age >= 0.2 && age < 5, `age ${age} s`);
    reporter.read(src([peer("n2", "alive"), peer("n3", "dead")]));
    assert.match(await m.render(), /flock_heartbeat_age_seconds\{peer="n2",node="n1"\}/);
    assert.doesNotMatch(await m.render(), /peer="n3"/);
    assert.equal(m.get("flock_slots"), 1);
  } finally {
    lag.stop();
  }
});
