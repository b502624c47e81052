import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDotenv, parseDotenv } from '../../src/core/dotenv.js';
import { tmp } from '../helpers/services.js';

describe('dotenv outputs', () => {
  it('writes KEY=VALUE lines and keeps other keys already in the file', async () => {
    const f = join(tmp(), 'gitops.env');
    writeFileSync(f, 'IMAGE=old\nKEEP=1\n');
    await writeDotenv(f, { IMAGE: 'r/app@sha256:abc', GITOPS_CHANGED: true, SKIPPED: undefined });
    expect(readFileSync(f, 'utf8')).toBe('IMAGE=r/app@sha256:abc\nKEEP=1\nGITOPS_CHANGED=true\n');
    expect(parseDotenv(readFileSync(f, 'utf8'))).toEqual({ IMAGE: 'r/app@sha256:abc', KEEP: '1', GITOPS_CHANGED: 'true' });
  });

  it('refuses values GitLab would reject, and leaves the file as it was', async () => {
    const f = join(tmp(), 'gitops.env');
    writeFileSync(f, 'A=1\n');
    await expect(writeDotenv(f, { B: 'two\nlines' })).rejects.toMatchObject({ code: 'EDOTENV_VALUE', exitCode: 1 });
    await expect(writeDotenv(f, { 'bad-key': 'x' })).rejects.toMatchObject({ code: 'EDOTENV_KEY', exitCode: 2 });
    expect(readFileSync(f, 'utf8')).toBe('A=1\n');
  });

  it('fails clearly when the directory does not exist', async () => {
    await expect(writeDotenv('/nonexistent-dir/x.env', { A: '1' })).rejects.toMatchObject({ code: 'EDOTENV_WRITE', where: '/nonexistent-dir/x.env' });
  });
});
