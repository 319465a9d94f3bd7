/** Errors of the cluster layer; callers test with `instanceof`. */

/** Another live process already runs a node with this id in this cluster. */
export class NodeIdInUseError extends Error {
  override name = "NodeIdInUseError";
  constructor(
    readonly nodeId: string,
    readonly cluster: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`node id "${nodeId}" is in use in cluster "${cluster}": ${detail}`, options);
  }
}
