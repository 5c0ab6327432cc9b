import type { TableClient } from '@azure/data-tables';
import { parseJsonWith } from '../validation';
import {
  RETRAIN_REQUEST_SCHEMA,
  WINDOW_PLAN_SCHEMA,
  type RetrainRequest,
  type WindowPlan,
} from './contracts';
import { z } from 'zod';
import { ConflictError } from '../errors';
import { statusCodeOf } from '../errors/classify';

/**
 * The retrain requests waiting for (or being served by) a model's orchestration. Two slots per
 * model: `current` (waiting for its window, or training) and `next` (drops seen while `current`
 * is already training: its data window no longer includes them, so they need their own run).
 * Every change is a compare-and-swap on the row's ETag, so the evaluator, the poller and the
 * orchestrator can race without losing a request or postponing a deadline.
 */
export type PendingState = 'waiting' | 'training';

export interface PendingRetrain {
  request: RetrainRequest;
  state: PendingState;
  latestPlan: WindowPlan | null;
  /** When the poller told the orchestration its window opened (so it is told only once). */
  signalledAt?: string | null;
  updatedAt: string;
}

export type MergeOutcome =
  | { kind: 'created'; pending: PendingRetrain }
  | { kind: 'merged'; pending: PendingRetrain; escalated: boolean; deadlineMoved: boolean }
  | { kind: 'queued-next'; pending: PendingRetrain };

const ROW_SCHEMA = z.object({
  request: RETRAIN_REQUEST_SCHEMA,
  state: z.enum(['waiting', 'training']),
  latestPlan: WINDOW_PLAN_SCHEMA.nullable(),
  signalledAt: z.string().nullable().optional(),
  updatedAt: z.string(),
});

const SLOTS = { current: 'current', next: 'next' } as const;
type Slot = keyof typeof SLOTS;

/**
 * Deadline-safe merge: the earlier deadline wins, "now" beats "when green", and the reasons are
 * kept side by side. A later small drop can never push back an earlier deadline.
 */
export function mergeRequests(existing: RetrainRequest, incoming: RetrainRequest): RetrainRequest {
  const deadline =
    Date.parse(incoming.deadline) < Date.parse(existing.deadline) ? incoming.deadline : existing.deadline;
  const kind =
    existing.kind === 'retrainNow' || incoming.kind === 'retrainNow' ? 'retrainNow' : 'retrainWhenGreen';
  return {
    ...existing,
    kind,
    deadline,
    reason:
      existing.reason === incoming.reason ? existing.reason : `${existing.reason}; then ${incoming.reason}`,
    triggeringBatch: incoming.triggeringBatch ?? existing.triggeringBatch,
    relativeDrop: Math.max(existing.relativeDrop ?? 0, incoming.relativeDrop ?? 0),
  };
}

export class PendingRetrainStore {
  constructor(private readonly table: TableClient) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  async get(modelName: string, slot: Slot = 'current'): Promise<(PendingRetrain & { etag: string }) | null> {
    try {
      const entity = await this.table.getEntity<{ body: string }>(modelName, SLOTS[slot]);
      const row = parseJsonWith(ROW_SCHEMA, entity.body, `pending retrain ${modelName}/${slot}`);
      return { ...(row as PendingRetrain), etag: entity.etag };
    } catch (error) {
      if (statusCodeOf(error) === 404) return null;
      throw error;
    }
  }

  /** Every model's waiting request (for the poller). */
  async listWaiting(): Promise<PendingRetrain[]> {
    const out: PendingRetrain[] = [];
    for await (const entity of this.table.listEntities<{ body: string }>({
      queryOptions: { filter: `RowKey eq '${SLOTS.current}'` },
    })) {
      const row = parseJsonWith(ROW_SCHEMA, entity.body, 'pending retrain') as PendingRetrain;
      if (row.state === 'waiting') out.push(row);
    }
    return out;
  }

