/**
 * DORA performance bands, after the State of DevOps reports: 4 elite, 3 high, 2 medium, 1 low.
 * The same thresholds colour the dashboards (as PromQL) and `deployctl dora` (in TypeScript).
 */
export const BAND_NAMES = { 4: 'elite', 3: 'high', 2: 'medium', 1: 'low' } as const;
export type Band = keyof typeof BAND_NAMES;

const DAY = 86_400;

export interface KeyBands {
  /** Thresholds from elite to medium (each inclusive); a value past the last is low. */
  thresholds: readonly [number, number, number];
  /** Whether more is better (frequency) or less is (the others). */
  higherIsBetter: boolean;
  unit: string;
}

export const BANDS = {
  /** On demand (daily or more) / weekly to daily / monthly to weekly / less than monthly. */
  deploymentFrequency: { thresholds: [1, 1 / 7, 1 / 30], higherIsBetter: true, unit: 'deployments per day' },
  /** A day or less / a week or less / a month or less / more. */
  leadTime: { thresholds: [DAY, 7 * DAY, 30 * DAY], higherIsBetter: false, unit: 'seconds' },
  /** Up to 15% / up to 30% / up to 45% / more. */
  changeFailureRate: { thresholds: [0.15, 0.3, 0.45], higherIsBetter: false, unit: 'ratio' },
  /** An hour or less / a day or less / a week or less / more. */
  timeToRestore: { thresholds: [3_600, DAY, 7 * DAY], higherIsBetter: false, unit: 'seconds' },
  /**
   * Failed deployment recovery time, DORA's successor of time to restore, graded as it was: an
   * hour or less / a day or less / a week or less / more. DORA publishes no bands for the
   * deployment rework rate, so it has none here.
   */
  failedDeploymentRecoveryTime: { thresholds: [3_600, DAY, 7 * DAY], higherIsBetter: false, unit: 'seconds' },
} as const satisfies Record<string, KeyBands>;

export function band(key: KeyBands, value: number): Band {
  const passes = key.thresholds.filter((t) => (key.higherIsBetter ? value >= t : value <= t)).length;
  return (passes + 1) as Band;
}

/** The same as `band`, in PromQL: 1 + one for each threshold the value passes. */
export function bandPromql(key: KeyBands, expr: string): string {
  const op = key.higherIsBetter ? '>=' : '<=';
  return `(1 + ${key.thresholds.map((t) => `(${expr} ${op} bool ${t})`).join(' + ')})`;
}
