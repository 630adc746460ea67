/** `createWorkload`: the backend named by SCALER_WORKLOAD (`kubernetes` or `local`). */
import type { Config } from '../../src/config.js';
import type { Workload, WorkloadDeps } from './workload.js';

export * from './workload.js';

/** Pick the backend from SCALER_WORKLOAD. The Kubernetes client and uWebSockets.js load only when used. */
export async function createWorkload(config: Config, deps: WorkloadDeps): Promise<Workload> {
  if (config.scalerWorkload === 'local') {
    const { createLocalWorkload } = await import('./local.js');
    return createLocalWorkload(config, deps);
  }
  const { createKubernetesWorkload } = await import('./kubernetes.js');
  return createKubernetesWorkload(config, deps);
}
