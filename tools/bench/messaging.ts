import { Packr } from "msgpackr";
import type { NatsConnection } from "nats";
import { ActorSystem } from "../../runtime/actor/index.js";
import { NatsTransport } from "../../runtime/transport/index.js";
import { BenchChild } from "./child.js";
import {
  BenchMessage,
  PEER_ECHO,
  PEER_SINK,
  benchSubjects,
  decodeCount,
  type BenchMessage as Msg,
} from "./protocol.js";
import { median } from "./stats.js";

/** Sizes of the messaging measurements. */
export interface MessagingPlan {
  /** Messages per tell round. */
  tellMessages: number;
  /** Rounds of each (raw, flock), interleaved; the median round counts. */
  tellRounds: number;
  /** Messages in flight at most (credit window) so no receiver is ever a slow consumer. */
  window: number;
  /** Request/reply round trips per ask round. */
  askRoundTrips: number;
  askRounds: number;
}

/** What the messaging measurements found. */
export interface MessagingResult {
  rawTellPerSec: number;
  flockTellPerSec: number;
  tellRatio: number;
  rawAskUs: number;
  flockAskUs: number;
  askLatencyRatio: number;
  payloadBytes: number;
}

/**
 * Tell throughput and ask latency, flock against raw NATS on the same server with the same
 * payload. The receiver is a separate process (the peer), so the sender, the server and the
 * receiver each get their own event loop, as between two flock nodes.
 */
export async function measureMessaging(
  url: string,
  cluster: string,
  plan: MessagingPlan,
  peerScript: string,
): Promise<MessagingResult> {
  const run = `r${process.pid}`;
  const subjects = benchSubjects(run);
  // FLOCK_BENCH_PEER_ARGS passes node flags to the peer, e.g. "--cpu-prof --cpu-prof-dir=prof".
  const peerArgs = (process.env.FLOCK_BENCH_PEER_ARGS ?? "").split(" ").filter(Boolean);
  const peer = BenchChild.node("bench-peer", peerScript, [url, cluster, run], peerArgs);
  const control = await NatsTransport.connect({ servers: url, name: "bench-raw" });
  const transport = await NatsTransport.connect({ servers: url, name: "bench-flock" });
  const system = await ActorSystem.start({ nodeId: "bench-main", transport, cluster, ownsTransport: true });
  try {
    system.registry.register(BenchMessage);
    await peer.waitForLine(/bench-peer ready/, 20_000);
    const nc = control.connection;
    const packr = new Packr({ useRecords: false });
    const payload = packr.pack({ type: "bench.ping", seq: 123456 });
    const rawAcks = new AckCounter(nc, subjects.rawAck);
    const flockAcks = new AckCounter(nc, subjects.flockAck);
    await nc.flush();
    const sink = system.ref<Msg>(PEER_SINK);
    const rawSend = () => nc.publish(subjects.rawData, payload);
    let seq = 0;
    const flockSend = () => sink.tell({ type: "bench.ping", seq: seq++ });

    // Warm-up (JIT, connections), then interleaved rounds.
    await pump(rawSend, rawAcks, Math.min(20_000, plan.tellMessages), plan.window);
    await pump(flockSend, flockAcks, Math.min(20_000, plan.tellMessages), plan.window);
    const raw: number[] = [];
    const flock: number[] = [];
    for (let i = 0; i < plan.tellRounds; i++) {
      raw.push(await pump(rawSend, rawAcks, plan.tellMessages, plan.window));
      flock.push(await pump(flockSend, flockAcks, plan.tellMessages, plan.window));
    }
    rawAcks.close();
    flockAcks.close();

    const echo = system.ref<Msg>(PEER_ECHO);
    const rawAsk = () => nc.request(subjects.rawEcho, payload, { timeout: 2000 });
    const flockAsk = () => echo.ask({ type: "bench.ping", seq: 1 }, { timeoutMs: 2000 });
    await roundTrips(rawAsk, 200);
    await roundTrips(flockAsk, 200);
    const rawRtt: number[] = [];
    const flockRtt: number[] = [];
    for (let i = 0; i < plan.askRounds; i++) {
      rawRtt.push(await roundTrips(rawAsk, plan.askRoundTrips));
      flockRtt.push(await roundTrips(flockAsk, plan.askRoundTrips));
    }
    const rawTellPerSec = median(raw);
    const flockTellPerSec = median(flock);
    const rawAskUs = median(rawRtt);
    const flockAskUs = median(flockRtt);
    return {
      rawTellPerSec,
      flockTellPerSec,
      tellRatio: flockTellPerSec / rawTellPerSec,
      rawAskUs,
      flockAskUs,
      askLatencyRatio: rawAskUs / flockAskUs,
      payloadBytes: payload.length,
    };
  } finally {
    await system.stop().catch(() => undefined);
    await control.close().catch(() => undefined);
    await peer.stop();
  }
}

/** Follows the running count a sink acknowledges. */
class AckCounter {
  count = 0;
  private wake: (() => void) | undefined;
  private readonly sub;

  constructor(nc: NatsConnection, subject: string) {
    this.sub = nc.subscribe(subject, {
      callback: (_err, msg) => {
        this.count = Math.max(this.count, decodeCount(msg.data));
        this.wake?.();
      },
    });
  }

  /** Resolves at the next ack, or rejects when none comes within `timeoutMs`. */
  next(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`no acknowledgement from the receiver within ${timeoutMs} ms (count ${this.count})`),
          ),
        timeoutMs,
      );
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

/**
 * Sends `n` messages as fast as the receiver takes them, at most `window` unacknowledged, and
 * returns messages per second from the first send to the acknowledgement of the last.
 */
async function pump(send: () => void, acks: AckCounter, n: number, window: number): Promise<number> {
  const base = acks.count;
  const target = base + n;
  let sent = base;
  const started = performance.now();
  while (acks.count < target) {
    while (sent < target && sent - acks.count < window) {
      send();
      sent++;
    }
    await acks.next(10_000);
  }
  return n / ((performance.now() - started) / 1000);
}

/** Median round-trip time, in microseconds, of `n` sequential request/replies. */
async function roundTrips(once: () => Promise<unknown>, n: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await once();
    times.push((performance.now() - t) * 1000);
  }
  return median(times);
}
