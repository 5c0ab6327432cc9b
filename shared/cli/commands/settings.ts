import type { Command } from 'commander';
import { loadSettings, redactedSettings, settingDescriptions } from '../../config';

export function register(program: Command): void {
  program
    .command('settings')
    .description('Validate the settings from the environment and print them (secrets redacted).')
    .option('--describe', 'list every setting with its description instead')
    .action((options: { describe?: boolean }) => {
      if (options.describe) {
        for (const [key, text] of Object.entries(settingDescriptions()))
          process.stdout.write(`${key}\t${text}\n`);
        return;
      }
      process.stdout.write(`${JSON.stringify(redactedSettings(loadSettings()), null, 2)}\n`);
    });
}
