import { createHash, randomUUID } from 'node:crypto';
import type { TableClient } from '@azure/data-tables';
import { z } from 'zod';
import { ConflictError } from '../errors';
import { parseJsonWith } from '../validation';

/**
 * One row per delivery of a batch (name + ETag): the claim and the journal of the effects already
 * done. Event Grid delivers at least once and a worker can die between any two effects, so the
 * evaluator writes each step's result here before the next step and a later delivery (or the
 * incoming sweep) resumes from it instead of starting over or answering "duplicate".
 *
 * A claim is a lease: it expires `ttlMs` after it was taken or last extended, and an expired claim
 * can be taken over. Every write is a compare-and-swap on the row's ETag, so a worker that lost its
 * claim to a takeover finds out at its next write (a retryable ConflictError) and stops.
 */
/** What one pipeline made of a scored batch, fixed when the batch was scored. */
export const PIPELINE_SCORED_SCHEMA = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('evaluated'),
    modelName: z.string(),
    /** The evaluation record minus its action. */
    draft: z.record(z.string(), z.unknown()),
  }),
  /** The batch lacks this pipeline's label or features (or its champion cannot be read). */
  z.object({ kind: z.literal('skipped'), modelName: z.string(), reason: z.string() }),
]);
export type PipelineScored = z.output<typeof PIPELINE_SCORED_SCHEMA>;

export const SCORED_SCHEMA = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('quarantine'),
    code: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
    /** Illegal names are kept under a safe name; the original is in the reason file. */
    targetName: z.string(),
  }),
  /** One entry per declared pipeline, in declaration order. */
  z.object({ kind: z.literal('pipelines'), pipelines: z.array(PIPELINE_SCORED_SCHEMA).min(1) }),
  /**
   * The single-model journal of claims taken before pipelines were declared (its progress is in
   * the journal's top-level fields); read so that such a claim resumes, never written.
   */
  z.object({ kind: z.literal('evaluated'), draft: z.record(z.string(), z.unknown()) }),
  z.object({ kind: z.literal('superseded'), reason: z.string() }),
]);
export type Scored = z.output<typeof SCORED_SCHEMA>;

/** The effects done for one pipeline, each journalled before the next is tried. */
export const PIPELINE_PROGRESS_SCHEMA = z.object({
  submitted: z
    .object({ outcome: z.enum(['created', 'merged', 'queued-next']), escalated: z.boolean() })
    .optional(),
  /** Set before the orchestration call, so a resumed attempt knows the start may have been its own. */
  starting: z.boolean().optional(),
  action: z.string().optional(),
  recorded: z.boolean().optional(),
});
export type PipelineProgress = z.output<typeof PIPELINE_PROGRESS_SCHEMA>;

export const BATCH_JOURNAL_SCHEMA = PIPELINE_PROGRESS_SCHEMA.extend({
  /** When the delivery was first claimed: the evaluation's time on every resumed attempt. */
  evaluatedAt: z.string(),
  scored: SCORED_SCHEMA.optional(),
  moved: z.boolean().optional(),
  /** Per pipeline (by model name); the top-level progress fields are the single-model journal's. */
  progress: z.record(z.string(), PIPELINE_PROGRESS_SCHEMA).optional(),
});
export type BatchJournal = z.output<typeof BATCH_JOURNAL_SCHEMA>;

/**
 * A journal in the per-pipeline form: a single-model journal (a claim taken before pipelines were
 * declared, resumed after an upgrade) becomes one pipeline with the progress it had reached.
 */
export function perPipelineJournal(journal: BatchJournal): BatchJournal {
  const scored = journal.scored;
  if (scored?.kind !== 'evaluated') return journal;
  const modelName = String(scored.draft.modelName);
  const { submitted, starting, action, recorded, ...rest } = journal;
  return {
    ...rest,
    scored: { kind: 'pipelines', pipelines: [{ kind: 'evaluated', modelName, draft: scored.draft }] },
    progress: { [modelName]: { submitted, starting, action, recorded } },
  };
}

const ROW_BODY_SCHEMA = z.object({
  status: z.enum(['processing', 'done']),
  outcome: z.string().default(''),
  attempts: z.number().int().nonnegative().default(1),
  journal: BATCH_JOURNAL_SCHEMA.optional(),
  // Rows written before the journal existed carry only their claim time.
  claimedAt: z.string().optional(),
});

