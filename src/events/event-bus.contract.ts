/**
 * The contract every EventBus passes (event-bus.port.ts). A new implementation adds one line to
 * event-bus.contract.spec.ts. Deliveries are awaited, never assumed synchronous, so a bus that
 * delivers through a network (Redis) passes the same suite as the in-process one.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { EventBus } from './event-bus.port.js';
import { SerializedEvent } from './serialized-event.js';

export interface EventBusUnderTest {
  bus: EventBus;
  /** Releases what the bus holds (connections); called after each test. */
  close?: () => Promise<void>;
}

/** A listener that records batches and lets the test wait for them. */
class Recorder {
  readonly batches: (readonly SerializedEvent[])[] = [];
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly listener = (events: readonly SerializedEvent[]): void => {
    this.batches.push(events);
    this.waiters = this.waiters.filter((w) => (this.batches.length >= w.count ? (w.resolve(), false) : true));
  };

  /** Resolves once `count` batches have arrived. */
  received(count: number): Promise<void> {
    return this.batches.length >= count ? Promise.resolve() : new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  get seqs(): (number | null)[][] {
    return this.batches.map((batch) => batch.map((e) => e.seq));
  }
}

const event = (seq: number | null, type = 'session_resumed'): SerializedEvent =>
  new SerializedEvent(seq, type, JSON.stringify({ type, ...(seq === null ? {} : { seq }), ts: '2026-01-01T00:00:00.000Z' }));

export function eventBusContract(name: string, make: () => EventBusUnderTest | Promise<EventBusUnderTest>): void {
  describe(`EventBus contract: ${name}`, () => {
    let current: EventBusUnderTest | undefined;
    const open = async (): Promise<EventBus> => {
      current = await make();
      return current.bus;
    };
    afterEach(async () => {
      await current?.close?.();
      current = undefined;
    });

    it('hands every subscriber of a session each batch, whole and in publish order', async () => {
      const bus = await open();
      const [a, b] = [new Recorder(), new Recorder()];
      bus.subscribe('s1', a.listener);
      bus.subscribe('s1', b.listener);
      bus.publish('s1', [event(1), event(null, 'token'), event(2)]);
      bus.publish('s1', [event(3)]);
      bus.publish('s1', [event(4), event(5)]);
      await Promise.all([a.received(3), b.received(3)]);
      expect(a.seqs).toEqual([[1, null, 2], [3], [4, 5]]);
      expect(b.seqs).toEqual(a.seqs);
    });

    it('carries each event as published: seq (none for live-only events), type and the same JSON', async () => {
      const bus = await open();
      const recorder = new Recorder();
      bus.subscribe('s1', recorder.listener);
      const sent = [event(7, 'bot_message'), event(null, 'token')];
      bus.publish('s1', sent);
      await recorder.received(1);
      expect(recorder.batches[0].map((e) => [e.seq, e.type, e.json])).toEqual(sent.map((e) => [e.seq, e.type, e.json]));
      expect(recorder.batches[0][0].sseFrame).toBe(sent[0].sseFrame);
    });

    it('keeps sessions apart', async () => {
      const bus = await open();
      const [one, two] = [new Recorder(), new Recorder()];
      bus.subscribe('s1', one.listener);
      bus.subscribe('s2', two.listener);
      bus.publish('s2', [event(1, 'member_joined')]);
      bus.publish('s1', [event(1)]);
      await Promise.all([one.received(1), two.received(1)]);
      expect(one.batches.flat().map((e) => e.type)).toEqual(['session_resumed']);
      expect(two.batches.flat().map((e) => e.type)).toEqual(['member_joined']);
    });

    it('delivers only what is published after a subscription, and nothing after it stops', async () => {
      const bus = await open();
      bus.publish('s1', [event(1)]);
      const [leaving, staying] = [new Recorder(), new Recorder()];
      const stop = bus.subscribe('s1', leaving.listener);
      bus.subscribe('s1', staying.listener);
      bus.publish('s1', [event(2)]);
      await Promise.all([leaving.received(1), staying.received(1)]);
      stop();
      stop();
      bus.publish('s1', [event(3)]);
      await staying.received(2);
      expect(leaving.seqs).toEqual([[2]]);
      expect(staying.seqs).toEqual([[2], [3]]);
    });

    it('takes batches for a session nobody watches, and keeps delivering to the others when a subscriber throws', async () => {
      const bus = await open();
      bus.publish('nobody', [event(1)]);
      const after = new Recorder();
      bus.subscribe('s1', () => {
        throw new Error('a broken subscriber');
      });
      bus.subscribe('s1', after.listener);
      bus.publish('s1', [event(1)]);
      bus.publish('s1', [event(2)]);
      await after.received(2);
      expect(after.seqs).toEqual([[1], [2]]);
    });
  });
}
