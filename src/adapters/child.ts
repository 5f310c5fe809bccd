import { constants } from 'node:os';
import { ExitCode } from '../core/errors.js';

/** Signals that cancel a wrapped command: passed on to it, and the deployment is recorded as cancelled. */
export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

export interface ChildOutcome {
  /** What deployctl exits with: the command's code, 128+N for signal N, 127/126 when it could not start. */
  exitCode: number;
  /** The signal deployctl received and passed on, if any. */
  cancelledBy?: ForwardedSignal;
  /** Why the command could not be started, if it could not: then nothing is recorded. */
  startError?: string;
  /** Monotonic clock, seconds. */
  durationSeconds: number;
}

export interface RunChildOptions {
  shell: boolean;
  /** How long a command may take to exit after a passed-on signal before it is killed. */
  killAfterMs: number;
  /** The command's environment (deployctl's credentials already removed). */
  env: Record<string, string | undefined>;
  /** Called once the command has started. */
  onSpawn?: () => void;
  /**
   * Whether deployctl runs at a terminal. Ctrl-C there goes to the whole foreground process
   * group, the command included, so SIGINT is not passed on a second time.
   */
  interactive?: boolean;
}

/** Variables whose names say they hold a secret. */
const SECRET_NAME = /^DEPLOYCTL_.*(PASSWORD|TOKEN|SECRET)/;
/** Variables that hold a URL deployctl reads, which may carry a user and password. */
const URL_NAME = /^DEPLOYCTL_.*_URL$/;

/** The wrapped command's environment: deployctl's own credentials removed, URLs without theirs. */
export function childEnvironment(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const scrubbed: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(env)) {
    if (SECRET_NAME.test(name)) continue;
    if (URL_NAME.test(name) && value !== undefined) {
      try {
        const url = new URL(value);
        url.username = '';
        url.password = '';
        // An @ left after that is a malformed URL (a password with / or @ in it, not percent-encoded)
        // whose password may now read as part of its path: leave it out.
        if (!url.toString().includes('@')) scrubbed[name] = url.toString();
      } catch {
        // not a URL deployctl could use; it may still hold a password: leave it out
      }
      continue;
    }
    scrubbed[name] = value;
  }
  return scrubbed;
}

function signalExitCode(signal: string): number {
  return 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0);
}

/** A command that could not be started: 127 when it is not found, 126 for anything else. */
function notStarted(file: string, error: NodeJS.ErrnoException, durationSeconds: number): ChildOutcome {
  const notFound = error.code === 'ENOENT';
  return {
    durationSeconds,
    exitCode: notFound ? ExitCode.notFound : ExitCode.cannotExecute,
    startError: notFound ? `${file}: command not found` : `${file}: cannot execute (${error.code ?? error.message})`,
  };
}

/**
 * Runs the command with the terminal's stdin, stdout and stderr, so that output streams live,
 * byte for byte, and colours survive. Without `shell`, arguments pass through untouched.
 * node:child_process, not execa: with inherited stdio nothing of what execa adds is used, and
 * loading it delayed every deploy command's start by ~25 ms.
 */
export async function runChild(command: readonly string[], options: RunChildOptions): Promise<ChildOutcome> {
  const { spawn } = await import('node:child_process');
  const [file, ...args] = command;
  // process.hrtime, not performance.now(): the same monotonic clock, without loading perf_hooks.
  const started = process.hrtime.bigint();
  const common = { stdio: 'inherit', env: options.env } as const;
  let subprocess: ReturnType<typeof spawn>;
  try {
    subprocess = options.shell ? spawn(command.join(' '), { ...common, shell: true }) : spawn(file!, args, common);
  } catch (error) {
    // Some start errors (ENOTDIR, ELOOP, ENAMETOOLONG, …) are thrown at once rather than emitted.
    return notStarted(file!, error as NodeJS.ErrnoException, 0);
  }
  let spawned = false;
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | { error: NodeJS.ErrnoException }>(
    (done) => {
      // An error before 'spawn' means the command never started; later ones (a failed kill) change nothing.
      subprocess.on('error', (error: NodeJS.ErrnoException) => {
        if (!spawned) done({ error });
      });
      subprocess.once('exit', (code, signal) => done({ code, signal }));
    },
  );
  subprocess.once('spawn', () => {
    spawned = true;
    options.onSpawn?.();
  });

  let cancelledBy: ForwardedSignal | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const handlers = FORWARDED_SIGNALS.map((signal) => {
    const handler = () => {
      cancelledBy ??= signal;
      const fromTerminal = options.interactive && (signal === 'SIGINT' || signal === 'SIGHUP');
      if (!fromTerminal) subprocess.kill(signal);
      killTimer ??= setTimeout(() => subprocess.kill('SIGKILL'), options.killAfterMs);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });

  try {
    const result = await ended;
    const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const base = { durationSeconds, ...(cancelledBy && { cancelledBy }) };
    // Not started at all (a started command's errors come as its exit code).
    if ('error' in result)
      return { ...notStarted(file!, result.error, durationSeconds), ...(cancelledBy && { cancelledBy }) };
    // Cancelled by a signal deployctl received: 128+N of that signal, whatever the command did then.
    if (cancelledBy) return { ...base, exitCode: signalExitCode(cancelledBy) };
    if (result.signal) return { ...base, exitCode: signalExitCode(result.signal) };
    return { ...base, exitCode: result.code ?? ExitCode.failure };
  } finally {
    clearTimeout(killTimer);
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}
