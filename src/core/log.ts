/**
 * Output for every command. All text passes through mask() before it reaches a stream.
 *
 * - info/warn/error go to stderr, so that stdout carries only machine-readable output (a diff, a
 *   digest) where a command prints one;
 * - section() wraps noisy sub-output in a GitLab collapsible section when GITLAB_CI is set, and in a
 *   plain header otherwise;
 * - summary() prints the one-line result every command ends with.
 */
import { mask } from './mask.js';

export interface LogSink {
  out(text: string): void;
  err(text: string): void;
}

const processSink: LogSink = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

let sectionSeq = 0;

export class Logger {
  readonly gitlab: boolean;
  verbose: boolean;
  private readonly sink: LogSink;
  private colorSet: boolean | undefined;

  /**
   * colours on stderr: asked on first use, not at start-up (process.stderr loads Node's stream modules, a
   * quarter of what `gitops-ci --version` costs over `node -e 0`)
   */
  get color(): boolean {
    return (this.colorSet ??= this.gitlab || (process.stderr.isTTY ?? false));
  }

  constructor(opts: { gitlab?: boolean; color?: boolean; verbose?: boolean; sink?: LogSink } = {}) {
    this.gitlab = opts.gitlab ?? process.env.GITLAB_CI === 'true';
    this.colorSet = opts.color;
    this.verbose = opts.verbose ?? false;
    this.sink = opts.sink ?? processSink;
  }

  private paint(code: string, s: string): string {
    return this.color ? `\x1b[${code}m${s}\x1b[0m` : s;
  }

  /** machine-readable output: stdout, masked */
  stdout(text: string): void {
    this.sink.out(mask(text));
  }

  info(msg: string): void {
    this.sink.err(mask(msg) + '\n');
  }

  debug(msg: string): void {
    if (this.verbose) this.sink.err(this.paint('2', mask(msg)) + '\n');
  }

  warn(msg: string): void {
    this.sink.err(this.paint('33', `warning: ${mask(msg)}`) + '\n');
  }

  error(msg: string): void {
    this.sink.err(this.paint('31', `error: ${mask(msg)}`) + '\n');
  }

  /** raw masked text on stderr, for streamed sub-output (build logs, git progress) */
  raw(text: string): void {
    this.sink.err(mask(text));
  }

  sectionStart(title: string, opts: { collapsed?: boolean; name?: string } = {}): string {
    const name = (opts.name ?? `gitops_${title}`).toLowerCase().replace(/[^a-z0-9_.-]+/g, '_') + `_${++sectionSeq}`;
    if (this.gitlab) {
      const ts = Math.floor(Date.now() / 1000);
      const flag = opts.collapsed === false ? '' : '[collapsed=true]';
      this.sink.err(`\x1b[0Ksection_start:${ts}:${name}${flag}\r\x1b[0K${mask(title)}\n`);
    } else {
      this.sink.err(this.paint('36', `── ${mask(title)}`) + '\n');
    }
    return name;
  }

  sectionEnd(name: string): void {
    if (this.gitlab) {
      const ts = Math.floor(Date.now() / 1000);
      this.sink.err(`\x1b[0Ksection_end:${ts}:${name}\r\x1b[0K\n`);
    }
  }

  async section<T>(title: string, fn: () => Promise<T>, opts: { collapsed?: boolean } = {}): Promise<T> {
    const name = this.sectionStart(title, opts);
    try {
      return await fn();
    } finally {
      this.sectionEnd(name);
    }
  }

  /** the one-line result a command ends with */
  summary(ok: boolean, line: string): void {
    this.sink.err(this.paint(ok ? '32' : '31', `${ok ? '✔' : '✖'} ${mask(line)}`) + '\n');
  }
}
