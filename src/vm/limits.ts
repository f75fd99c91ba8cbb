/**
 * `--timeout` and `--silence`, watched the same way wherever a guest is waited for
 * (an ephemeral run, a detached boot until ready, a command over SSH): a wall-clock
 * bound from a start, and a bound on the time since the last output of any kind.
 */
import type { Limits } from './guest.js';

export interface LimitHit {
  outcome: 'timeout' | 'silence';
  message: string;
}

export interface LimitWatch {
  /** Resolves when a limit is reached; never, if none is. */
  hit: Promise<LimitHit>;
  cancel(): void;
}

/**
 * Watch `limits` from `startedAt` (`performance.now()` ms). `lastOutputAt` tells
 * when anything last came from the guest; `late` completes the timeout message
 * ("the run did not finish", "the guest did not become ready").
 */
export function watchLimits(
  limits: Limits,
  o: { startedAt: number; lastOutputAt(): number; late: string },
): LimitWatch {
  const timers: NodeJS.Timeout[] = [];
  const hit = new Promise<LimitHit>((resolve) => {
    const { timeoutS, silenceS } = limits;
    if (timeoutS !== undefined && timeoutS > 0) {
      const left = Math.max(0, o.startedAt + timeoutS * 1000 - performance.now());
      timers.push(
        setTimeout(
          () => resolve({ outcome: 'timeout', message: `${o.late} within --timeout ${timeoutS}s` }),
          left,
        ),
      );
    }
    if (silenceS !== undefined && silenceS > 0) {
      timers.push(
        setInterval(() => {
          if (performance.now() - o.lastOutputAt() > silenceS * 1000)
            resolve({
              outcome: 'silence',
              message: `no output from the guest for ${silenceS}s (--silence); it looks hung`,
            });
        }, 250),
      );
    }
  });
  return {
    hit,
    cancel: () => {
      for (const t of timers) clearTimeout(t);
    },
  };
}
