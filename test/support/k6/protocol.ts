/** Messages between the test-only k6 runtime's main thread (run.ts) and its VU workers (vu.ts). */

/** A metric kind, as k6 names them. */
export type MetricType = 'counter' | 'gauge' | 'rate' | 'trend';

/** A metric declaration: `new Trend('x', true)` is `{ name: 'x', type: 'trend', isTime: true }`. */
export interface MetricDecl {
  name: string;
  type: MetricType;
  isTime: boolean;
}

/** One sample: metric name, value, tags, ms since epoch. */
export interface Sample {
  metric: string;
  value: number;
  tags: Record<string, string>;
  time: number;
}

/** A check's outcome, for the summary's group tree. */
export interface CheckResult {
  group: string;
  name: string;
  ok: boolean;
}

/** What the init context of a script reported. */
export interface InitReport {
  options: unknown;
  exports: string[];
  metrics: MetricDecl[];
}

/** Main → worker. */
export type ToWorker =
  | { type: 'init' }
  | { type: 'call'; fn: 'setup' | 'teardown' | 'handleSummary'; arg?: unknown }
  | { type: 'iterate'; scenario: ScenarioInfo; exec: string; data: unknown; iterationInScenario: number; iterationInInstance: number }
  /** Sent after setting Cell.INTERRUPT: drop the iteration's pending work. */
  | { type: 'interrupt' };

/** The scenario an iteration belongs to, for k6/execution. */
export interface ScenarioInfo {
  name: string;
  executor: string;
  startTime: number;
}

/** Worker → main. */
export type FromWorker =
  | { type: 'init'; report: InitReport }
  | { type: 'init-error'; error: string }
  | { type: 'samples'; samples: Sample[]; checks: CheckResult[]; metrics: MetricDecl[] }
  | { type: 'done'; result?: unknown; error?: string; interrupted?: boolean }
  | { type: 'abort'; reason: string };

/** A synchronous HTTP request a worker asks the main thread to make (k6/http is blocking). */
export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  timeoutMs: number;
}

/** The answer to an {@link HttpRequest}. */
export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  durationMs: number;
  error: string;
  errorCode: number;
}

/** Cells of the Int32Array shared with each worker. */
export const Cell = {
  /** 1 while the VU's iteration is interrupted (ramp-down or end of the scenario). */
  INTERRUPT: 0,
  /** Set to 1 by the main thread once an HTTP response is on the port. */
  HTTP_READY: 1,
} as const;
