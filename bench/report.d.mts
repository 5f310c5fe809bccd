export interface Stats {
  label: string;
  median: number;
  min: number;
  max: number;
  samples?: number[];
}
export interface Row {
  id: number | string;
  name: string;
  target: { text: string; ratio: number; peakMB?: number };
  a?: Stats;
  b?: Stats;
  ratio?: number;
  peakMB?: number;
  floorPeakMB?: number;
  met?: boolean;
  skipped?: string;
  failed?: string;
  /** Row 7: records a `flush` sent per second, with its exit code. */
  throughput?: { records: number; kept: number; seconds: number; perSecond: number; exitCode: number | null };
}
export interface Report {
  date: string;
  commit: string;
  node: string;
  cpus: number;
  cpuModel: string;
  runs: number;
  slowRuns: number;
  peakMethod: string;
  rows: Row[];
}
export const BEGIN: string;
export const END: string;
export function side(stats: Stats): string;
export function tableLines(report: Report): string[];
export function summaryLine(report: Report): string;
export function withTable(text: string, report: Report): string;
