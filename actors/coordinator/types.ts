export type { ReducerMap } from "../trainer/protocol.js";
export type { StepDone } from "./protocol.js";
