/**
 * Secret masking. Every line the CLI prints passes through mask(). Secrets are registered where they
 * are read (environment, flags, files); each is masked raw, URL-encoded, JSON-escaped and base64-encoded (alone
 * and as `user:secret`, at every base64 alignment; base64url too), and any `scheme://user:pass@` in a URL is masked too.
 */
const secrets = new Set<string>();
const MASK = '[MASKED]';

function b64Variants(s: string): string[] {
  // A secret inside a longer base64 string can start at any of three byte offsets. For each, keep only
  // the base64 characters whose 6 bits come entirely from the secret: those are stable whatever
  // surrounds it.
  const out: string[] = [];
  const len = Buffer.byteLength(s);
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.from('\0'.repeat(pad) + s).toString('base64');
    const inner = enc.slice(Math.ceil((pad * 8) / 6), Math.floor(((pad + len) * 8) / 6));
    if (inner.length >= 6) out.push(inner);
  }
  return out;
}

export function addSecret(value: string | undefined | null, opts: { users?: string[] } = {}): void {
  if (!value || value.length < 4) return; // too short to mask without destroying output
  // JSON.stringify(value) without its quotes: a quote or backslash in a secret is escaped where a message quotes it so
  const forms = new Set<string>([value, encodeURIComponent(value), Buffer.from(value).toString('base64'), JSON.stringify(value).slice(1, -1), ...b64Variants(value)]);
  for (const u of opts.users ?? []) {
    forms.add(Buffer.from(`${u}:${value}`).toString('base64'));
    forms.add(encodeURIComponent(`${u}:${value}`));
  }
  // base64url (RFC 4648 §5: JWT segments, some registries' and OAuth servers' tokens): the same bytes with - and _
  // for + and /, unpadded; a form without those characters is already there
  for (const f of [...forms]) if (/[+/=]/.test(f) && /^[A-Za-z0-9+/]+=*$/.test(f)) forms.add(f.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
  for (const f of forms) if (f.length >= 4) secrets.add(f);
}

export function clearSecrets(): void {
  secrets.clear();
}

const CRED_URL = /([a-z][a-z0-9+.-]*:\/\/)([^\s/@:'"]*)(:[^\s/@'"]*)?@/gi;

export function mask(text: string): string {
  let out = text;
  // longest first, so that an encoded form is not half-replaced by a shorter one
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (out.includes(s)) out = out.split(s).join(MASK);
  }
  out = out.replace(CRED_URL, (_m, scheme: string, user: string, pass: string | undefined) => (pass ? `${scheme}${user}:${MASK}@` : `${scheme}${user}@`));
  return out;
}

/** Remove credentials from a URL for display: https://user:pw@host/x -> https://host/x */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return u.toString();
  } catch {
    return mask(url);
  }
}

/**
 * A copy of a JSON-able value with the userinfo taken out of every URL in its strings
 * (`https://user:token@host/x` → `https://host/x`, a `/` or `@` in the password included): for payloads that
 * leave the process (webhook events, API bodies), which must carry no credentials at all, masked or not.
 */
export function stripUserinfo<T>(value: T): T {
  if (typeof value === 'string') {
    return value.replace(/\b([a-z][a-z0-9+.-]*:\/\/)(\S+)/gi, (m, scheme: string, rest: string) => {
      // the userinfo ends at the last `@` before the path that is not an image digest's
      for (let i = rest.lastIndexOf('@'); i > 0; i = rest.lastIndexOf('@', i - 1)) {
        if (/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]{32,}/i.test(rest.slice(i + 1))) continue;
        const info = rest.slice(0, i);
        if ((!info.includes(':') && info.includes('/')) || /^[^:@/]+:\d+\//.test(info)) return m;
        return scheme + rest.slice(i + 1);
      }
      return m;
    }) as T;
  }
  if (Array.isArray(value)) return value.map((v) => stripUserinfo(v)) as T;
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, stripUserinfo(v)])) as T;
  }
  return value;
}
