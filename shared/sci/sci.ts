import { z } from 'zod';
import type { Settings } from '../config';
import type { IntensityPoint, SignalType } from '../carbon/types';
import { ValidationError } from '../errors';
import { parseWith } from '../validation';
import { SERVE_FOOTPRINT_SCHEMA, type ServeFootprint } from '../serving/serveAccounting';
import {
  ENERGY_ESTIMATE_SCHEMA,
  energyOfBusyCpu,
  energyOfIntervals,
  energyOfReservation,
  type EnergyCoefficients,
  type EnergyEstimate,
  type UsageInterval,
} from './energy';
import {
  EMBODIED_ESTIMATE_SCHEMA,
  embodiedOfReservation,
  type EmbodiedCoefficients,
  type EmbodiedEstimate,
} from './embodied';

/**
 * Software Carbon Intensity, GSF SCI v1.1.0 (ISO/IEC 21031:2024): SCI = (E·I + M) per R.
 * E includes PUE, I is a location-based grid intensity (average or marginal, never market-based),
 * M is the embodied share, R the functional unit. A stage records every input with its source so
 * the figure can be checked; stages are summed into a run only when they share R (or after a
 * conversion that is written down next to the result).
 */

export type FunctionalUnitKind = 'retrain' | 'predictions-1000' | 'invoices-1000';
export const FUNCTIONAL_UNIT_KINDS = ['retrain', 'predictions-1000', 'invoices-1000'] as const;

/** How many raw things (runs, predictions, invoices) one unit of each R stands for. */
export const RAW_PER_FUNCTIONAL_UNIT: Readonly<Record<FunctionalUnitKind, number>> = Object.freeze({
  retrain: 1,
  'predictions-1000': 1000,
  'invoices-1000': 1000,
});

export const FUNCTIONAL_UNIT_SCHEMA = z.object({
  kind: z.enum(FUNCTIONAL_UNIT_KINDS),
  count: z.number().finite().nonnegative(),
});
export type FunctionalUnit = z.output<typeof FUNCTIONAL_UNIT_SCHEMA>;

/** R from a raw count: 2 500 predictions → `{ kind: 'predictions-1000', count: 2.5 }`. */
export function functionalUnitOf(kind: FunctionalUnitKind, rawCount: number): FunctionalUnit {
  return parseWith(
    FUNCTIONAL_UNIT_SCHEMA,
    { kind, count: rawCount / RAW_PER_FUNCTIONAL_UNIT[kind] },
    'functional unit',
  );
}

export type StageResourceSource = 'azure-monitor' | 'local-process' | 'function-cpu' | 'assumed';
export type StageName = 'evaluate' | 'plan' | 'train' | 'compare' | 'deploy' | 'serve' | 'poll';

export interface StageIntensity {
  readonly gramsPerKwh: number;
  readonly provider: string;
  readonly source: string;
  readonly signal: SignalType;
}

const STAGE_INTENSITY_SCHEMA = z.object({
  gramsPerKwh: z.number().finite().nonnegative(),
  provider: z.string().min(1),
  source: z.string().min(1),
  signal: z.enum(['average', 'marginal']),
});

export const STAGE_FOOTPRINT_SCHEMA = z.object({
  stage: z.string().min(1),
  region: z.string().min(1),
  startedAt: z.iso.datetime({ offset: true }),
  endedAt: z.iso.datetime({ offset: true }),
  intensity: STAGE_INTENSITY_SCHEMA,
  energy: ENERGY_ESTIMATE_SCHEMA,
  embodied: EMBODIED_ESTIMATE_SCHEMA,
  operationalGrams: z.number().nonnegative(),
  embodiedGrams: z.number().nonnegative(),
  totalGrams: z.number().nonnegative(),
  functionalUnit: FUNCTIONAL_UNIT_SCHEMA,
  /** null when R's count is 0 (a model API that served nothing): SCI is undefined, not C. */
  sciGramsPerUnit: z.number().nonnegative().nullable(),
  resourceSource: z.enum(['azure-monitor', 'local-process', 'function-cpu', 'assumed']),
  serving: SERVE_FOOTPRINT_SCHEMA.optional(),
});

