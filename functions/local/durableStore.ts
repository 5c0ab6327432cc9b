import { statusCodeOf } from '../../shared/errors/classify';
import { randomUUID } from 'node:crypto';
import type { TableClient, TableServiceClient } from '@azure/data-tables';
import { z } from 'zod';
import { parseJsonWith } from '../../shared/validation';

/**
 * Where the local Durable runtime keeps instances, history and raised events. The Table Storage
 * implementation mirrors the real Azure Storage provider's layout (Instances, History tables) so a
 * restarted `npm start` resumes orchestrations exactly where they stopped.
 */
export type RuntimeStatus = 'Pending' | 'Running' | 'Completed' | 'Failed' | 'Terminated';

export interface RetryPolicy {
  firstRetryIntervalInMilliseconds: number;
  maxNumberOfAttempts: number;
  backoffCoefficient?: number;
  maxRetryIntervalInMilliseconds?: number;
}

export type PendingWork =
  | { kind: 'start'; dueAt: string }
  | {
      kind: 'activity';
      taskId: number;
      functionName: string;
      input: unknown;
      retry?: RetryPolicy;
      attempt: number;
      dueAt: string;
    }
  | {
      kind: 'timer';
      timerId: number;
      dueAt: string;
      retryOf?: { functionName: string; input: unknown; retry: RetryPolicy; attempt: number };
    }
  | { kind: 'event'; name: string; data: unknown; dueAt: string };

export interface InstanceRecord {
  instanceId: string;
  name: string;
  status: RuntimeStatus;
  input: unknown;
  output: unknown;
  customStatus: unknown;
  error: string | null;
  createdAt: string;
  lastUpdatedAt: string;
  execution: number;
  nextTaskId: number;
  historyLength: number;
  actionKeys: string[];
  actionTaskIds: number[];
  pending: PendingWork[];
  etag?: string;
}

export type StoredHistoryEvent = {
  EventType: number;
  EventId: number;
  IsPlayed: boolean;
  Timestamp: string;
} & Record<string, unknown>;

export interface RaisedEvent {
  name: string;
  data: unknown;
  raisedAt: string;
}

export interface DurableStore {
  getInstance(instanceId: string): Promise<InstanceRecord | null>;
  /** Writes with optimistic concurrency: `etag` null means "must not exist yet". */
  putInstance(record: InstanceRecord, etag: string | null): Promise<void>;
  listActiveInstances(): Promise<InstanceRecord[]>;
  appendHistory(
    instanceId: string,
    execution: number,
    from: number,
    events: StoredHistoryEvent[],
  ): Promise<void>;
  readHistory(instanceId: string, execution: number): Promise<StoredHistoryEvent[]>;
  enqueueEvent(instanceId: string, event: RaisedEvent): Promise<void>;
  /** Takes (and removes) the events raised for an instance, oldest first. */
  takeEvents(instanceId: string): Promise<RaisedEvent[]>;
}

const CHUNK_CHARS = 30_000; // a Table string property holds 64 KiB (32K UTF-16 code units)

function toChunks(text: string): Record<string, string | number> {
  const props: Record<string, string | number> = {
    chunks: Math.max(1, Math.ceil(text.length / CHUNK_CHARS)),
  };
  for (let i = 0; i * CHUNK_CHARS < text.length || i === 0; i++) {
    props[`c${i}`] = text.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
  }
  return props;
}

function fromChunks(entity: Record<string, unknown>): string {
  const count = Number(entity.chunks ?? 1);
  let text = '';
  for (let i = 0; i < count; i++) text += String(entity[`c${i}`] ?? '');
  return text;
}

const INSTANCE_SCHEMA = z.looseObject({
  instanceId: z.string(),
  name: z.string(),
  status: z.enum(['Pending', 'Running', 'Completed', 'Failed', 'Terminated']),
  execution: z.number().int(),
  nextTaskId: z.number().int(),
  historyLength: z.number().int(),
  actionKeys: z.array(z.string()),
  actionTaskIds: z.array(z.number()),
  pending: z.array(
    z.looseObject({ kind: z.enum(['start', 'activity', 'timer', 'event']), dueAt: z.string() }),
  ),
});

export class TableDurableStore implements DurableStore {
  private readonly instances: TableClient;
  private readonly historyTable: TableClient;
  private readonly inbox: TableClient;

