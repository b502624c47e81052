/**
 * Build progress for the job log.
 *
 * BuildKit sends `{id: 'moby.buildkit.trace', aux: <base64 protobuf>}`: a moby.buildkit.v1.StatusResponse
 *   message StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2; repeated VertexLog logs = 3; }
 *   message Vertex { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
 *                    Timestamp started = 5; Timestamp completed = 6; string error = 7; }
 *   message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
 * A tiny protobuf reader decodes that much; the printer shows it like `docker build --progress=plain`:
 * `#3 [2/4] RUN make`, then `#3 <log line>`, then `#3 DONE 1.2s` / `#3 CACHED` / `#3 ERROR: …`.
 *
 * The classic builder sends `{stream: 'Step 2/4 : RUN make\n'}` and output lines; they are printed as is.
 * Both keep the last lines of each step so that a failure can show them.
 */

// --------------------------------------------------------------------------------------------- protobuf

type Field = { no: number; wire: number; value: number | bigint | Buffer };

function* fields(buf: Buffer): Generator<Field> {
  let i = 0;
  const varint = (): bigint => {
    let r = 0n;
    let shift = 0n;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++];
      r |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return r;
      shift += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) yield { no, wire, value: varint() };
    else if (wire === 2) {
      const len = Number(varint());
      if (i + len > buf.length) throw new Error('truncated field');
      yield { no, wire, value: buf.subarray(i, i + len) };
      i += len;
    } else if (wire === 1) {
      yield { no, wire, value: buf.subarray(i, i + 8) };
      i += 8;
    } else if (wire === 5) {
      yield { no, wire, value: buf.subarray(i, i + 4) };
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

function timestamp(b: Buffer): number {
  let s = 0n;
  let n = 0n;
  for (const f of fields(b)) {
    if (f.no === 1 && f.wire === 0) s = f.value as bigint;
    if (f.no === 2 && f.wire === 0) n = f.value as bigint;
  }
  return Number(s) * 1000 + Number(n) / 1e6;
}

export interface Vertex {
  digest: string;
  name: string;
  cached: boolean;
  started?: number;
  completed?: number;
  error?: string;
}

export interface VertexLog {
  vertex: string;
  stream: number;
  msg: Buffer;
}

export interface StatusResponse {
  vertexes: Vertex[];
  logs: VertexLog[];
}

export function decodeStatus(buf: Buffer): StatusResponse {
  const out: StatusResponse = { vertexes: [], logs: [] };
  for (const f of fields(buf)) {
    if (f.wire !== 2) continue;
    const b = f.value as Buffer;
    if (f.no === 1) {
      const v: Vertex = { digest: '', name: '', cached: false };
      for (const g of fields(b)) {
        if (g.no === 1 && g.wire === 2) v.digest = (g.value as Buffer).toString();
        else if (g.no === 3 && g.wire === 2) v.name = (g.value as Buffer).toString();
        else if (g.no === 4 && g.wire === 0) v.cached = (g.value as bigint) !== 0n;
        else if (g.no === 5 && g.wire === 2) v.started = timestamp(g.value as Buffer);
        else if (g.no === 6 && g.wire === 2) v.completed = timestamp(g.value as Buffer);
        else if (g.no === 7 && g.wire === 2) v.error = (g.value as Buffer).toString();
      }
      out.vertexes.push(v);
    } else if (f.no === 3) {
      const l: VertexLog = { vertex: '', stream: 1, msg: Buffer.alloc(0) };
      for (const g of fields(b)) {
        if (g.no === 1 && g.wire === 2) l.vertex = (g.value as Buffer).toString();
        else if (g.no === 3 && g.wire === 0) l.stream = Number(g.value);
        else if (g.no === 4 && g.wire === 2) l.msg = Buffer.from(g.value as Buffer);
      }
      out.logs.push(l);
    }
  }
  return out;
}

// --------------------------------------------------------------------------------------------- printer

const KEEP = 20;
/** a Dockerfile step as BuildKit names it: `[stage 2/4] RUN …` (not `[internal] …`) */
const STEP = /^\[[^\]]*\b\d+\/\d+\]/;

interface StepState {
  n: number;
  name: string;
  printed: boolean;
  done: boolean;
  lines: string[];
  partial: string;
  error?: string;
}

export class BuildProgress {
  private readonly steps = new Map<string, StepState>();
  private seq = 0;
  /** the step that failed, when one did */
  failed?: { name: string; error: string; lines: string[] };
  /** classic builder: the current step and its output */
  private classic?: { name: string; lines: string[]; from: boolean; cached: boolean };
  /** ids of intermediate containers and images the classic builder reported (for cleanup on failure) */
  readonly classicContainers: string[] = [];
  readonly classicImages: string[] = [];
  imageId?: string;
  cachedSteps = 0;
  totalSteps = 0;

  constructor(private readonly write: (line: string) => void) {}

  private step(digest: string, name: string): StepState {
    let s = this.steps.get(digest);
    if (!s) {
      s = { n: ++this.seq, name, printed: false, done: false, lines: [], partial: '' };
      this.steps.set(digest, s);
    }
    if (name) s.name = name;
    return s;
  }

