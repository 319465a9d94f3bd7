/**
 * `predictScaling2`: records/s of `flock predict --nats` with two daemons against one, on the
 * flowers model (weights drawn from a seeded generator; throughput does not depend on them) and
 * the flowers records repeated to the plan's size. The rate counts from the first range written
 * to the last, so spawning predictors and loading the model are not in it.
 * @module
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveJobSpec, type ClusterHandle } from "../../actors/api.js";
import { selectBackend } from "../../actors/compute/backend.js";
import { loadDataset } from "../../actors/compute/datasets.js";
import { buildModel } from "../../actors/compute/models.js";
import { exportModel } from "../../actors/job/model-export.js";
import { predict, prepare } from "../../actors/predictor/index.js";
import { connectCluster } from "../../actors/remote.js";
import { Daemons } from "./daemons.js";

/** Sizes of the prediction measurement. */
export interface PredictPlan {
  /** Records predicted per run (the flowers file repeated). */
  records: number;
  rangeSize: number;
}

/** What it found. */
export interface PredictBenchResult {
  records: number;
  rangeSize: number;
  oneDaemonRecordsPerSec: number;
  twoDaemonRecordsPerSec: number;
  predictScaling2: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Writes the flowers model (seeded weights) and an input of `records` records to `dir`. */
async function fixture(dir: string, records: number): Promise<{ model: string; input: string }> {
  const spec = resolveJobSpec(here("../../../examples/flowers.json"));
  await selectBackend("cpu");
  const built = await buildModel(spec.model, await loadDataset(spec.dataset, spec.seed));
  let seed = 12345;
  const params = Float32Array.from({ length: built.paramCount }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 0.6;
  });
  built.model.dispose();
  const model = join(dir, "model");
  await exportModel(spec, { v: 1, job: "bench", step: 0, loss: 0, accuracy: 0, params, sha256: "" }, model);
  const lines = readFileSync(here("../../../examples/data/flowers.csv"), "utf8").trimEnd().split("\n");
  const rows = lines.slice(1);
  const input = join(dir, "input.csv");
  writeFileSync(
    input,
    [lines[0], ...Array.from({ length: records }, (_, i) => rows[i % rows.length])].join("\n") + "\n",
  );
  return { model, input };
}

/** Records/s of one distributed run, from the first range written to the last. */
async function rate(
  cluster: ClusterHandle,
  model: string,
  input: string,
  plan: PredictPlan,
): Promise<number> {
  const prepared = await prepare({ model, input });
  let first: { at: number; done: number } | undefined;
  let last = { at: 0, done: 0 };
  await predict({
    model,
    input,
    cluster,
    prepared,
    write: () => undefined,
    run: { rangeSize: plan.rangeSize },
    onProgress: (p) => {
      const at = performance.now();
      first ??= { at, done: p.done };
      last = { at, done: p.done };
    },
  });
  if (!first || last.at <= first.at) throw new Error("predict bench: too few ranges to time (raise records)");
  return ((last.done - first.done) / (last.at - first.at)) * 1000;
}

async function waitForNodes(cluster: ClusterHandle, n: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (cluster.aliveNodes().length < n) {
    if (performance.now() > deadline) throw new Error(`predict bench: ${n} daemon(s) not alive within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Measures `predictScaling2` against a nats-server at `url` with daemons of its own. */
export async function measurePredict(
  url: string,
  cluster: string,
  plan: PredictPlan,
  flockBin: string,
  say: (line: string) => void,
): Promise<PredictBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "flock-bench-predict-"));
  const daemons = new Daemons(flockBin, url, cluster);
  let handle: ClusterHandle | undefined;
  try {
    const { model, input } = await fixture(dir, plan.records);
    handle = await connectCluster({ servers: url, cluster });
    await daemons.start("p1");
    await waitForNodes(handle, 1);
    say(`predict: ${plan.records} records on 1 daemon`);
    const one = await rate(handle, model, input, plan);
    await daemons.start("p2");
    await waitForNodes(handle, 2);
    say(`predict: ${plan.records} records on 2 daemons`);
    const two = await rate(handle, model, input, plan);
    return {
      records: plan.records,
      rangeSize: plan.rangeSize,
      oneDaemonRecordsPerSec: one,
      twoDaemonRecordsPerSec: two,
      predictScaling2: two / one,
    };
  } finally {
    await handle?.close();
    await daemons.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
