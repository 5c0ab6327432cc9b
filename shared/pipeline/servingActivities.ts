import { z } from 'zod';
import { parseWith } from '../validation';
import type { ActivityOutput, ParsedActivityInput } from './activityContracts';
import type { PipelineContext } from './context';
import type { StageUsage } from './contracts';
import { modelApiCredentials } from '../modelApi/credentials';

/**
 * The activities that move serving from one model API to the next. The switch records the
 * replaced API as `retiring` in the same write that points serving at the new one, so a crash
 * between the switch and the retirement cannot lose the old API: the repeated switch returns it
 * again, and retiring removes it from the record only after it was deleted.
 */
export async function switchServing(
  ctx: PipelineContext,
  input: ParsedActivityInput<'switchServing'>,
): Promise<ActivityOutput<'switchServing'>> {
  const { modelName, ...record } = input;
  return { retiring: await ctx.serving.switchTo(modelName, record) };
}

const SERVED_INFO = z.looseObject({ predictionsServed: z.number().int().nonnegative() });

/**
 * Removes a model API that was serving before, after recording what its serving period cost
 * (its own measured usage locally, and the predictions it served as the functional unit).
 */
export async function retireModelApi(
  ctx: PipelineContext,
  input: ParsedActivityInput<'retireModelApi'>,
  fetchImpl: typeof fetch = fetch,
): Promise<StageUsage | null> {
  const { previous, endedAt, modelName } = input;
  let predictionsServed = 0;
  if (previous.endpoint) {
    try {
      const response = await fetchImpl(`${previous.endpoint}/model`, {
        headers: modelApiCredentials(ctx.launcher.kind).headers,
        signal: AbortSignal.timeout(5000),
      });
      predictionsServed = parseWith(SERVED_INFO, await response.json(), '/model response').predictionsServed;
    } catch {
      // A dead old API served nothing more we can count; its time still counts below.
    }
  }
  const usage = await ctx.launcher.usage(previous.groupName).catch(() => null);
  await ctx.launcher.delete(previous.groupName);
  await ctx.serving.markRetired(modelName, previous.groupName);
  ctx.log(
    `retired model API ${previous.groupName} (${previous.versionId}) after ${predictionsServed} predictions`,
  );
  return {
    stage: 'serve',
    region: previous.region,
    startedAt: previous.since,
    endedAt,
    cpuCores: previous.cpuCores,
    memoryGb: previous.memoryGb,
    cpuSeconds: usage?.cpuSeconds ?? null,
    peakMemoryBytes: usage?.peakRssBytes ?? null,
    resourceSource: usage ? 'local-process' : 'assumed',
    functionalUnits: predictionsServed,
  };
}
