/** A node's slots: how many actors that need a compute slot (trainers) it hosts at once. */
export interface Slots {
  readonly total: number;
  /** Slots not reserved. */
  free(): number;
  /** Reserves `n` slots (default 1) for `owner`; false, reserving nothing, when not enough are free. */
  reserve(owner: string, n?: number): boolean;
  /** Frees every slot `owner` holds. */
  release(owner: string): void;
}

/** The slot ledger of one node. */
export class SlotLedger implements Slots {
  private readonly held = new Map<string, number>();

  constructor(readonly total: number) {
    if (!Number.isInteger(total) || total < 0)
      throw new RangeError(`slots must be a non-negative integer, got ${total}`);
  }

  free(): number {
    let used = 0;
    for (const n of this.held.values()) used += n;
    return this.total - used;
  }

  reserve(owner: string, n = 1): boolean {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`reserve needs a positive integer count, got ${n}`);
    if (this.free() < n) return false;
    this.held.set(owner, (this.held.get(owner) ?? 0) + n);
    return true;
  }

  release(owner: string): void {
    this.held.delete(owner);
  }

  /** Frees everything (the owners' actors were stopped). */
  reset(): void {
    this.held.clear();
  }
}
