/** Registers the actor kinds every flock node hosts. */
export function setupNode(_node: unknown): void {
  // filled in by the training layer
}
