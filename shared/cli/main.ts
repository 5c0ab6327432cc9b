import { Command, CommanderError } from 'commander';
import { isGreenMlError } from '../errors';

/**
 * Each command lives in its own module under ./commands and adds itself to the program.
 * A command writes its result to stdout (JSON or a table) and diagnostics to stderr.
 */
type Register = (program: Command) => void;

/**
 * Commands that load on their own when named: `train` is timed end to end against scikit-learn
 * (bench:training), and the other commands' Azure SDKs cost it about 0.3 s of imports.
 */
const STANDALONE: Partial<Record<string, () => { register: Register }>> = {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  train: () => require('./commands/train') as { register: Register },
};

function loadCommands(argv: readonly string[] = []): Register[] {
  const standalone = STANDALONE[argv[2] ?? ''];
  if (standalone) return [standalone().register];
  // Listed explicitly (not discovered) so the compiled bin has no filesystem magic.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const modules: { register: Register }[] = [
    require('./commands/settings'),
    require('./commands/registry'),
    require('./commands/carbon'),
    require('./commands/generate'),
    require('./commands/report'),
    require('./commands/carbonBestWindow'),
    require('./commands/train'),
    require('./commands/evaluate'),
    require('./commands/pipelines'),
  ];
  /* eslint-enable @typescript-eslint/no-require-imports */
  return modules.map((m) => m.register);
}

export function buildProgram(argv?: readonly string[]): Command {
  const program = new Command('green-ml')
    .description('Carbon-aware retraining of invoice VAT-rate models: data, models, carbon, reports.')
    .showHelpAfterError()
    .exitOverride();
  for (const register of loadCommands(argv)) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode;
    }
    if (isGreenMlError(error)) {
      process.stderr.write(`error [${error.code}]: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return 1;
  }
}