interface LedgerEntity {
  partitionKey: string;
  rowKey: string;
  name: string;
  blobEtag: string;
  status: 'processing' | 'done';
  leaseUntil: string;
  owner: string;
  /** Which host process holds the claim (set by the local host only; empty on Azure). */
  holder?: string;
  body: string;
}

export interface BatchClaim {
  readonly name: string;
  readonly etag: string;
  readonly owner: string;
  readonly attempts: number;
  journal: BatchJournal;
  rowEtag: string;
}

export type ClaimResult =
  | { kind: 'claimed'; claim: BatchClaim }
  | { kind: 'done'; outcome: string; journal: BatchJournal | null }
  | { kind: 'busy'; leaseUntil: string };

export interface UnfinishedDelivery {
  name: string;
  etag: string;
  leaseUntil: string;
  attempts: number;
}

const PARTITION = 'batch';

export class ProcessedBatchLedger {
  constructor(
    private readonly table: TableClient,
    private readonly ttlMs = 10 * 60_000,
    /**
     * Identity of the host process taking claims, when the host can later tell that it died (the
     * local host: pid + start time). Azure leaves it unset: a worker's death shows only as an
     * expired lease there.
     */
    private readonly holder: string | undefined = undefined,
  ) {}

  async ensureTable(): Promise<void> {
    await this.table.createTable();
  }

  static keyOf(name: string, etag: string): string {
    return createHash('sha256').update(`${name}\n${etag}`).digest('hex');
  }

  private leaseFrom(nowIso: string): string {
    return new Date(Date.parse(nowIso) + this.ttlMs).toISOString();
  }

  async claim(name: string, etag: string, nowIso: string): Promise<ClaimResult> {
    const rowKey = ProcessedBatchLedger.keyOf(name, etag);
    const owner = randomUUID();
    const journal: BatchJournal = { evaluatedAt: nowIso };
    const fresh: LedgerEntity = {
      partitionKey: PARTITION,
      rowKey,
      name,
      blobEtag: etag,
      status: 'processing',
      leaseUntil: this.leaseFrom(nowIso),
      owner,
      ...(this.holder === undefined ? {} : { holder: this.holder }),
      body: JSON.stringify({ status: 'processing', outcome: '', attempts: 1, journal }),
    };
    try {
      const created = await this.table.createEntity(fresh);
      return {
        kind: 'claimed',
        claim: { name, etag, owner, attempts: 1, journal, rowEtag: created.etag ?? '' },
      };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
    }
    const entity = await this.table.getEntity<LedgerEntity>(PARTITION, rowKey);
    const row = parseJsonWith(ROW_BODY_SCHEMA, entity.body, 'batch claim');
    if (row.status === 'done') return { kind: 'done', outcome: row.outcome, journal: row.journal ?? null };
    const leaseUntil = entity.leaseUntil ?? row.claimedAt ?? nowIso;
    if (Date.parse(leaseUntil) > Date.parse(nowIso)) return { kind: 'busy', leaseUntil };
    // The earlier worker died or gave up mid-way: take over its journal, unless someone just did.
    const attempts = row.attempts + 1;
    const resumed = row.journal ?? { evaluatedAt: row.claimedAt ?? nowIso };
    try {
      const updated = await this.table.updateEntity(
        {
          ...fresh,
          owner,
          body: JSON.stringify({ status: 'processing', outcome: '', attempts, journal: resumed }),
        },
        'Replace',
        { etag: entity.etag },
      );
      return {
        kind: 'claimed',
        claim: { name, etag, owner, attempts, journal: resumed, rowEtag: updated.etag ?? '' },
      };
    } catch (error) {
      if (statusOf(error) === 412) return { kind: 'busy', leaseUntil: this.leaseFrom(nowIso) };
      throw error;
    }
  }

  /** Stores the journal after a step and extends the lease; fails if the claim was taken over. */
  async save(claim: BatchClaim, nowIso: string): Promise<void> {
    await this.write(claim, 'processing', '', this.leaseFrom(nowIso));
  }

