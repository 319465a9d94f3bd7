import assert from "node:assert/strict";
import { test } from "node:test";
import { LedgerError, ShardLedger, type BatchRef } from "../../actors/ledger/ledger.js";
import { addRange, subtractRange, takeFront } from "../../actors/ledger/intervals.js";

test("interval helpers merge, subtract and take", () => {
  assert.deepEqual(addRange(addRange([], [5, 10]), [0, 5]), [[0, 10]]);
  assert.deepEqual(
    addRange(
      [
        [0, 2],
        [8, 9],
      ],
      [4, 6],
    ),
    [
      [0, 2],
      [4, 6],
      [8, 9],
    ],
  );
  assert.deepEqual(subtractRange([[0, 10]], [3, 5]), {
    rest: [
      [0, 3],
      [5, 10],
    ],
    removed: 2,
  });
  assert.deepEqual(
    takeFront(
      [
        [0, 3],
        [5, 10],
      ],
      5,
    ),
    {
      taken: [
        [0, 3],
        [5, 7],
      ],
      rest: [[7, 10]],
    },
  );
});

test("a fault-free run counts every sample once per epoch", () => {
  const ledger = ShardLedger.create(100, 2);
  let guard = 0;
  while (!ledger.finished && guard++ < 1000) {
    const lease = ledger.lease("a", 16)!;
    const batches: BatchRef[] = lease.ranges.map(([start, end]) => ({
      lease: lease.id,
      epoch: lease.epoch,
      start,
      end,
    }));
    ledger.commit(batches);
  }
  assert.ok(ledger.finished);
  assert.deepEqual(ledger.samplesPerEpoch(), [100, 100]);
  assert.ok(ledger.audit().exact);
});

test("revoked and returned positions are leased again; late commits are refused; seeded faults keep exactly-once", () => {
  let seed = 42;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const ledger = ShardLedger.create(257, 3);
  const holders = ["a", "b", "c"];
  let guard = 0;
  while (!ledger.finished && guard++ < 10_000) {
    const step: BatchRef[] = [];
    for (const h of holders) {
      const lease = ledger.lease(h, 1 + Math.floor(rand() * 20));
      const first = lease?.ranges[0];
      if (!lease || !first) continue;
      const [start, end] = first;
      step.push({ lease: lease.id, epoch: lease.epoch, start, end });
    }
    const r = rand();
    if (r < 0.1 && step.length > 0) {
      ledger.revoke(holders[Math.floor(rand() * 3)]!); // a holder died: its leases go back
      const live = step.filter((b) => {
        try {
          ledger.check(b);
          return true;
        } catch (e) {
          assert.ok(e instanceof LedgerError);
          return false;
        }
      });
      ledger.commit(live);
    } else if (r < 0.2 && step.length > 0) {
      const left = step.pop()!; // a straggler left out of the step
      ledger.returnBatch(left);
      ledger.commit(step);
      assert.throws(() => ledger.commit([left]), LedgerError);
    } else {
      ledger.commit(step);
    }
  }
  assert.ok(ledger.finished, `finished after ${guard} rounds`);
  assert.deepEqual(ledger.samplesPerEpoch(), [257, 257, 257]);
  const audit = ledger.audit();
  assert.ok(audit.exact, JSON.stringify(audit));
});

test("a snapshot restores to the same state", () => {
  const ledger = ShardLedger.create(50, 1);
  const lease = ledger.lease("a", 10)!;
  ledger.commit([{ lease: lease.id, epoch: 0, start: 0, end: 5 }]);
  const copy = ShardLedger.restore(structuredClone(ledger.snapshot()));
  assert.deepEqual(copy.outstanding(), { a: 5 });
  assert.equal(copy.committedThisEpoch, 5);
  copy.revoke("a");
  assert.deepEqual(ledger.outstanding(), { a: 5 }, "the original is untouched");
});

test("a rolled-back ledger never reuses a lease id, and a batch counts only from its lease's holder", () => {
  const live = ShardLedger.create(100, 1);
  const saved = live.snapshot();
  const a = live.lease("a", 10);
  const b = live.lease("b", 10);
  assert.ok(a && b);
  // Roll back to the snapshot, as a restore does, going on from the live ledger's ids.
  const restored = ShardLedger.restore(saved, live.leaseSeq);
  const again = restored.lease("b", 20);
  assert.ok(again);
  assert.ok(![a.id, b.id].includes(again.id), `${again.id} is new`);
  // A late report of the abandoned timeline's lease a finds nothing to return.
  const stale: BatchRef = { lease: a.id, epoch: 0, start: a.ranges[0]![0], end: a.ranges[0]![1] };
  restored.returnBatch(stale, "a");
  // Another holder cannot return or count b's batch.
  const bBatch: BatchRef = {
    lease: again.id,
    epoch: 0,
    start: again.ranges[0]![0],
    end: again.ranges[0]![0] + 5,
  };
  restored.returnBatch(bBatch, "a");
  assert.throws(() => restored.check(bBatch, "a"), LedgerError);
  restored.check(bBatch, "b");
  restored.commit([bBatch]);
  assert.equal(restored.committedThisEpoch, 5);
});
