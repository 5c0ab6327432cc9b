import type { TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { parseJsonWith } from '../validation';

/**
 * Which model-API container group serves each model. Switched by compare-and-swap, so a slow,
 * retried rollout can never point serving back at an older group.
 */
export const SERVING_SCHEMA = z.object({
  groupName: z.string(),
  endpoint: z.string().nullable(),
  versionId: z.string(),
  region: z.string(),
  cpuCores: z.number(),
  memoryGb: z.number(),
  since: z.string(),
});
export type ServingRecord = z.output<typeof SERVING_SCHEMA>;

export class ServingStateStore {
  constructor(private readonly table: TableClient) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  async get(modelName: string): Promise<(ServingRecord & { etag: string }) | null> {
    try {
      const entity = await this.table.getEntity<{ body: string }>(modelName, 'serving');
      return {
        ...parseJsonWith(SERVING_SCHEMA, entity.body, `serving state of ${modelName}`),
        etag: entity.etag,
      };
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) return null;
      throw error;
    }
  }

  /** Points serving at `next`; returns the group it replaced (null if none or already switched). */
  async switchTo(
    modelName: string,
    next: ServingRecord,
  ): Promise<{ previousGroup: string | null; previous: ServingRecord | null }> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const current = await this.get(modelName);
      if (current?.groupName === next.groupName) return { previousGroup: null, previous: null }; // retried activity
      const entity = { partitionKey: modelName, rowKey: 'serving', body: JSON.stringify(next) };
      try {
        if (current) await this.table.updateEntity(entity, 'Replace', { etag: current.etag });
        else await this.table.createEntity(entity);
        if (!current) return { previousGroup: null, previous: null };
        const { etag: _etag, ...previous } = current;
        return { previousGroup: current.groupName, previous };
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 409 || status === 412) continue;
        throw error;
      }
    }
    throw new Error(`could not switch serving for ${modelName}: too much contention`);
  }

  async listAll(): Promise<(ServingRecord & { modelName: string })[]> {
    const out: (ServingRecord & { modelName: string })[] = [];
    for await (const entity of this.table.listEntities<{ body: string }>()) {
      out.push({
        ...parseJsonWith(SERVING_SCHEMA, entity.body, 'serving state'),
        modelName: entity.partitionKey as string,
      });
    }
    return out;
  }
}
