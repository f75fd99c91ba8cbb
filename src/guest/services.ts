/**
 * Services: the spec's `services:` plus kjx's built-in ones (ssh, console), each
 * turned into a runit service directory under /etc/sv/NAME with `run`, `finish`,
 * `check`, `control/t` and `log/run` as needed, enabled by a symlink in /etc/service.
 * How `needs` and `ready` map onto runit is told in docs/services.md.
 */
import { addEntry, type EntrySource, mk, newTree, type Tree } from '../rootfs/tree.js';
import type { ServiceSpec, Spec, StopSignal } from '../spec/schema.js';
import { CONSOLE_SERVICE, DEFAULT_READY_TIMEOUT } from '../spec/values.js';
import { type DependencyGraph, dependencyLevels, dependentsOf, longestChain } from '../util/graph.js';
import { FINISH_TIMEOUT, logDir, SERVICE_DIR, SUPERVISE_DIR, SV_DIR, SV_LIB } from './layout.js';
import { acpidService, powerButtonOn } from './power-button.js';
import { checkScript, readinessLines } from './readiness.js';
import { script, shQuote } from './shell.js';
import { sshService } from './ssh.js';

/** One service as the generator sees it: the spec's shape plus what built-ins need. */
export interface GuestService {
  name: string;
  spec: ServiceSpec;
  /** Shell lines run after the dependencies are ready, before the program starts. */
  prelude?: string[];
  /**
   * How the program starts, instead of `chpst -P [-u USER] /bin/sh -c RUN` (the
   * console shell needs its own session and the console as its terminal).
   */
  execLine?: string;
  /** stdin, stdout and stderr on /dev/console (the console shell). */
  onConsole?: boolean;
}

/** The console shell: restarted when it exits; interactive ash ignores TERM, so KILL stops it. */
function consoleService(): GuestService {
  return {
    name: CONSOLE_SERVICE,
    spec: {
      run: 'sh -l',
      needs: [],
      ready: { kind: 'started', timeout: DEFAULT_READY_TIMEOUT },
      restart: { policy: 'always', delay: 1, maxDelay: 1 },
      user: 'root',
      env: {},
      log: null,
      stopSignal: 'KILL',
    },
    prelude: ['cd "$HOME"'],
    execLine: 'exec setsid cttyhack /bin/sh -l',
    onConsole: true,
  };
}

/** Every service of the image: the spec's in file order, then ssh, console and acpid when on. */
export function guestServices(spec: Spec): GuestService[] {
  const out: GuestService[] = Object.entries(spec.services).map(([name, s]) => ({ name, spec: s }));
  if (spec.ssh.enabled) out.push(sshService(spec.ssh));
  if (spec.console === 'shell') out.push(consoleService());
  if (powerButtonOn(spec)) out.push(acpidService());
  return out;
}

/**
 * The services as the image runs them: a service's `before` list turned into
 * `needs` of the services it names (a tracer before a component's etcd), so the
 * generator, the start levels and the boot timeout see one kind of edge.
 */
export function withBefore(services: GuestService[]): GuestService[] {
  const extra = new Map<string, string[]>();
  for (const s of services)
    for (const target of (s.spec.before ?? []).filter((t) => t !== s.name))
      extra.set(target, [...(extra.get(target) ?? []), s.name]);
  if (extra.size === 0) return services;
  return services.map((s) => {
    const add = (extra.get(s.name) ?? []).filter((n) => !s.spec.needs.includes(n));
    return add.length === 0 ? s : { ...s, spec: { ...s.spec, needs: [...s.spec.needs, ...add] } };
  });
}

export function serviceGraph(services: GuestService[]): DependencyGraph {
  return new Map(services.map((s) => [s.name, s.spec.needs]));
}

/** Start order by levels (level 0 needs nothing); stop order is the reverse. */
export function serviceLevels(services: GuestService[]): string[][] {
  return dependencyLevels(serviceGraph(services));
}

/**
 * How long boot waits for every service to be ready before it reports the stragglers:
 * the slowest chain of ready timeouts.
 */
export function bootReadyTimeout(services: GuestService[]): number {
  const timeout = new Map(services.map((s) => [s.name, s.spec.ready.timeout]));
  return Math.max(
    1,
    longestChain(serviceGraph(services), (n) => timeout.get(n) ?? 0),
  );
}

