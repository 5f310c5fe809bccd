import type { GroupStatus } from '../../backends/backend.js';
import { openReader } from '../../backends/index.js';
import type { CommandContext } from '../context.js';

export interface StatusView {
  kind: 'status';
  groups: GroupStatus[];
  /** Where the groups were read, for "no deployments recorded on …". */
  shownUrl: string;
  job: string;
}

/** `deployctl status`: the latest deployment of each service and environment, newest first. */
export async function statusCommand({ settings, destination, reporter }: CommandContext): Promise<StatusView> {
  const filter = { job: settings.job, service: settings.service, environment: settings.environment };
  const reader = await openReader(destination, reporter, filter);
  try {
    const { groups, shownUrl } = await reader.status(filter);
    groups.sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0) || a.service.localeCompare(b.service));
    return { kind: 'status', groups, shownUrl, job: settings.job };
  } finally {
    reader.close();
  }
}
