import type { Command } from 'commander';
import { encodingVersion } from '../../pipelines/featureEncoding';
import {
  loadPipelineManifest,
  pipelineDefaultsFromEnv,
  type FeatureDeclaration,
  type PipelineDefinition,
  type PipelineManifest,
} from '../../pipelines/manifest';
import { table } from '../table';

function manifestFrom(file: string | undefined): PipelineManifest {
  const defaults = pipelineDefaultsFromEnv();
  return loadPipelineManifest({ ...defaults, PIPELINES_FILE: file ?? defaults.PIPELINES_FILE });
}

const featureText = (f: FeatureDeclaration): string =>
  f.kind === 'date-parts' ? `${f.column}:${f.parts.join('+')}` : `${f.column}:${f.kind}`;

function describePipeline(p: PipelineDefinition): Record<string, unknown> {
  return { ...p, encodingVersion: encodingVersion(p) };
}

function sourceText(manifest: PipelineManifest): string {
  return manifest.source === 'file'
    ? `from ${manifest.path}`
    : 'from the settings (PIPELINES_FILE unset: the single MODEL_NAME pipeline)';
}

export function register(program: Command): void {
  const pipelines = program
    .command('pipelines')
    .description('The models this deployment keeps fresh, as declared in PIPELINES_FILE.');

  pipelines
    .command('list')
    .description('List the declared pipelines with the settings each resolves to.')
    .option('--file <path>', 'pipelines file (default: PIPELINES_FILE)')
    .option('--json', 'print JSON instead of a table')
    .action((options: { file?: string; json?: boolean }) => {
      const manifest = manifestFrom(options.file);
      if (options.json) {
        const described = {
          source: manifest.source,
          ...(manifest.source === 'file' ? { path: manifest.path } : {}),
          pipelines: manifest.pipelines.map(describePipeline),
        };
        process.stdout.write(`${JSON.stringify(described, null, 2)}\n`);
        return;
      }
      process.stdout.write(`${manifest.pipelines.length} pipeline(s) ${sourceText(manifest)}\n`);
      process.stdout.write(
        table(
          [
            'name',
            'label',
            'features',
            'trees',
            'drops small/big',
            'deadlines h green/now',
            'window',
            'regions',
            'p99 ms',
          ],
          manifest.pipelines.map((p) => [
            p.name,
            p.label,
            p.features.map(featureText).join(' '),
            String(p.forest.trees),
            `${p.retrain.smallDrop}/${p.retrain.bigDrop}`,
            `${p.retrain.greenDeadlineHours}/${p.retrain.nowDeadlineHours}`,
            String(p.training.windowBatches),
            `${p.regions.residency}: ${p.regions.allowed.join(',')}`,
            String(p.serving.p99SloMs),
          ]),
        ),
      );
    });

  pipelines
    .command('validate')
    .description(
      'Check a pipelines file against the invoice columns and the settings; exits 2 naming every bad entry.',
    )
    .argument('[file]', 'pipelines file (default: PIPELINES_FILE)')
    .action((file: string | undefined) => {
      const manifest = manifestFrom(file);
      const lines = manifest.pipelines.map(
        (p) => `  ${p.name}: label ${p.label}, encoding ${encodingVersion(p)}\n`,
      );
      process.stdout.write(
        `valid: ${manifest.pipelines.length} pipeline(s) ${sourceText(manifest)}\n${lines.join('')}`,
      );
    });
}
