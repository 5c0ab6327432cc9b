import path from 'node:path';
import { LocalLauncher } from '../../../shared/containers/localLauncher';
import type { ContainerSpec } from '../../../shared/containers/launcher';
import { LocalScaleToZeroLauncher } from '../../../shared/serving/localScaleToZeroLauncher';
import { footprintOfStage, functionalUnitOf } from '../../../shared/sci/sci';
import { scheduledSeconds } from '../../../shared/serving/serveAccounting';
import { periodLine, summarisePeriods, formatServing } from '../../../shared/report/servingPeriods';
import { renderReportHtml } from '../../../shared/report/renderReport';
import { sampleReportData } from '../../unit/report/sampleReportData';

/**
 * Serve-stage accounting: a model API planned to scale to zero is a local front over a real child
 * process (the fixture server), which reserves nothing while at zero, counts its cold starts, and
 * accrues replica time on the pipeline's clock only while a replica is up. The footprint charges
 * reserved time only, and SCI is per 1,000 predictions.
 */
const FIXTURES = path.resolve(__dirname, '../../fixtures/containers');
const IMAGE = 'fixture/server:1';
const COEFFICIENTS = {
  cpuMinWattsPerVcpu: 0.74,
  cpuMaxWattsPerVcpu: 3.5,
  memoryKwhPerGbHour: 0.000392,
  pue: 1.185,
  embodiedGramsPerHost: 1_200_000,
  hostLifespanHours: 35_040,
  hostVcpus: 48,
};

function spec(groupName: string, scaled: boolean): ContainerSpec {
  return {
    groupName,
    role: 'model-api',
    image: IMAGE,
    region: 'swedencentral',
    cpuCores: 0.25,
    memoryGb: 0.5,
    environment: { MODEL_NAME: 'vat-rate' },
    port: 8080,
    tags: { stage: 'serve' },
    ...(scaled ? { scale: { minReplicas: 0, maxReplicas: 2, concurrentRequests: 4 } } : {}),
  };
}

describe('LocalScaleToZeroLauncher accounting', () => {
  let nowMs = Date.parse('2024-09-03T10:00:00Z');
  const inner = new LocalLauncher({
    entrypoints: { [IMAGE]: path.join(FIXTURES, 'server.mjs') },
    killGraceMs: 300,
  });
  const stops: string[] = [];
  const launcher = new LocalScaleToZeroLauncher(inner, {
    idleTimeoutMs: 150,
    now: () => new Date(nowMs),
    beforeReplicaStop: async (api, url) => {
      stops.push(`${api.groupName} ${url}`);
    },
  });
  afterAll(async () => {
    await launcher.close();
  });

  it('reserves nothing while scaled to zero, then counts replica time and cold starts', async () => {
    await launcher.create(spec('api-front1', true));
    // Repeating the create (a retried activity) keeps the same front.
    await launcher.create(spec('api-front1', true));
    const state = await launcher.status('api-front1');
    expect(state.kind).toBe('running');
    const endpoint = state.kind === 'running' ? (state.endpoint ?? '') : '';
    nowMs += 3_600_000; // an hour at zero
    expect((await launcher.usage('api-front1'))?.serving).toMatchObject({ replicaSeconds: 0, coldStarts: 0 });
    expect(launcher.replicaRunning('api-front1')).toBe(false);
    // No process runs while at zero (and a replica is never listed apart from its front).
    expect((await inner.list()).filter((g) => g.state === 'running')).toEqual([]);

    const first = await fetch(`${endpoint}/predict`, { method: 'POST', body: '{}' });
    expect(first.status).toBe(200);
    expect(launcher.replicaRunning('api-front1')).toBe(true);
    expect((await launcher.list()).map((g) => g.groupName)).toEqual(['api-front1']);
    nowMs += 600_000; // ten minutes with a replica up
    await fetch(`${endpoint}/predict`, { method: 'POST', body: '{}' });
    while (launcher.replicaRunning('api-front1')) await new Promise((r) => setTimeout(r, 20));
    nowMs += 3_600_000; // another hour at zero: still nothing accrues
    const usage = await launcher.usage('api-front1');
    expect(usage?.serving).toMatchObject({
      replicaSeconds: 600,
      coldStarts: 1,
      requests: 2,
      failedRequests: 0,
    });
    expect(usage?.serving?.coldStartMs[0]).toBeGreaterThan(0);
    expect(stops).toEqual([expect.stringMatching(/^api-front1 http:\/\/127\.0\.0\.1:\d+$/)]);
    expect(await launcher.delete('api-front1')).toBe('deleted');
    expect(await launcher.status('api-front1')).toEqual({ kind: 'missing' });
  });

  it('leaves an always-on model API to the wrapped launcher', async () => {
    await launcher.create(spec('api-plain', false));
    expect((await inner.list()).map((g) => g.groupName)).toContain('api-plain');
    expect(launcher.replicaRunning('api-plain')).toBe(false);
    expect(await launcher.delete('api-plain')).toBe('deleted');
  });
});

