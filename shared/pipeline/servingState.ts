import type { TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError } from '../errors';
import { statusCodeOf } from '../errors/classify';
import { parseJsonWith } from '../validation';
import { SERVING_PLAN_RECORD_SCHEMA } from '../serving/servingPlanRecord';
import { SERVER_PIN_SCHEMA } from '../modelApi/serverPin';

/**
 * Which model-API container group serves each model, and the ones it replaced that are not yet
 * retired. Switched by compare-and-swap, so a slow, retried rollout can never point serving back
 * at an older group, and a crash between switch and retirement never forgets the old group.
 */
export const SERVING_SCHEMA = z.object({
  groupName: z.string(),
  endpoint: z.string().nullable(),
  versionId: z.string(),
  region: z.string(),
  cpuCores: z.number(),
  memoryGb: z.number(),
  since: z.string(),
  /** The serving plan the API was launched with (null for APIs launched before plans existed). */
  plan: SERVING_PLAN_RECORD_SCHEMA.nullable().default(null),
  /**
   * The certificate the API serves when only a pin can trust it (ACI): every call to the endpoint
   * trusts exactly this one, and its fingerprint is what other clients pin.
   */
  tls: SERVER_PIN_SCHEMA.optional(),
});
export type ServingRecord = z.output<typeof SERVING_SCHEMA>;

const ROW_SCHEMA = SERVING_SCHEMA.extend({ retiring: z.array(SERVING_SCHEMA).default([]) });
type ServingRow = z.output<typeof ROW_SCHEMA>;

const MAX_ATTEMPTS = 20;

export class ServingStateStore {
  constructor(private readonly table: TableClient) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  async get(modelName: string): Promise<(ServingRecord & { etag: string }) | null> {
    const row = await this.getRow(modelName);
    if (!row) return null;
    const { retiring: _retiring, ...record } = row;
    return record;
  }

  private async getRow(modelName: string): Promise<(ServingRow & { etag: string }) | null> {
    try {
      const entity = await this.table.getEntity<{ body: string }>(modelName, 'serving');
      return {
        ...parseJsonWith(ROW_SCHEMA, entity.body, `serving state of ${modelName}`),
        etag: entity.etag,
      };
    } catch (error) {
      if (statusCodeOf(error) === 404) return null;
      throw error;
    }
  }

  /**
   * Points serving at `next`; returns every API still to retire (the replaced one and any an
   * earlier crash left). Repeating the switch returns the same list, so it is safe to retry.
   */
  async switchTo(modelName: string, next: ServingRecord): Promise<ServingRecord[]> {
    return this.change(modelName, (current) => {
      if (current?.groupName === next.groupName) return { row: current, result: current.retiring };
      const retiring = current ? [...current.retiring, stripRow(current)] : [];
      return { row: { ...next, retiring }, result: retiring };
    });
  }

  /**
   * Points serving at `next` only while `expected` still serves (a re-plan must never undo a newer
   * rollout); null when it no longer does. Repeating it after it succeeded returns the same list.
   */
  async switchFrom(
    modelName: string,
    expected: string,
    next: ServingRecord,
  ): Promise<ServingRecord[] | null> {
    return this.change(modelName, (current) => {
      if (current?.groupName === next.groupName) return { row: current, result: current.retiring };
      if (current?.groupName !== expected) return { row: null, result: null };
      return {
        row: { ...next, retiring: [...current.retiring, stripRow(current)] },
        result: [...current.retiring, stripRow(current)],
      };
    });
  }

  /** The old API is deleted: forget it. */
  async markRetired(modelName: string, groupName: string): Promise<void> {
    await this.change(modelName, (current) => {
      if (!current || !current.retiring.some((r) => r.groupName === groupName)) {
        return { row: null, result: undefined };
      }
      return {
        row: { ...current, retiring: current.retiring.filter((r) => r.groupName !== groupName) },
        result: undefined,
      };
    });
  }

  /** A locally restarted API answers on a new port. */
  async updateEndpoint(modelName: string, groupName: string, endpoint: string): Promise<void> {
    await this.change(modelName, (current) =>
      current?.groupName === groupName
        ? { row: { ...current, endpoint }, result: undefined }
        : { row: null, result: undefined },
    );
  }

  /** `change` returns the row to write (null or the row it was given: nothing to write) and the result. */
  private async change<T>(
    modelName: string,
    change: (current: ServingRow | null) => { row: ServingRow | null; result: T },
  ): Promise<T> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await this.getRow(modelName);
      const unchanged = current ? stripEtag(current) : null;
      const { row, result } = change(unchanged);
      if (row === null || row === unchanged) return result;
      const entity = { partitionKey: modelName, rowKey: 'serving', body: JSON.stringify(row) };
      try {
        if (current) await this.table.updateEntity(entity, 'Replace', { etag: current.etag });
        else await this.table.createEntity(entity);
        return result;
      } catch (error) {
        const status = statusCodeOf(error);
        if (status === 409 || status === 412) continue;
        throw error;
      }
    }
    throw new ConflictError(`could not change serving state of ${modelName}: lost ${MAX_ATTEMPTS} races`, {
      retryable: true,
      details: { modelName },
    });
  }

  async listAll(): Promise<(ServingRecord & { modelName: string; retiring: ServingRecord[] })[]> {
    const out: (ServingRecord & { modelName: string; retiring: ServingRecord[] })[] = [];
    for await (const entity of this.table.listEntities<{ body: string }>()) {
      out.push({
        ...parseJsonWith(ROW_SCHEMA, entity.body, 'serving state'),
        modelName: entity.partitionKey as string,
      });
    }
    return out;
  }
}

function stripEtag<T extends { etag?: string }>(value: T): Omit<T, 'etag'> {
  const { etag: _etag, ...rest } = value;
  return rest;
}

function stripRow(row: ServingRow): ServingRecord {
  const { retiring: _retiring, ...record } = row;
  return record;
}
