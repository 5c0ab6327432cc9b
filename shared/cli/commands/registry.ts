import type { Command } from 'commander';
import { loadSettings } from '../../config';
import type { ModelMetadata } from '../../model/metadata';
import { loadPipelineManifest, selectModel } from '../../pipelines/manifest';
import { ModelRegistry, type ChampionPointer, type HistoryEntry } from '../../registry';
import { checkModelName, checkVersionId } from '../../registry/names';
import { createStorageClients } from '../../storage/clients';
import { table } from '../table';

interface CommonOptions {
  model?: string;
  json?: boolean;
}

function openRegistry(options: CommonOptions): { registry: ModelRegistry; modelName: string } {
  const settings = loadSettings();
  const registry = new ModelRegistry(createStorageClients(settings).blobs);
  const modelName = selectModel(loadPipelineManifest(settings), options.model, settings.MODEL_NAME);
  return { registry, modelName: checkModelName(modelName) };
}

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : text());
}

const percent = (fraction: number): string => `${(fraction * 100).toFixed(2)} %`;

function pointerText(modelName: string, pointer: ChampionPointer): string {
  return table(
    ['model', 'champion', 'sequence', 'action', 'previous', 'at', 'reason'],
    [
      [
        modelName,
        pointer.versionId,
        String(pointer.sequence),
        pointer.action,
        pointer.previousVersionId ?? '-',
        pointer.promotedAt,
        pointer.reason,
      ],
    ],
  );
}

function metadataText(metadata: ModelMetadata, isChampion: boolean): string {
  const rows: [string, string][] = [
    ['model', metadata.modelName],
    ['version', metadata.versionId],
    ['champion', isChampion ? 'yes' : 'no'],
    ['trained at', metadata.trainedAt],
    ['algorithm', metadata.algorithm],
    ['feature schema', metadata.featureSchemaVersion],
    ['hyperparameters', JSON.stringify(metadata.hyperparameters)],
    ['rows (train/holdout)', `${metadata.rows.train}/${metadata.rows.holdout}`],
    ['holdout accuracy', percent(metadata.holdoutMetrics.accuracy)],
    ['holdout macro F1', percent(metadata.holdoutMetrics.macroF1)],
    ['classes', metadata.classes.join(', ')],
    ['warm-started from', metadata.warmStartedFrom ?? '-'],
    [
      'training cpu seconds',
      metadata.trainingCpuSeconds === null ? '-' : String(metadata.trainingCpuSeconds),
    ],
    ['size bytes', String(metadata.sizeBytes)],
    ['data window', metadata.dataWindow.join(', ') || '-'],
  ];
  return table(['field', 'value'], rows);
}

function withCommonOptions(command: Command): Command {
  return command
    .option('--model <name>', 'model (pipeline) name (default: MODEL_NAME, or the only declared pipeline)')
    .option('--json', 'print JSON instead of a table');
}

/** `--expect none` means "no champion yet"; without --expect the champion read just before is used. */
async function expectedChampion(
  registry: ModelRegistry,
  modelName: string,
  expect: string | undefined,
): Promise<string | null> {
  if (expect === 'none') return null;
  if (expect !== undefined) return checkVersionId(expect);
  return (await registry.getChampion(modelName))?.pointer.versionId ?? null;
}

export function register(program: Command): void {
  const registry = program
    .command('registry')
    .description('Model versions, the champion and its promotion history in Blob Storage.');

  withCommonOptions(registry.command('list'))
    .description('List complete model versions, newest first (* marks the champion).')
    .action(async (options: CommonOptions) => {
      const { registry: models, modelName } = openRegistry(options);
      const [versions, champion] = await Promise.all([
        models.listVersions(modelName),
        models.getChampion(modelName),
      ]);
      const championId = champion?.pointer.versionId ?? null;
      print(
        options.json,
        versions.map((v) => ({ ...v, champion: v.versionId === championId })),
        () =>
          versions.length === 0
            ? `No versions of ${modelName}.\n`
            : table(
                ['', 'version', 'trained at', 'accuracy', 'macro F1', 'train rows', 'size bytes'],
                versions.map((v) => [
                  v.versionId === championId ? '*' : '',
                  v.versionId,
                  v.trainedAt,
                  percent(v.holdoutMetrics.accuracy),
                  percent(v.holdoutMetrics.macroF1),
                  String(v.rows.train),
                  String(v.sizeBytes),
                ]),
              ),
      );
    });

  withCommonOptions(registry.command('show').argument('<versionId>', 'version to show'))
    .description('Show the metadata of one version.')
    .action(async (versionId: string, options: CommonOptions) => {
      const { registry: models, modelName } = openRegistry(options);
      const [metadata, champion] = await Promise.all([
        models.getVersionMetadata(modelName, versionId),
        models.getChampion(modelName),
      ]);
      const isChampion = champion?.pointer.versionId === metadata.versionId;
      print(options.json, { ...metadata, champion: isChampion }, () => metadataText(metadata, isChampion));
    });

  withCommonOptions(registry.command('promote').argument('<versionId>', 'version to make champion'))
    .description('Make a version the champion (compare-and-swap: fails if the champion changed meanwhile).')
    .requiredOption('--reason <text>', 'why, recorded in the history')
    .option('--expect <versionId>', 'champion you expect to replace, or "none" (default: the current one)')
    .action(async (versionId: string, options: CommonOptions & { reason: string; expect?: string }) => {
      const { registry: models, modelName } = openRegistry(options);
      const expected = await expectedChampion(models, modelName, options.expect);
      const pointer = await models.promote(modelName, versionId, {
        reason: options.reason,
        expectedChampion: expected,
      });
      print(options.json, pointer, () => pointerText(modelName, pointer));
    });

  withCommonOptions(registry.command('rollback'))
    .description('Return to the previous champion (per history).')
    .requiredOption('--reason <text>', 'why, recorded in the history')
    .option('--expect <versionId>', 'champion you expect to roll back (default: the current one)')
    .action(async (options: CommonOptions & { reason: string; expect?: string }) => {
      const { registry: models, modelName } = openRegistry(options);
      const expected = await expectedChampion(models, modelName, options.expect);
      // Without a champion the registry answers NotFoundError whatever is expected.
      const pointer = await models.rollback(modelName, {
        reason: options.reason,
        expectedChampion: expected ?? 'none',
      });
      print(options.json, pointer, () => pointerText(modelName, pointer));
    });

  withCommonOptions(registry.command('history'))
    .description('Promotions and rollbacks, oldest first.')
    .action(async (options: CommonOptions) => {
      const { registry: models, modelName } = openRegistry(options);
      const entries: HistoryEntry[] = await models.history(modelName);
      print(options.json, entries, () =>
        entries.length === 0
          ? `No promotions of ${modelName} yet.\n`
          : table(
              ['seq', 'action', 'version', 'from', 'at', 'reason'],
              entries.map((e) => [
                String(e.sequence),
                e.action,
                e.versionId,
                e.fromVersionId ?? '-',
                e.at,
                e.reason,
              ]),
            ),
      );
    });
}