describe('serve-stage footprint', () => {
  const base = {
    stage: 'serve',
    region: 'swedencentral',
    startedAt: '2024-09-02T00:00:00.000Z',
    endedAt: '2024-09-09T00:00:00.000Z',
    cpuCores: 0.25,
    memoryGb: 0.5,
    cpuSeconds: 120,
    resourceSource: 'local-process' as const,
    intensity: { gramsPerKwh: 40, provider: 'trace', source: 'test', signal: 'average' as const },
  };

  it('charges reserved replica time only: zero while scaled to zero, and SCI per 1,000 predictions', () => {
    const week = 7 * 24 * 3600;
    const alwaysOn = footprintOfStage(
      { ...base, functionalUnit: functionalUnitOf('predictions-1000', 5000) },
      COEFFICIENTS,
    );
    const atZero = footprintOfStage(
      { ...base, cpuSeconds: 0, reservedSeconds: 0, functionalUnit: functionalUnitOf('predictions-1000', 0) },
      COEFFICIENTS,
    );
    expect(atZero.totalGrams).toBe(0);
    expect(atZero.sciGramsPerUnit).toBeNull();
    const tenth = footprintOfStage(
      { ...base, reservedSeconds: week / 10, functionalUnit: functionalUnitOf('predictions-1000', 5000) },
      COEFFICIENTS,
    );
    expect(tenth.embodiedGrams).toBeCloseTo(alwaysOn.embodiedGrams / 10, 10);
    expect(tenth.totalGrams).toBeLessThan(alwaysOn.totalGrams / 5);
    expect(tenth.sciGramsPerUnit).toBeCloseTo(tenth.totalGrams / 5, 12);
  });

  it('counts only the active hours of an ACI schedule', () => {
    // Monday 00:00 UTC + hours 9 and 10 of the week; a period from Monday 09:30 to Tuesday.
    const from = Date.parse('2024-09-02T09:30:00Z');
    expect(scheduledSeconds([9, 10], from, from + 86_400_000)).toBe(1800 + 3600);
  });

  it('reports serving per plan and the saving against always-on, from the stage records', () => {
    const footprint = footprintOfStage(
      { ...base, reservedSeconds: 3600, functionalUnit: functionalUnitOf('predictions-1000', 2000) },
      COEFFICIENTS,
    );
    const line = periodLine(
      {
        ...footprint,
        serving: {
          plan: null,
          replicaSeconds: 3600,
          replicaSource: 'scale-to-zero-front',
          predictions: 2000,
          requests: 100,
          coldStarts: 3,
          coldStartMs: [2000, 2400, 2600],
          alwaysOnGrams: footprint.totalGrams * 40,
        },
      },
      'api-x',
      false,
    );
    // A Container App period whose replica time Azure Monitor could not give: the report says why.
    const estimated = periodLine(
      {
        ...footprint,
        serving: {
          plan: null,
          replicaSeconds: 3600,
          replicaSource: 'load-hours',
          replicaFallbackReason: 'Azure Monitor Replicas has 10 of 180 minutes without data',
          predictions: 0,
          requests: 0,
          coldStarts: 0,
          coldStartMs: [],
          alwaysOnGrams: footprint.totalGrams,
        },
      },
      'api-y',
      false,
    );
    expect(line.replicaFallbackReason).toBeNull();
    expect(estimated.replicaFallbackReason).toBe('Azure Monitor Replicas has 10 of 180 minutes without data');
    expect(formatServing(summarisePeriods([line, estimated])).join('\n')).toContain(
      '    replica-h estimated from load hours: Azure Monitor Replicas has 10 of 180 minutes without data',
    );
    expect(formatServing(summarisePeriods([line])).join('\n')).not.toContain('estimated from load hours');
    const summary = summarisePeriods([line]);
    expect(summary.saving).toBeCloseTo(1 - 1 / 40, 10);
    expect(line).toMatchObject({
      replicaHours: 1,
      coldStarts: 3,
      coldStartMedianMs: 2400,
      predictions: 2000,
    });
    const text = formatServing(summary).join('\n');
    expect(text).toContain('saving 97.5 %');
    expect(text).toContain('3 (2400)');
    // The HTML report shows the same per-plan table and saving, escaped.
    const html = renderReportHtml({ ...sampleReportData(), serving: summary });
    expect(html).toContain('<section id="serving">');
    expect(html).toMatch(/saving 97\.5 %/);
    expect(renderReportHtml(sampleReportData())).not.toContain('id="serving"');
  });
});