  async finish(claim: BatchClaim, outcome: string, nowIso: string): Promise<void> {
    await this.write(claim, 'done', outcome, nowIso);
  }

  /**
   * Gives the claim up after a failed step so the next delivery resumes at once instead of waiting
   * for the lease to run out. Best effort: if this write fails too, the lease still expires.
   */
  async release(claim: BatchClaim, nowIso: string): Promise<void> {
    try {
      await this.write(claim, 'processing', '', nowIso);
    } catch {
      // The lease expiring is the fallback; the original failure is what the caller reports.
    }
  }

  /**
   * Ends the leases of claims whose holder is known to be dead (`isDead(holder)`), so the next
   * delivery retakes them at once instead of waiting out the lease: the local host calls it on
   * `--resume`, when it knows the previous run was killed. Only rows that name a holder are
   * touched, never one whose holder is alive, and each write is conditional on the row's ETag, so
   * a claim retaken or finished meanwhile is left alone. Returns the deliveries released.
   */
  async releaseDeadHolders(
    isDead: (holder: string) => boolean,
    nowIso: string,
  ): Promise<{ name: string; etag: string }[]> {
    const released: { name: string; etag: string }[] = [];
    for await (const entity of this.table.listEntities<LedgerEntity>({
      queryOptions: { filter: `PartitionKey eq '${PARTITION}' and status eq 'processing'` },
    })) {
      if (!entity.holder || !isDead(entity.holder)) continue;
      if (Date.parse(entity.leaseUntil) <= Date.parse(nowIso)) continue;
      try {
        await this.table.updateEntity(
          { partitionKey: PARTITION, rowKey: entity.rowKey, leaseUntil: nowIso },
          'Merge',
          { etag: entity.etag },
        );
        released.push({ name: entity.name, etag: entity.blobEtag });
      } catch (error) {
        if (statusOf(error) !== 412 && statusOf(error) !== 404) throw error;
      }
    }
    return released;
  }

  /** Claims still processing whose lease ran out (a worker died), oldest lease first. */
  async listStale(nowIso: string): Promise<UnfinishedDelivery[]> {
    return (await this.listProcessing()).filter((d) => Date.parse(d.leaseUntil) <= Date.parse(nowIso));
  }

  /** Unfinished deliveries of one name (a retried event after the batch left incoming/). */
  async unfinishedFor(name: string): Promise<UnfinishedDelivery[]> {
    return (await this.listProcessing()).filter((d) => d.name === name);
  }

  private async listProcessing(): Promise<UnfinishedDelivery[]> {
    const out: UnfinishedDelivery[] = [];
    for await (const entity of this.table.listEntities<LedgerEntity>({
      queryOptions: { filter: `PartitionKey eq '${PARTITION}' and status eq 'processing'` },
    })) {
      const row = parseJsonWith(ROW_BODY_SCHEMA, entity.body, 'batch claim');
      out.push({
        name: entity.name,
        etag: entity.blobEtag,
        leaseUntil: entity.leaseUntil,
        attempts: row.attempts,
      });
    }
    return out.sort((a, b) => a.leaseUntil.localeCompare(b.leaseUntil));
  }

  private async write(
    claim: BatchClaim,
    status: 'processing' | 'done',
    outcome: string,
    leaseUntil: string,
  ): Promise<void> {
    try {
      const updated = await this.table.updateEntity<LedgerEntity>(
        {
          partitionKey: PARTITION,
          rowKey: ProcessedBatchLedger.keyOf(claim.name, claim.etag),
          name: claim.name,
          blobEtag: claim.etag,
          status,
          leaseUntil,
          owner: claim.owner,
          ...(this.holder === undefined ? {} : { holder: this.holder }),
          body: JSON.stringify({ status, outcome, attempts: claim.attempts, journal: claim.journal }),
        },
        'Replace',
        { etag: claim.rowEtag },
      );
      claim.rowEtag = updated.etag ?? claim.rowEtag;
    } catch (error) {
      if (statusOf(error) === 412 || statusOf(error) === 404) {
        throw new ConflictError(
          `The claim on ${JSON.stringify(claim.name)} was taken over by another worker`,
          {
            retryable: true,
            cause: error,
          },
        );
      }
      throw error;
    }
  }
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}