export interface StageFootprint {
  readonly stage: StageName | (string & {});
  readonly region: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly intensity: StageIntensity;
  readonly energy: EnergyEstimate;
  readonly embodied: EmbodiedEstimate;
  readonly operationalGrams: number;
  readonly embodiedGrams: number;
  readonly totalGrams: number;
  readonly functionalUnit: FunctionalUnit;
  readonly sciGramsPerUnit: number | null;
  readonly resourceSource: StageResourceSource;
  /** Serve stages: the plan, reserved replica time, predictions and cold starts. */
  readonly serving?: ServeFootprint;
}

export type SciCoefficients = EnergyCoefficients &
  EmbodiedCoefficients & { readonly functionalUnit: FunctionalUnitKind };

export function coefficientsFromSettings(settings: Settings): SciCoefficients {
  return {
    cpuMinWattsPerVcpu: settings.CPU_MIN_WATTS_PER_VCPU,
    cpuMaxWattsPerVcpu: settings.CPU_MAX_WATTS_PER_VCPU,
    memoryKwhPerGbHour: settings.MEMORY_KWH_PER_GB_HOUR,
    pue: settings.PUE,
    embodiedGramsPerHost: settings.EMBODIED_GRAMS_PER_HOST,
    hostLifespanHours: settings.HOST_LIFESPAN_HOURS,
    hostVcpus: settings.HOST_VCPUS,
    functionalUnit: settings.SCI_FUNCTIONAL_UNIT,
  };
}

/** Intensity for the stage: one figure, or a series integrated over the stage (O = Σ E_t · I_t). */
export type StageIntensityInput = StageIntensity | { readonly series: readonly IntensityPoint[] };

export interface StageInput {
  readonly stage: StageName | (string & {});
  readonly region: string;
  readonly startedAt: string;
  readonly endedAt: string;
  /** Reserved vCPUs (ignored for `function-cpu`, whose share is its busy CPU time). */
  readonly cpuCores: number;
  readonly memoryGb: number;
  /** Measured CPU time; null = not measured (50 % is assumed and the record says so). */
  readonly cpuSeconds: number | null;
  readonly resourceSource: StageResourceSource;
  readonly functionalUnit: FunctionalUnit;
  readonly intensity: StageIntensityInput;
  /** Per-interval CPU time (Azure Monitor grains clipped to the stage), when known. */
  readonly intervals?: readonly UsageInterval[];
  /**
   * Seconds the reservation really held within the stage, when less than its wall time (a model
   * API scaled to zero reserves nothing while at zero); default the whole stage.
   */
  readonly reservedSeconds?: number;
  /** The serve stage's accounting, kept on the record for the report. */
  readonly serving?: ServeFootprint;
}

const STAGE_INPUT_SCHEMA = z
  .object({
    stage: z.string().min(1),
    region: z.string().min(1),
    startedAt: z.iso.datetime({ offset: true }),
    endedAt: z.iso.datetime({ offset: true }),
    cpuCores: z.number().finite().positive(),
    memoryGb: z.number().finite().nonnegative(),
    cpuSeconds: z.number().finite().nonnegative().nullable(),
    resourceSource: z.enum(['azure-monitor', 'local-process', 'function-cpu', 'assumed']),
    functionalUnit: FUNCTIONAL_UNIT_SCHEMA,
  })
  .superRefine((s, ctx) => {
    if (Date.parse(s.endedAt) < Date.parse(s.startedAt)) {
      ctx.addIssue({ code: 'custom', path: ['endedAt'], message: 'is before startedAt' });
    }
    if (s.resourceSource === 'function-cpu' && s.cpuSeconds === null) {
      ctx.addIssue({ code: 'custom', path: ['cpuSeconds'], message: 'required for function-cpu' });
    }
    if (s.resourceSource === 'assumed' && s.cpuSeconds !== null) {
      ctx.addIssue({
        code: 'custom',
        path: ['cpuSeconds'],
        message: 'must be null when resourceSource is assumed',
      });
    }
  });

