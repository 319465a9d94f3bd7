import type { Cell } from "./cell.js";

/**
 * The local actors of one system by path. A cell stays in the table after it is marked stopped,
 * until nact's asynchronous stop unregisters it: callers tell "stopped" from "no such actor" by it.
 */
export class CellTable {
  private readonly cells = new Map<string, Cell>();

  /** The cell at a path, live or marked stopped. */
  get(path: string): Cell | undefined {
    return this.cells.get(path);
  }

  /** The cell at a path when it is live. */
  live(path: string): Cell | undefined {
    const cell = this.cells.get(path);
    return cell && !cell.stopped ? cell : undefined;
  }

  /** Paths of the live cells. */
  paths(): string[] {
    return [...this.cells.values()].filter((c) => !c.stopped).map((c) => c.path);
  }

  /** Adds a cell at its path (replacing a stopped one there). */
  add(cell: Cell): void {
    this.cells.set(cell.path, cell);
  }

  /** Removes a cell, unless another one took its path since. */
  remove(cell: Cell): void {
    if (this.cells.get(cell.path) === cell) this.cells.delete(cell.path);
  }

  /** Marks a path (or, ending in `/`, every path below it) stopped at once, before nact's asynchronous stop completes. */
  markStopped(path: string): void {
    if (path.endsWith("/")) {
      for (const [p, c] of this.cells) if (p.startsWith(path)) c.stopped = true;
      return;
    }
    const cell = this.cells.get(path);
    if (cell) cell.stopped = true;
    this.markStopped(`${path}/`);
  }

  /** Terminates every cell below `path`, deepest first. */
  stopDescendants(path: string): void {
    const prefix = `${path}/`;
    for (const cell of byDepth([...this.cells.values()].filter((c) => c.path.startsWith(prefix))))
      cell.terminate();
  }

  /** Marks every cell stopped, then terminates them all, deepest first (the system stops). */
  stopAll(): void {
    for (const cell of this.cells.values()) cell.stopped = true;
    for (const cell of byDepth([...this.cells.values()])) cell.terminate();
  }
}

/** Cells deepest first, so children stop before their parents. */
function byDepth(cells: Cell[]): Cell[] {
  const depth = (c: Cell) => c.path.split("/").length;
  return cells.sort((a, b) => depth(b) - depth(a));
}
