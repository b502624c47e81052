/**
 * A directory that this process cannot write to, for the tests of a write that fails. `chmod 0555` stops every user
 * but root, and the suite runs as root (CI, `make test` in a container), where such a test would never run. So, as
 * root, the directory is bind-mounted on itself read-only (writes fail with EROFS, whoever asks); otherwise it is
 * made 0555 (EACCES). Undone by the returned function. Returns undefined when neither is possible (root without the
 * right to mount): the caller skips and says why.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';

export function makeUnwritable(dir: string): (() => void) | undefined {
  if (process.getuid?.() !== 0) {
    chmodSync(dir, 0o555);
    return () => chmodSync(dir, 0o755);
  }
  const run = (args: string[]) => spawnSync('mount', args, { encoding: 'utf8' }).status === 0;
  if (!run(['--bind', dir, dir])) return undefined;
  if (!run(['-o', 'remount,bind,ro', dir, dir])) {
    spawnSync('umount', [dir]);
    return undefined;
  }
  return () => {
    spawnSync('umount', [dir]);
  };
}

/** what a write into such a directory fails with */
export const UNWRITABLE_ERROR = /EACCES|EROFS/;