const INTENSITY_POINT_SCHEMA = z.object({
  startsAt: z.iso.datetime({ offset: true }),
  durationMinutes: z.number().finite().positive(),
  gramsPerKwh: z.number().finite().nonnegative(),
  provider: z.string().min(1),
  source: z.string().min(1),
  signal: z.enum(['average', 'marginal']),
});
const SERIES_SCHEMA = z
  .array(INTENSITY_POINT_SCHEMA)
  .min(1, 'needs at least one point')
  .refine((points) => new Set(points.map((p) => p.signal)).size === 1, {
    message: 'mixes average and marginal signals',
  });

interface EnergySegment {
  startMs: number;
  endMs: number;
  energyKwh: number;
}

/**
 * O for energy segments over an intensity series. Each segment's energy is spread evenly over its
 * time (a constant power inside one grain) and split across the intensity intervals it overlaps;
 * time no point covers takes the nearest point, so a stage that outlives the series is not free.
 */
function operationalGramsOverSeries(
  segments: readonly EnergySegment[],
  series: readonly Pick<IntensityPoint, 'startsAt' | 'durationMinutes' | 'gramsPerKwh'>[],
): number {
  const points = series
    .map((p) => ({
      startMs: Date.parse(p.startsAt),
      endMs: 0,
      grams: p.gramsPerKwh,
      minutes: p.durationMinutes,
    }))
    .sort((a, b) => a.startMs - b.startMs)
    .map((p, i, all) => {
      const next = all[i + 1];
      const ownEnd = p.startMs + p.minutes * 60_000;
      // Overlapping points would count the same energy twice: the later point wins from its start.
      return { ...p, endMs: next ? Math.min(ownEnd, next.startMs) : ownEnd };
    });
  let grams = 0;
  for (const seg of segments) {
    const lengthMs = seg.endMs - seg.startMs;
    if (lengthMs <= 0 || seg.energyKwh === 0) continue;
    let coveredMs = 0;
    for (const p of points) {
      const overlapMs = Math.min(seg.endMs, p.endMs) - Math.max(seg.startMs, p.startMs);
      if (overlapMs <= 0) continue;
      coveredMs += overlapMs;
      grams += seg.energyKwh * (overlapMs / lengthMs) * p.grams;
    }
    const uncoveredMs = lengthMs - coveredMs;
    if (uncoveredMs > 0) {
      const midMs = (seg.startMs + seg.endMs) / 2;
      let nearest = points[0];
      let best = Infinity;
      for (const p of points) {
        const distance = midMs < p.startMs ? p.startMs - midMs : midMs > p.endMs ? midMs - p.endMs : 0;
        if (distance < best) {
          best = distance;
          nearest = p;
        }
      }
      grams += seg.energyKwh * (uncoveredMs / lengthMs) * nearest.grams;
    }
  }
  return grams;
}

function uniqueJoined(values: readonly string[]): string {
  return [...new Set(values)].join('+');
}

