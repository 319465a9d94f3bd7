/** A member speaks only for itself in message fields (actors/senders.ts): pure checks. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { memberMismatch, reducerMismatch, senderNode, sliceMismatch } from "../../actors/senders.js";

test("the sender's node: from its address, or this node for a local tell that names none", () => {
  assert.equal(senderNode("b/j.trainer", "a"), "b");
  assert.equal(senderNode(undefined, "a"), "a");
  assert.equal(senderNode("no-slash", "a"), undefined);
});

test("a member's report counts only from its node; a reducer's acknowledgement only from r's node", () => {
  assert.equal(memberMismatch("b", "b/$ask", "a"), undefined);
  assert.equal(memberMismatch("b", "c/$anon", "a"), "not-its-member");
  assert.equal(memberMismatch("a", undefined, "a"), undefined, "a local trainer on the coordinator's node");
  assert.equal(memberMismatch("b", undefined, "a"), "not-its-member");
  const reducers = ["a/j.reducer-0", "b/j.reducer-1"];
  assert.equal(reducerMismatch(1, "b/$anon", reducers, "a"), undefined);
  assert.equal(reducerMismatch(1, "a/j.reducer-0", reducers, "a"), "not-its-reducer");
  assert.equal(reducerMismatch(0, undefined, reducers, "a"), undefined, "local reducer 0");
  assert.equal(reducerMismatch(2, "b/$anon", reducers, "a"), "unknown-reducer");
});

test("a parameter slice counts only from its reducer's node, as the last prepare or step placed it", () => {
  const nodes = ["a", "b"];
  assert.equal(sliceMismatch(1, "b/$topic", nodes), undefined);
  assert.equal(sliceMismatch(1, "a/$topic", nodes), "not-its-reducer");
  assert.equal(sliceMismatch(2, "b/$topic", nodes), "not-its-reducer");
  assert.equal(sliceMismatch(0, undefined, nodes), "not-its-reducer");
  assert.equal(sliceMismatch(0, "a/$topic", []), "not-its-reducer", "before any prepare");
});
