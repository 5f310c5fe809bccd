import type { CommandContext } from '../../context.js';
import { ExitCode } from '../../errors.js';
import { flushRemoteWrite, openRemoteWrite } from './send.js';

/** `deployctl flush` with --remote-write: sends the records kept for the store. */
export async function remoteWriteFlushCommand(context: CommandContext): Promise<number> {
  const { settings, reporter } = context;
  const client = openRemoteWrite(settings, reporter);
  try {
    const result = await flushRemoteWrite(context, client, { announce: !settings.json });
    if (settings.json) reporter.json({ sent: result.sent, remaining: result.remaining, corrupt: result.corrupt });
    else if (result.sent === 0 && result.remaining === 0) reporter.info('nothing kept: the outbox is empty');
    else reporter.info(`sent ${result.sent} kept record(s); ${result.remaining} still kept`);
    return result.remaining > 0 || result.corrupt > 0 ? ExitCode.failure : ExitCode.ok;
  } finally {
    client.close();
  }
}