/** E, I, M and SCI of one stage, with every input's method and source kept on the record. */
export function footprintOfStage(
  input: StageInput,
  coefficients: EnergyCoefficients & EmbodiedCoefficients,
): StageFootprint {
  const s = parseWith(STAGE_INPUT_SCHEMA, input, `stage ${String(input?.stage)}`);
  const startMs = Date.parse(s.startedAt);
  const endMs = Date.parse(s.endedAt);
  const wallSeconds = (endMs - startMs) / 1000;

  let energy: EnergyEstimate;
  let embodied: EmbodiedEstimate;
  let segments: EnergySegment[];
  if (s.resourceSource === 'function-cpu') {
    const cpuSeconds = s.cpuSeconds ?? 0;
    energy = energyOfBusyCpu({ cpuSeconds, wallSeconds, memoryGb: s.memoryGb }, coefficients);
    embodied = embodiedOfReservation({ vcpus: 1, seconds: cpuSeconds }, coefficients);
    segments = [{ startMs, endMs, energyKwh: energy.energyKwh }];
  } else if (input.intervals && input.intervals.length > 0) {
    const intervalSeconds = input.intervals.reduce((sum, i) => sum + i.seconds, 0);
    if (Math.abs(intervalSeconds - wallSeconds) > 1) {
      throw new ValidationError(
        `Invalid stage ${s.stage}: intervals cover ${intervalSeconds} s but the stage lasted ${wallSeconds} s`,
        [{ path: 'intervals', message: 'must cover the stage from startedAt to endedAt' }],
      );
    }
    const result = energyOfIntervals(
      { vcpus: s.cpuCores, memoryGb: s.memoryGb, intervals: input.intervals },
      coefficients,
    );
    energy = result.total;
    embodied = embodiedOfReservation({ vcpus: s.cpuCores, seconds: wallSeconds }, coefficients);
    segments = result.intervals.map((i) => {
      const from = Date.parse(i.startsAt);
      return { startMs: from, endMs: from + i.seconds * 1000, energyKwh: i.energyKwh };
    });
  } else {
    const reservedSeconds = Math.min(wallSeconds, Math.max(0, input.reservedSeconds ?? wallSeconds));
    energy = energyOfReservation(
      {
        vcpus: s.cpuCores,
        memoryGb: s.memoryGb,
        wallSeconds: reservedSeconds,
        cpuSeconds: s.cpuSeconds === null ? null : Math.min(s.cpuSeconds, s.cpuCores * reservedSeconds),
      },
      coefficients,
    );
    embodied = embodiedOfReservation({ vcpus: s.cpuCores, seconds: reservedSeconds }, coefficients);
    segments = [{ startMs, endMs, energyKwh: energy.energyKwh }];
  }

  let intensity: StageIntensity;
  let operationalGrams: number;
  if ('series' in input.intensity) {
    const series = parseWith(SERIES_SCHEMA, input.intensity.series, `intensity series of stage ${s.stage}`);
    operationalGrams = operationalGramsOverSeries(segments, series);
    const effective =
      energy.energyKwh > 0
        ? operationalGrams / energy.energyKwh
        : series.reduce((sum, p) => sum + p.gramsPerKwh, 0) / series.length;
    intensity = {
      gramsPerKwh: effective,
      provider: uniqueJoined(series.map((p) => p.provider)),
      source: `series:${uniqueJoined(series.map((p) => p.source))}`,
      signal: series[0].signal,
    };
  } else {
    intensity = parseWith(STAGE_INTENSITY_SCHEMA, input.intensity, `intensity of stage ${s.stage}`);
    operationalGrams = energy.energyKwh * intensity.gramsPerKwh;
  }

  const totalGrams = operationalGrams + embodied.embodiedGrams;
  return {
    stage: s.stage,
    region: s.region,
    startedAt: s.startedAt,
    endedAt: s.endedAt,
    intensity,
    energy,
    embodied,
    operationalGrams,
    embodiedGrams: embodied.embodiedGrams,
    totalGrams,
    functionalUnit: s.functionalUnit,
    sciGramsPerUnit: s.functionalUnit.count > 0 ? totalGrams / s.functionalUnit.count : null,
    resourceSource: s.resourceSource,
    ...(input.serving ? { serving: input.serving } : {}),
  };
}

/**
 * How a stage measured in another R counts towards the run's R, e.g. "the serving period's 1000
 * predictions are attributed to the retrain that deployed the model: 12.4 of them per retrain".
 */
export interface UnitConversion {
  readonly from: FunctionalUnitKind;
  /** Units of the stage's R per one unit of the run's R. */
  readonly stageUnitsPerRunUnit: number;
  readonly note: string;
}