  /** Adds a request, merging with what is pending. Retries its CAS on a lost race. */
  async submit(request: RetrainRequest, nowIso: string): Promise<MergeOutcome> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(request.modelName, 'current');
      try {
        if (!current) {
          const pending: PendingRetrain = { request, state: 'waiting', latestPlan: null, updatedAt: nowIso };
          await this.write(request.modelName, 'current', pending, null);
          return { kind: 'created', pending };
        }
        if (current.state === 'waiting') {
          const merged = mergeRequests(current.request, request);
          const pending: PendingRetrain = { ...stripEtag(current), request: merged, updatedAt: nowIso };
          await this.write(request.modelName, 'current', pending, current.etag);
          return {
            kind: 'merged',
            pending,
            escalated: current.request.kind !== 'retrainNow' && merged.kind === 'retrainNow',
            deadlineMoved: merged.deadline !== current.request.deadline,
          };
        }
        const next = await this.get(request.modelName, 'next');
        const nextRequest = next ? mergeRequests(next.request, request) : request;
        const pending: PendingRetrain = {
          request: nextRequest,
          state: 'waiting',
          latestPlan: null,
          updatedAt: nowIso,
        };
        await this.write(request.modelName, 'next', pending, next?.etag ?? null);
        return { kind: 'queued-next', pending };
      } catch (error) {
        if (isRace(error)) continue;
        throw error;
      }
    }
    throw contention(`submit a retrain request for ${request.modelName}`);
  }

  /**
   * The latest plan for the request. `escalation` says the orchestration turned it into
   * `retrainNow` (its deadline backstop fired): the table owns the request, so it is told.
   */
  async recordPlan(
    modelName: string,
    requestId: string,
    plan: WindowPlan,
    nowIso: string,
    escalation: string | null = null,
  ): Promise<void> {
    await this.update(modelName, requestId, (p) => ({
      ...p,
      request: escalation === null ? p.request : escalate(p.request, escalation),
      latestPlan: plan,
      updatedAt: nowIso,
    }));
  }

  async markSignalled(modelName: string, requestId: string, nowIso: string): Promise<void> {
    await this.update(modelName, requestId, (p) => ({ ...p, signalledAt: nowIso, updatedAt: nowIso }));
  }

  async markTraining(modelName: string, requestId: string, nowIso: string): Promise<void> {
    await this.update(modelName, requestId, (p) => ({ ...p, state: 'training', updatedAt: nowIso }));
  }

  /**
   * The orchestration finished serving `requestId`: drop it and promote the queued `next`
   * request, which the orchestration then serves with continueAsNew.
   */
  async complete(modelName: string, requestId: string, nowIso: string): Promise<RetrainRequest | null> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(modelName, 'current');
      try {
        if (current && current.request.requestId !== requestId) {
          // Already completed by an earlier (retried) call: the row now holds the next request.
          return current.request;
        }
        const next = await this.get(modelName, 'next');
        if (next) {
          const promoted: PendingRetrain = { ...stripEtag(next), state: 'waiting', updatedAt: nowIso };
          if (current) await this.write(modelName, 'current', promoted, current.etag);
          else await this.write(modelName, 'current', promoted, null);
          await this.table.deleteEntity(modelName, SLOTS.next, { etag: next.etag });
          return promoted.request;
        }
        if (current) await this.table.deleteEntity(modelName, SLOTS.current, { etag: current.etag });
        return null;
      } catch (error) {
        if (isRace(error)) continue;
        throw error;
      }
    }
    throw contention(`complete retrain request ${requestId}`);
  }

  private async update(
    modelName: string,
    requestId: string,
    change: (p: PendingRetrain) => PendingRetrain,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.get(modelName, 'current');
      if (!current || current.request.requestId !== requestId) return;
      try {
        await this.write(modelName, 'current', change(stripEtag(current)), current.etag);
        return;
      } catch (error) {
        if (isRace(error)) continue;
        throw error;
      }
    }
    // A lost plan or signal would leave the orchestration and the table disagreeing: fail loudly,
    // retryably, so the orchestrator's retry policy tries again later.
    throw contention(`update retrain request ${requestId} of ${modelName}`);
  }

  private async write(
    modelName: string,
    slot: Slot,
    pending: PendingRetrain,
    etag: string | null,
  ): Promise<void> {
    const entity = { partitionKey: modelName, rowKey: SLOTS[slot], body: JSON.stringify(pending) };
    if (etag === null) await this.table.createEntity(entity);
    else await this.table.updateEntity(entity, 'Replace', { etag });
  }
}

function stripEtag<T extends { etag?: string }>(value: T): Omit<T, 'etag'> {
  const { etag: _etag, ...rest } = value;
  return rest;
}

const MAX_ATTEMPTS = 20;

function isRace(error: unknown): boolean {
  const status = statusCodeOf(error);
  return status === 409 || status === 412 || status === 404;
}

function contention(action: string): ConflictError {
  return new ConflictError(`could not ${action}: lost ${MAX_ATTEMPTS} compare-and-swap races`, {
    retryable: true,
  });
}

/** Idempotent: a repeated escalation does not repeat its reason. */
export function escalate(request: RetrainRequest, escalation: string): RetrainRequest {
  return {
    ...request,
    kind: 'retrainNow',
    reason: request.reason.endsWith(`; ${escalation}`) ? request.reason : `${request.reason}; ${escalation}`,
  };
}
