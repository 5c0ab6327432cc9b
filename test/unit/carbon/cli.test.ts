import { carbonCommand, carbonForecast, carbonNow, register } from '../../../shared/cli/commands/carbon';
import { Command } from 'commander';
import { loadTraceSeries, intensityAt } from '../../../shared/carbon/traceData';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, deps: { env: {}, out: (t: string) => out.push(t), err: (t: string) => err.push(t) } };
}

test('carbon now prints a table per region from the bundled traces at --at', async () => {
  const { out, err, deps } = capture();
  const readings = await carbonNow(
    { region: 'westeurope, swedencentral,northeurope', at: '2025-06-01T12:20:00Z' },
    deps,
  );
  const nl = intensityAt(loadTraceSeries('NL'), Date.parse('2022-06-01T12:00:00Z'));
  expect(readings.map((r) => [r.region, r.servedBy])).toEqual([
    ['westeurope', 'live'],
    ['swedencentral', 'live'],
    ['northeurope', 'annual-average'],
  ]);
  const text = out.join('');
  expect(text).toMatch(
    new RegExp(`^westeurope\\s+NL\\s+${nl.toFixed(1)}\\s+average\\s+trace\\s+trace:em_NL_2022`, 'm'),
  );
  expect(text).toMatch(/^northeurope\s+IE\s+\d+\.\d\s+average\s+annual-average/m);
  expect(err.join('')).toMatch(/live source failed for IE \[NO_DATA\]/);
});

test('carbon forecast --json gives the requested hours and marks realistic quality', async () => {
  const { out, deps } = capture();
  await carbonForecast(
    { region: 'francecentral', hours: '12', at: '2025-06-01T12:20:00Z', json: true },
    deps,
  );
  const parsed = JSON.parse(out.join('')) as { region: string; quality: string; points: unknown[] }[];
  expect(parsed).toHaveLength(1);
  expect(parsed[0]).toMatchObject({ region: 'francecentral', quality: 'realistic-simulated' });
  expect(parsed[0].points).toHaveLength(12);
});

test('bad options are typed errors', async () => {
  const { deps } = capture();
  await expect(carbonNow({ region: 'atlantis' }, deps)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  await expect(carbonForecast({ region: 'westeurope', hours: '100' }, deps)).rejects.toMatchObject({
    code: 'VALIDATION_FAILED',
  });
  await expect(carbonNow({ region: 'westeurope', at: 'yesterday' }, deps)).rejects.toMatchObject({
    code: 'VALIDATION_FAILED',
  });
  await expect(
    carbonNow({ region: 'uksouth', at: '2025-01-01T00:00:00Z', provider: 'ukcarbonintensity' }, deps),
  ).rejects.toThrow(/only works with the trace provider/);
});

test('the carbon group is shared so other modules can attach subcommands', () => {
  const program = new Command('green-ml');
  const early = carbonCommand(program);
  early.command('best-window');
  register(program);
  const group = program.commands.filter((c) => c.name() === 'carbon');
  expect(group).toHaveLength(1);
  expect(group[0].commands.map((c) => c.name()).sort()).toEqual(['best-window', 'forecast', 'now']);
});