  private constructor(
    private readonly service: TableServiceClient,
    tableFor: (name: string) => TableClient,
    private readonly names: { instances: string; history: string; inbox: string },
  ) {
    this.instances = tableFor(names.instances);
    this.historyTable = tableFor(names.history);
    this.inbox = tableFor(names.inbox);
  }

  static async create(
    service: TableServiceClient,
    tableFor: (name: string) => TableClient,
    hubName: string,
  ): Promise<TableDurableStore> {
    const store = new TableDurableStore(service, tableFor, {
      instances: `${hubName}Instances`,
      history: `${hubName}History`,
      inbox: `${hubName}Inbox`,
    });
    for (const name of Object.values(store.names)) await service.createTable(name);
    return store;
  }

  async getInstance(instanceId: string): Promise<InstanceRecord | null> {
    try {
      const entity = await this.instances.getEntity<Record<string, unknown>>('instance', instanceId);
      const record = parseJsonWith(INSTANCE_SCHEMA, fromChunks(entity), `durable instance ${instanceId}`);
      return { ...(record as unknown as InstanceRecord), etag: entity.etag as string };
    } catch (error) {
      if (statusCodeOf(error) === 404) return null;
      throw error;
    }
  }

  async putInstance(record: InstanceRecord, etag: string | null): Promise<void> {
    const { etag: _old, ...state } = record;
    const entity = {
      partitionKey: 'instance',
      rowKey: record.instanceId,
      status: record.status,
      ...toChunks(JSON.stringify(state)),
    };
    if (etag === null) await this.instances.createEntity(entity);
    else await this.instances.updateEntity(entity, 'Replace', { etag });
    const fresh = await this.instances.getEntity('instance', record.instanceId);
    record.etag = fresh.etag;
  }

  async listActiveInstances(): Promise<InstanceRecord[]> {
    const out: InstanceRecord[] = [];
    const filter = "PartitionKey eq 'instance' and (status eq 'Pending' or status eq 'Running')";
    for await (const entity of this.instances.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      const record = parseJsonWith(
        INSTANCE_SCHEMA,
        fromChunks(entity),
        'durable instance',
      ) as unknown as InstanceRecord;
      record.etag = entity.etag as string;
      const raised = await this.takeEvents(record.instanceId);
      if (raised.length > 0) {
        record.pending.push(
          ...raised.map((e) => ({ kind: 'event' as const, name: e.name, data: e.data, dueAt: e.raisedAt })),
        );
        await this.putInstance(record, record.etag);
      }
      out.push(record);
    }
    return out;
  }

  async appendHistory(
    instanceId: string,
    execution: number,
    from: number,
    events: StoredHistoryEvent[],
  ): Promise<void> {
    for (let i = 0; i < events.length; i++) {
      // createEntity (not upsert): history is append-only and a duplicate index is a bug.
      await this.historyTable.createEntity({
        partitionKey: `${instanceId}:${execution}`,
        rowKey: String(from + i).padStart(8, '0'),
        ...toChunks(JSON.stringify(events[i])),
      });
    }
  }

  async readHistory(instanceId: string, execution: number): Promise<StoredHistoryEvent[]> {
    const events: StoredHistoryEvent[] = [];
    const filter = `PartitionKey eq '${instanceId.replace(/'/g, "''")}:${execution}'`;
    for await (const entity of this.historyTable.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      events.push(JSON.parse(fromChunks(entity)) as StoredHistoryEvent);
    }
    return events;
  }

  async enqueueEvent(instanceId: string, event: RaisedEvent): Promise<void> {
    await this.inbox.createEntity({
      partitionKey: instanceId,
      rowKey: `${event.raisedAt}-${randomUUID()}`,
      ...toChunks(JSON.stringify(event)),
    });
  }

  async takeEvents(instanceId: string): Promise<RaisedEvent[]> {
    const taken: RaisedEvent[] = [];
    const filter = `PartitionKey eq '${instanceId.replace(/'/g, "''")}'`;
    for await (const entity of this.inbox.listEntities<Record<string, unknown>>({
      queryOptions: { filter },
    })) {
      taken.push(JSON.parse(fromChunks(entity)) as RaisedEvent);
      await this.inbox.deleteEntity(entity.partitionKey as string, entity.rowKey as string);
    }
    return taken;
  }
}
