// What `deployctl verify` shows: one line per check with what it saw against its bound, then the
// verdict; under --json the measurements of every round and the verdict.
import type { CheckMeasurement, VerifyView } from '../commands/verify.js';
import type { Settings } from '../settings.js';
import type { Reporter } from './output.js';

/** Text from a server or a query, as one line of text: control characters escaped. */
function shown(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function labelsText(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).filter(([k]) => k !== '__name__');
  return pairs.length ? `{${pairs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}` : '';
}

const number = (value: number) => (Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6))));

/** What one check saw in one round, for a person. */
function seen(m: CheckMeasurement): string {
  if (m.verdict === 'error') return `no answer: ${m.error ?? 'unknown'}`;
  if (m.alerts !== undefined)
    return m.alerts.length === 0
      ? 'no alert firing'
      : `firing: ${m.alerts.map((a) => `${a.name}${a.startsAt ? ` since ${a.startsAt}` : ''}`).join(', ')}`;
  if (m.samples.length === 0) return 'no data';
  if (m.samples.length === 1) return `${number(m.samples[0]!.value)}${labelsText(m.samples[0]!.labels)}`;
  const bad = m.verdict === 'fail' ? ' (at least one out of bounds)' : '';
  return `${m.samples.length} series: ${m.samples
    .slice(0, 5)
    .map((s) => `${number(s.value)}${labelsText(s.labels)}`)
    .join(', ')}${m.samples.length > 5 ? ', …' : ''}${bad}`;
}

const MARK = { pass: 'ok  ', fail: 'FAIL', 'no-data': '??  ', error: '??  ' } as const;

export function renderVerify(
  view: VerifyView,
  settings: Pick<Settings, 'json'>,
  reporter: Reporter,
  recording?: unknown,
) {
  if (view.dryRun) {
    if (settings.json) {
      reporter.json({ dryRun: true, service: view.service, environment: view.environment, ...view.dryRun });
      return;
    }
    const lines = [
      `# deployctl verify --dry-run: ${view.service} in ${view.environment}; nothing is queried or recorded`,
      ...view.dryRun.queries.map((q) => `${shown(q.name)} (${q.bound}): ${shown(q.query)}\n  ${shown(q.request)}`),
      ...(view.dryRun.alertmanagerRequest ? [shown(view.dryRun.alertmanagerRequest)] : []),
    ];
    reporter.raw(`${lines.join('\n')}\n`);
    return;
  }
  if (settings.json) {
    reporter.json({
      service: view.service,
      environment: view.environment,
      result: view.result,
      prometheus: view.prometheus ?? null,
      alertmanager: view.alertmanager ?? null,
      startedAt: view.startedAt,
      finishedAt: view.finishedAt,
      for: view.forSeconds,
      interval: view.intervalSeconds,
      failureLimit: view.failureLimit,
      rounds: view.rounds,
      ...(recording !== undefined && { recording }),
    });
    return;
  }
  // The round that decided: the last failed one, else the last.
  const deciding =
    [...view.rounds].reverse().find((r) => r.checks.some((c) => c.verdict === 'fail')) ?? view.rounds.at(-1);
  for (const m of deciding?.checks ?? []) {
    reporter.info(
      `${MARK[m.verdict]} ${shown(m.name)}: ${shown(seen(m))}  (bound ${shown(m.bound)})  ${shown(m.query)}`,
    );
  }
  const rounds = `${view.rounds.length} round${view.rounds.length === 1 ? '' : 's'}`;
  const verdict = {
    pass: `verified: ${view.service} in ${view.environment} is healthy (${rounds})`,
    fail: `verification failed: ${view.service} in ${view.environment} (round ${deciding?.round ?? 0} of ${rounds})`,
    inconclusive: `verification inconclusive: ${view.service} in ${view.environment}: a check had no data or no answer in every round (${rounds})`,
  }[view.result ?? 'inconclusive'];
  reporter.info(shown(verdict));
}