/** Home directory of a guest user (root unless the spec says otherwise). */
function homeOf(spec: Spec, user: string): string {
  return spec.users.find((u) => u.name === user)?.home ?? (user === 'root' ? '/root' : `/home/${user}`);
}

/** Words that mean the same to sh and to execvp: no quoting, expansion or assignment. */
const PLAIN_FIRST = /^[A-Za-z0-9_./+@%-]+$/;
const PLAIN_WORD = /^[A-Za-z0-9_./+@%:=,-]+$/;

/**
 * The program part of the exec line: a plain command line is exec'd as it is (one
 * exec less, ~40 ms under TCG); anything else goes through `sh -c`, whose busybox
 * ash execs its last simple command, so the program is still runsv's (or the
 * wrapper's) direct child.
 */
export function programWords(run: string): string {
  const words = run.trim().split(/ +/);
  if (PLAIN_FIRST.test(words[0] ?? '') && words.every((w) => PLAIN_WORD.test(w))) return words.join(' ');
  return `/bin/sh -c ${shQuote(run)}`;
}

/** runit's chpst, by its path: the spec's `env` may set PATH just before it runs. */
const CHPST = '/usr/bin/chpst';

/**
 * The spec's `env` as shell lines. They run last, just before the program is
 * exec'd (in the wrapper's case, in the subshell that becomes the program), so
 * no kjx shell code runs with the service's IFS, PATH or ENV.
 */
function envExports(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `export ${k}=${shQuote(v)}`);
}

/**
 * The wrapper of `ready: signal`: trap USR1 (`onReady`), forward stop signals to
 * the program, start it in the background and wait for it; exit with its status.
 * The program's environment (`env`) is set in its own subshell: the wrapper keeps kjx's.
 */
function signalWrapper(
  name: string,
  onReady: string,
  program: string,
  env: string[],
  dir?: string,
): string[] {
  return [
    'kjx_child=',
    `trap ${shQuote(onReady)} USR1`,
    ...['TERM', 'INT', 'HUP', 'QUIT', 'USR2'].map((sig) => `trap 'kjx_forward ${sig}' ${sig}`),
    'export KJX_NOTIFY_PID=$$',
    env.length > 0 ? `(${env.join('; ')}; exec ${program}) &` : `${program} &`,
    'kjx_child=$!',
    `kjx_wait_child ${shQuote(name)}${dir ? ` ${dir}` : ''}`,
  ];
}

function runScript(spec: Spec, svc: GuestService): string {
  const s = svc.spec;
  const name = shQuote(svc.name);
  const lines: string[] = [];
  lines.push(svc.onConsole ? 'exec </dev/console >/dev/console 2>&1' : 'exec 2>&1');
  lines.push(`. ${SV_LIB}`);
  lines.push(
    `kjx_begin ${name} ${s.restart.delay} ${s.restart.maxDelay}${s.needs.map((n) => ` ${shQuote(n)}`).join('')}`,
  );
  const home = homeOf(spec, s.user);
  lines.push(`export HOME=${shQuote(home)} USER=${shQuote(s.user)} LOGNAME=${shQuote(s.user)}`);
  const env = envExports(s.env);
  if (svc.prelude) lines.push(...svc.prelude);
  // chpst -P: the program leads its own process group, which finish cleans up
  const program =
    svc.execLine ?? `${CHPST} -P ${s.user === 'root' ? '' : `-u ${shQuote(s.user)} `}${programWords(s.run)}`;
  if (s.ready.kind === 'signal' && (s.user === 'root' || svc.execLine)) {
    // runsv dies on SIGUSR1: this shell stays the program's parent and traps it.
    lines.push(...signalWrapper(svc.name, `kjx_set_ready ${name} $$`, program.replace(/^exec /, ''), env));
  } else if (s.ready.kind === 'signal') {
    // A program running as USER may not signal a root shell: the wrapper runs as
    // USER too, in the process group kjx_begin recorded, and leaves a file in a
    // directory of its own, which a root poller turns into readiness.
    const dir = `"$KJX_STATE/svc/${svc.name}/user"`;
    const wrapper = signalWrapper(svc.name, `echo $$ >${dir}/signalled`, programWords(s.run), env, dir);
    lines.push(
      `[ -d ${dir} ] || mkdir ${dir}`,
      `chown ${shQuote(s.user)} ${dir}`,
      `kjx_rm ${dir}/signalled ${dir}/child`,
      `kjx_poll_ready ${name} file ${dir}/signalled`,
      `exec ${CHPST} -P -u ${shQuote(s.user)} /bin/sh -c ${shQuote([`. ${SV_LIB}`, ...wrapper].join('\n'))}`,
    );
  } else {
    lines.push(...readinessLines(svc.name, s.ready));
    if (env.length > 0)
      lines.push("# the service's environment, last: kjx's own lines above ran without it", ...env);
    lines.push(program.startsWith('exec ') ? program : `exec ${program}`);
  }
  return script(`run of service ${svc.name}`, lines);
}

