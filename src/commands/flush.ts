import type { CommandContext } from '../context.js';
import { openGateway } from '../deliver.js';
import { ExitCode } from '../errors.js';
import { Outbox } from '../outbox.js';
import { flushOutbox } from '../send.js';

/** `deployctl flush`: sends the records kept while the gateway was unreachable. */
export async function flushCommand(context: CommandContext): Promise<number> {
  const { settings, reporter } = context;
  if (settings.remoteWrite) return (await import('../backends/remote-write/flush.js')).remoteWriteFlushCommand(context);
  const gateway = openGateway(settings, reporter);
  try {
    const result = await flushOutbox(context, gateway, new Outbox(settings.stateDir), { announce: !settings.json });
    if (settings.json) reporter.json({ sent: result.sent, remaining: result.remaining, corrupt: result.corrupt });
    else if (result.sent === 0 && result.remaining === 0) reporter.info('nothing kept: the outbox is empty');
    else reporter.info(`sent ${result.sent} kept record(s); ${result.remaining} still kept`);
    return result.remaining > 0 || result.corrupt > 0 ? ExitCode.failure : ExitCode.ok;
  } finally {
    gateway.close();
  }
}
