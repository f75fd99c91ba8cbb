/**
 * Build progress for people and machines: a live task list (listr2) on a TTY,
 * plain lines when not a TTY or when CI is set, nothing with --json (the result
 * object is printed at the end instead).
 */
import type { BuildEvents, StageName } from '../pipeline/build.js';

export type ProgressMode = 'tty' | 'plain' | 'silent';

export function progressMode(json: boolean): ProgressMode {
  if (json) return 'silent';
  return process.stderr.isTTY && !process.env.CI ? 'tty' : 'plain';
}

function ms(n: number): string {
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`;
}

export interface Progress {
  events: BuildEvents;
  /** Wait for the display to settle; `error` marks the running stage failed. */
  finish(error?: unknown): Promise<void>;
}

/**
 * `stages`: every step the build reports, in order, with its title (the build
 * module's STAGES, passed in so this module loads without the pipeline).
 */
export async function createProgress(
  mode: ProgressMode,
  stages: readonly { name: StageName; title: string }[],
): Promise<Progress> {
  if (mode === 'silent') return { events: {}, finish: async () => {} };
  if (mode === 'plain') {
    return {
      events: {
        stageEnd: (name, i) =>
          console.error(
            `kjx: ${name}: ${i.cached ? 'cached' : 'done'}${i.detail ? ` (${i.detail})` : ''} in ${ms(i.ms)}`,
          ),
        progress: (name, text) => console.error(`kjx: ${name}: ${text}`),
      },
      finish: async () => {},
    };
  }
  type Deferred = {
    resolve: (t: string) => void;
    reject: (e: unknown) => void;
    promise: Promise<string>;
    output?: (s: string) => void;
  };
  const waits = new Map<StageName, Deferred>();
  for (const s of stages) {
    let resolve!: (t: string) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    waits.set(s.name, { resolve, reject, promise });
  }
  const { Listr } = await import('listr2');
  const list = new Listr(
    stages.map((s) => ({
      title: s.title,
      task: async (_ctx: unknown, task: { title: string; output: string }) => {
        const d = waits.get(s.name)!;
        d.output = (text) => {
          task.output = text;
        };
        task.title = `${s.title}: ${await d.promise}`;
      },
    })),
    { concurrent: false, exitOnError: true, rendererOptions: { collapseErrors: false } },
  );
  const running = list.run().catch(() => {});
  return {
    events: {
      stageEnd: (name, i) =>
        waits
          .get(name)!
          .resolve(`${i.cached ? 'cached' : 'done'}${i.detail ? `, ${i.detail}` : ''} (${ms(i.ms)})`),
      progress: (name, text) => waits.get(name)!.output?.(text),
    },
    async finish(error) {
      if (error)
        for (const d of waits.values()) d.reject(error instanceof Error ? error : new Error(String(error)));
      await running;
    },
  };
}