function finishScript(svc: GuestService, dependents: string[]): string {
  const s = svc.spec;
  const name = shQuote(svc.name);
  const lines = [
    '# $1: exit code of run, or -1 if a signal ended it; $2: the signal (runsv)',
    svc.onConsole ? 'exec </dev/null >/dev/console 2>&1' : 'exec 2>&1',
    `. ${SV_LIB}`,
    `kjx_finish ${name} "$1" "$2"${dependents.map((d) => ` ${shQuote(d)}`).join('')}`,
  ];
  if (s.finish !== undefined) {
    // runit has no finish timeout, and a hung finish blocks restarts
    lines.push(`timeout -s KILL ${FINISH_TIMEOUT} /bin/sh -c ${shQuote(s.finish)} </dev/null`);
  }
  lines.push(`kjx_restart ${name} ${s.restart.policy} "$1"`);
  return script(`finish of service ${svc.name}`, lines);
}

/** control/t: runsv runs it for `sv term` and `sv down`; exit 0 means "done, send no TERM". */
function stopScript(svc: GuestService, signal: StopSignal): string {
  return script(`stop signal of service ${svc.name}: ${signal} instead of TERM`, [
    'read -r pid <supervise/pid 2>/dev/null && [ -n "$pid" ] && [ "$pid" != 0 ] || exit 1',
    `kill -s ${signal} "$pid"`,
  ]);
}

function logScript(svc: GuestService, size: number, keep: number): string {
  const dir = logDir(svc.name);
  return script(`log of service ${svc.name}`, [
    `mkdir -p ${dir}`,
    `printf 's%s\\nn%s\\n' ${size} ${keep} >${dir}/config`,
    `exec svlogd -tt ${dir}`,
  ]);
}

/** The service directories, their /etc/service links, and the supervise links into /run. */
export function serviceTree(spec: Spec, services: GuestService[]): Tree {
  const src: EntrySource = { kind: 'generated', by: 'kjx services' };
  const t = newTree();
  addEntry(t, mk.dir(SV_DIR, src));
  addEntry(t, mk.dir(SERVICE_DIR, src));
  const graph = serviceGraph(services);
  for (const svc of services) {
    const dir = `${SV_DIR}/${svc.name}`;
    addEntry(t, mk.dir(dir, src));
    addEntry(t, mk.file(`${dir}/run`, runScript(spec, svc), src, 0o755));
    addEntry(t, mk.file(`${dir}/finish`, finishScript(svc, dependentsOf(graph, svc.name)), src, 0o755));
    addEntry(t, mk.file(`${dir}/check`, checkScript(svc.name), src, 0o755));
    addEntry(t, mk.symlink(`${dir}/supervise`, `${SUPERVISE_DIR}/${svc.name}`, src));
    if (svc.spec.stopSignal !== 'TERM') {
      addEntry(t, mk.dir(`${dir}/control`, src));
      addEntry(t, mk.file(`${dir}/control/t`, stopScript(svc, svc.spec.stopSignal), src, 0o755));
    }
    if (svc.spec.log) {
      addEntry(t, mk.dir(`${dir}/log`, src));
      addEntry(
        t,
        mk.file(`${dir}/log/run`, logScript(svc, svc.spec.log.size, svc.spec.log.keep), src, 0o755),
      );
      addEntry(t, mk.symlink(`${dir}/log/supervise`, `${SUPERVISE_DIR}/${svc.name}.log`, src));
    }
    addEntry(t, mk.symlink(`${SERVICE_DIR}/${svc.name}`, dir, src));
  }
  return t;
}

/** The runsv state directories stage 1 creates in /run (the supervise links point there). */
export function superviseDirs(services: GuestService[]): string[] {
  return services.flatMap((s) => [
    `${SUPERVISE_DIR}/${s.name}`,
    ...(s.spec.log ? [`${SUPERVISE_DIR}/${s.name}.log`] : []),
  ]);
}