export const RUN_FOOTPRINT_SCHEMA = z.object({
  functionalUnit: FUNCTIONAL_UNIT_SCHEMA,
  energyKwh: z.number().nonnegative(),
  operationalGrams: z.number().nonnegative(),
  embodiedGrams: z.number().nonnegative(),
  totalGrams: z.number().nonnegative(),
  sciGramsPerUnit: z.number().nonnegative().nullable(),
  stagesIncluded: z.array(z.string()),
  conversions: z.array(
    z.object({
      stage: z.string(),
      from: FUNCTIONAL_UNIT_SCHEMA,
      stageUnitsPerRunUnit: z.number().nonnegative(),
      note: z.string(),
    }),
  ),
  stagesExcluded: z.array(
    z.object({
      stage: z.string(),
      functionalUnit: FUNCTIONAL_UNIT_SCHEMA,
      totalGrams: z.number().nonnegative(),
      reason: z.string(),
    }),
  ),
});
export type RunFootprint = z.output<typeof RUN_FOOTPRINT_SCHEMA>;

/**
 * SCI of a run per the run's R. Stages with the same R are summed as they are; a stage in another R
 * counts only through an explicit conversion (its SCI × stage units per run unit), which is listed
 * with the result; anything else is listed as excluded with its grams, never silently dropped.
 */
export function aggregateRun(
  stages: readonly StageFootprint[],
  functionalUnit: FunctionalUnit,
  conversions: readonly UnitConversion[] = [],
): RunFootprint {
  const unit = parseWith(FUNCTIONAL_UNIT_SCHEMA, functionalUnit, 'run functional unit');
  const out: RunFootprint = {
    functionalUnit: unit,
    energyKwh: 0,
    operationalGrams: 0,
    embodiedGrams: 0,
    totalGrams: 0,
    sciGramsPerUnit: null,
    stagesIncluded: [],
    conversions: [],
    stagesExcluded: [],
  };
  const add = (stage: StageFootprint, share: number): void => {
    out.energyKwh += stage.energy.energyKwh * share;
    out.operationalGrams += stage.operationalGrams * share;
    out.embodiedGrams += stage.embodiedGrams * share;
    out.totalGrams += stage.totalGrams * share;
    out.stagesIncluded.push(stage.stage);
  };
  for (const stage of stages) {
    if (stage.functionalUnit.kind === unit.kind) {
      add(stage, 1);
      continue;
    }
    const conversion = conversions.find((c) => c.from === stage.functionalUnit.kind);
    if (!conversion) {
      out.stagesExcluded.push({
        stage: stage.stage,
        functionalUnit: stage.functionalUnit,
        totalGrams: stage.totalGrams,
        reason: `measured per ${stage.functionalUnit.kind}, the run per ${unit.kind}, and no conversion was given`,
      });
      continue;
    }
    if (stage.sciGramsPerUnit === null || stage.functionalUnit.count === 0) {
      out.stagesExcluded.push({
        stage: stage.stage,
        functionalUnit: stage.functionalUnit,
        totalGrams: stage.totalGrams,
        reason: `no ${stage.functionalUnit.kind} were counted, so its SCI is undefined and cannot be converted`,
      });
      continue;
    }
    // Grams attributed to the run = SCI_stage × stage units per run unit × run units.
    const attributedGrams = stage.sciGramsPerUnit * conversion.stageUnitsPerRunUnit * unit.count;
    add(stage, stage.totalGrams > 0 ? attributedGrams / stage.totalGrams : 0);
    out.conversions.push({
      stage: stage.stage,
      from: stage.functionalUnit,
      stageUnitsPerRunUnit: conversion.stageUnitsPerRunUnit,
      note: conversion.note,
    });
  }
  out.sciGramsPerUnit = unit.count > 0 ? out.totalGrams / unit.count : null;
  return out;
}
