import { constants } from 'node:os';
import { execa } from 'execa';
import { ExitCode } from './errors.js';

/** Signals that cancel a wrapped command: passed on to it, and the deployment is recorded as cancelled. */
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

export interface ChildOutcome {
  /** What deployctl exits with: the command's code, 128+N for signal N, 127/126 when it could not start. */
  exitCode: number;
  /** The signal deployctl received and passed on, if any. */
  cancelledBy?: ForwardedSignal;
  /** Why the command could not be started, if it could not. */
  startError?: string;
  /** Monotonic clock, seconds. */
  durationSeconds: number;
}

export interface RunChildOptions {
  shell: boolean;
  /** How long a command may take to exit after a passed-on signal before it is killed. */
  killAfterMs: number;
  onSignal?: (signal: ForwardedSignal) => void;
}

function signalExitCode(signal: string): number {
  return 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0);
}

/**
 * Runs the command with the terminal's stdin, stdout and stderr, so that output streams live,
 * byte for byte, and colours survive. Without `shell`, arguments pass through untouched.
 */
export async function runChild(command: readonly string[], options: RunChildOptions): Promise<ChildOutcome> {
  const [file, ...args] = command;
  const started = performance.now();
  const subprocess = options.shell
    ? execa(command.join(' '), { shell: true, stdio: 'inherit', reject: false })
    : execa(file!, args, { stdio: 'inherit', reject: false });

  let cancelledBy: ForwardedSignal | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      cancelledBy ??= signal;
      options.onSignal?.(signal);
      subprocess.kill(signal);
      killTimer ??= setTimeout(() => subprocess.kill('SIGKILL'), options.killAfterMs);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });

  try {
    const result = await subprocess;
    const durationSeconds = (performance.now() - started) / 1000;
    const base = { durationSeconds, ...(cancelledBy && { cancelledBy }) };
    const code = (result as { code?: string }).code;
    if (result.failed && result.exitCode === undefined && !result.signal) {
      const notFound = code === 'ENOENT';
      return {
        ...base,
        exitCode: notFound ? ExitCode.notFound : ExitCode.cannotExecute,
        startError: notFound ? `${file}: command not found` : `${file}: cannot execute (${code ?? result.shortMessage})`,
      };
    }
    if (result.signal) return { ...base, exitCode: signalExitCode(result.signal) };
    return { ...base, exitCode: result.exitCode ?? ExitCode.failure };
  } finally {
    clearTimeout(killTimer);
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
