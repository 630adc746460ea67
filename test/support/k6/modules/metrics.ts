/** `k6/metrics`: Counter, Gauge, Rate, Trend; samples go to the main thread, which aggregates them. */
import type { MetricType } from '../protocol.js';
import { vu } from '../state.js';

abstract class Metric {
  protected constructor(
    readonly name: string,
    type: MetricType,
    isTime = false,
  ) {
    vu.declare(name, type, isTime);
  }

  add(value: number | boolean, tags?: Record<string, string>): void {
    if (vu.inInit) throw new Error(`metric "${this.name}": adding samples in the init context is not supported`);
    const v = typeof value === 'boolean' ? (value ? 1 : 0) : Number(value);
    if (!Number.isFinite(v)) throw new Error(`metric "${this.name}": ${String(value)} is not a number`);
    vu.emit(this.name, v, tags);
  }
}

/** A cumulative sum. */
export class Counter extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, 'counter', isTime);
  }
}

/** The last value (with min and max). */
export class Gauge extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, 'gauge', isTime);
  }
}

/** The share of non-zero values. */
export class Rate extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, 'rate', isTime);
  }
}

/** A distribution (avg, min, med, max, percentiles). */
export class Trend extends Metric {
  constructor(name: string, isTime?: boolean) {
    super(name, 'trend', isTime);
  }
}
