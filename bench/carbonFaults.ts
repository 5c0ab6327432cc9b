import { table } from '../shared/cli/table';
import { POLL_DEADLINE_MS, allCases, describeOutcome, runFault } from './support/carbonFaults';

/**
 * `npm run bench:carbon-faults`: the provider fault table. Every hostile reply (see
 * bench/support/carbonFaults.ts) against each provider's wire format on a loopback server, through
 * the fallback chain under one poll deadline; prints what was accepted, refused (and why) and what
 * answered instead, with the wall time each case took. Without the deadline a hanging provider cost
 * ~43 s per request (10 s × 4 tries) and `Retry-After: 3600` held a region 182 s; the elapsed column
 * shows both now end within the deadline.
 */
async function main(): Promise<void> {
  const rows: string[][] = [];
  let worstMs = 0;
  for (const { provider, fault } of allCases()) {
    const result = await runFault(provider, fault);
    const { outcome, detail } = describeOutcome(result);
    worstMs = Math.max(worstMs, result.elapsedMs);
    rows.push([provider, fault, result.operation, outcome, detail, result.elapsedMs.toFixed(0)]);
  }
  process.stdout.write(table(['provider', 'case', 'op', 'outcome', 'detail', 'elapsed ms'], rows));
  process.stdout.write(
    `\n${rows.length} cases; poll deadline ${POLL_DEADLINE_MS} ms; slowest case ${worstMs.toFixed(0)} ms (${(worstMs / POLL_DEADLINE_MS).toFixed(2)} × the deadline)\n`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