  /** one JSON message of the /build stream */
  onMessage(m: { id?: string; aux?: unknown; stream?: string; status?: string; error?: string; errorDetail?: { message?: string } }): void {
    if (m.id === 'moby.buildkit.trace' && typeof m.aux === 'string') {
      let st: StatusResponse;
      try {
        st = decodeStatus(Buffer.from(m.aux, 'base64'));
      } catch {
        return;
      }
      this.onStatus(st);
      return;
    }
    if (m.id === 'moby.image.id' && m.aux && typeof m.aux === 'object') {
      this.imageId = (m.aux as { ID?: string }).ID;
      return;
    }
    if (m.aux && typeof m.aux === 'object' && (m.aux as { ID?: string }).ID) {
      this.imageId = (m.aux as { ID?: string }).ID;
      return;
    }
    if (typeof m.stream === 'string') this.onClassic(m.stream);
    else if (typeof m.status === 'string' && !m.error) this.write(m.status);
  }

  private onStatus(st: StatusResponse): void {
    for (const v of st.vertexes) {
      const s = this.step(v.digest, v.name);
      if (!s.printed && (v.started || v.cached || v.completed)) {
        s.printed = true;
        this.write(`#${s.n} ${s.name}`);
        if (STEP.test(s.name)) this.totalSteps++;
      }
      if (v.error && !s.error) {
        s.error = v.error;
        this.flush(s);
        this.write(`#${s.n} ERROR: ${v.error}`);
        if (!this.failed || /^\[/.test(s.name)) this.failed = { name: s.name, error: v.error, lines: [...s.lines] };
      } else if ((v.completed || v.cached) && !s.done) {
        s.done = true;
        this.flush(s);
        if (v.cached) {
          this.write(`#${s.n} CACHED`);
          if (STEP.test(s.name)) this.cachedSteps++;
        } else this.write(`#${s.n} DONE${v.started && v.completed ? ` ${((v.completed - v.started) / 1000).toFixed(1)}s` : ''}`);
      }
    }
    for (const l of st.logs) {
      const s = this.step(l.vertex, '');
      const text = s.partial + l.msg.toString('utf8');
      const parts = text.split(/\r?\n/);
      s.partial = parts.pop() ?? '';
      for (const p of parts) this.line(s, p);
    }
  }

  private line(s: StepState, p: string): void {
    const clean = p.replace(/\r/g, '');
    s.lines.push(clean);
    if (s.lines.length > KEEP) s.lines.shift();
    this.write(`#${s.n} ${clean}`);
  }

  private flush(s: StepState): void {
    if (s.partial) {
      this.line(s, s.partial);
      s.partial = '';
    }
  }

  private classicBuf = '';
  private onClassic(text: string): void {
    const parts = (this.classicBuf + text).split('\n');
    this.classicBuf = parts.pop() ?? '';
    for (const p of parts) {
      const line = p.replace(/\r$/, '');
      const step = /^Step \d+\/\d+ : (.*)$/.exec(line);
      if (step) {
        this.classic = { name: line, lines: [], from: /^FROM\s/i.test(step[1]), cached: false };
        this.totalSteps++;
      } else if (this.classic && line.trim()) {
        const run = /^ ---> Running in ([0-9a-f]{12,})/.exec(line);
        const img = /^ ---> ([0-9a-f]{12,})$/.exec(line);
        if (run) this.classicContainers.push(run[1]);
        else if (img) {
          // a FROM step's id is the base image, a cached step's an existing image: only the others were made here
          if (!this.classic.from && !this.classic.cached) this.classicImages.push(img[1]);
        } else if (/^ ---> Using cache/.test(line)) {
          this.cachedSteps++;
          this.classic.cached = true;
        } else if (!/^Removing intermediate container|^Successfully (built|tagged)/.test(line)) {
          this.classic.lines.push(line);
          if (this.classic.lines.length > KEEP) this.classic.lines.shift();
        }
      }
      const ok = /^Successfully built ([0-9a-f]+)/.exec(line);
      if (ok) this.imageId ??= ok[1];
      this.write(line);
    }
  }

  /** the images this classic build created (not those it took from the cache) */
  createdClassicImages(): string[] {
    return [...this.classicImages];
  }

  /** the step the build was in last (the newest step not done yet, else the newest step): for an engine fault */
  current(): string | undefined {
    if (this.classic) return this.classic.name;
    const all = [...this.steps.values()].filter((s) => s.name).sort((a, b) => b.n - a.n);
    return (all.find((s) => !s.done) ?? all[0])?.name;
  }

  /** the failing step, for an error message */
  failure(error: string): { name?: string; lines: string[] } {
    if (this.failed) return { name: this.failed.name, lines: this.failed.lines };
    if (this.classic) return { name: this.classic.name, lines: this.classic.lines };
    return { lines: [] };
  }

  end(): void {
    for (const s of this.steps.values()) this.flush(s);
    if (this.classicBuf) {
      this.onClassic('\n');
    }
  }
}
