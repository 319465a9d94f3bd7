import { InvalidAddressError } from "./errors.js";

/** A parsed actor address: `nodeId/path`, path segments separated by `/`. */
export interface Address {
  node: string;
  path: string;
}

const SEGMENT = /^[A-Za-z0-9_$.:-]+$/;

/** Whether a name may be one address segment (no `/`, no wildcards or spaces). */
export function isValidSegment(name: string): boolean {
  return name.length > 0 && name.length <= 128 && SEGMENT.test(name);
}

/** Splits `nodeId/path`; throws {@link InvalidAddressError}. */
export function parseAddress(address: string): Address {
  const slash = address.indexOf("/");
  if (slash <= 0 || slash === address.length - 1) throw new InvalidAddressError(address);
  return { node: address.slice(0, slash), path: address.slice(slash + 1) };
}

/** The node of an address `node/path`, or undefined when there is none (never throws). */
export function addressNode(address: string | undefined): string | undefined {
  const slash = address?.indexOf("/") ?? -1;
  return address && slash > 0 ? address.slice(0, slash) : undefined;
}

/** Joins a node id and a path. */
export function formatAddress(node: string, path: string): string {
  return `${node}/${path}`;
}
