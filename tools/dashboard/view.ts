/**
 * The dashboard's cluster view as a pure fold: `state' = reduce(state, event)`. Heartbeats, the
 * membership view, job records and live job events in; the page's state out, bounded by
 * {@link DashLimits}. No clock of its own (every event carries `at`), no I/O: the source around it
 * (`source.ts`) subscribes and reads, the server (`server.ts`) pushes the state to browsers.
 * @module
 */
import { applyJobEvent, applyRecords, markDeaths, setReport, setStoredResult } from "./jobs.js";
import { observeHeartbeat, tickNodes } from "./nodes.js";
import { DEFAULT_LIMITS, type DashEvent, type DashLimits, type DashState } from "./types.js";

/** The view before anything was heard. */
export function initialState(cluster: string, at = 0): DashState {
  return { cluster, epoch: 0, monitor: null, nodes: [], jobs: [], refused: 0, version: 0, now: at };
}

/** Folds one event; returns `state` itself when nothing changed (so the server pushes nothing). */
export function reduce(state: DashState, event: DashEvent, limits: DashLimits = DEFAULT_LIMITS): DashState {
  const next = apply(state, event, limits);
  return next === state ? state : { ...next, version: state.version + 1, now: event.at };
}

function apply(s: DashState, e: DashEvent, limits: DashLimits): DashState {
  switch (e.type) {
    case "heartbeat":
      return { ...s, nodes: observeHeartbeat(s.nodes, e.hb, e.at, limits) };
    case "tick": {
      const { nodes, died } = tickNodes(s.nodes, e.at, limits);
      if (died.length === 0 && nodes.every((n, i) => n === s.nodes[i]) && nodes.length === s.nodes.length)
        return s;
      return { ...s, nodes, jobs: markDeaths(s.jobs, died, e.at, limits) };
    }
    case "view":
      if (e.view.epoch === s.epoch && e.view.monitor === s.monitor) return s;
      return { ...s, epoch: e.view.epoch, monitor: e.view.monitor.slice(0, 200) };
    case "jobs": {
      const jobs = applyRecords(s.jobs, e.records, e.at, limits);
      return jobs.every((j, i) => j === s.jobs[i]) && jobs.length === s.jobs.length ? s : { ...s, jobs };
    }
    case "job-event":
      return { ...s, jobs: applyJobEvent(s.jobs, e.event, e.at, limits) };
    case "report": {
      const jobs = setReport(s.jobs, e.job, e.path);
      return jobs.every((j, i) => j === s.jobs[i]) ? s : { ...s, jobs };
    }
    case "stored-result": {
      const jobs = setStoredResult(s.jobs, e.job, e.result);
      return jobs.every((j, i) => j === s.jobs[i]) ? s : { ...s, jobs };
    }
    case "refused":
      return { ...s, refused: s.refused + 1 };
  }
}
