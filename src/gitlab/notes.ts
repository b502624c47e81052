/**
 * One note per MR and purpose, edited in place: the note is found by a hidden marker
 * (`<!-- gitops-ci:preview:<key> -->`) among the MR's notes written by the token's user, and edited; a new
 * note is created only when none carries the marker. Never a new note per run.
 */
import { fail } from '../core/errors.js';
import type { GitlabClient } from './client.js';
import { GitlabErrors } from './errors.js';

/** GitLab refuses notes over 1,000,000 characters (400 "Note is too long") */
export const NOTE_LIMIT = 1_000_000;

/** the hidden marker for a purpose and key, e.g. noteMarker('preview', 'production') */
export function noteMarker(kind: string, key = 'default'): string {
  const clean = (x: string) => x.replace(/-->|[\r\n]/g, '').trim();
  return `<!-- gitops-ci:${clean(kind)}:${clean(key)} -->`;
}

export interface UpsertNoteInput {
  project: string | number;
  mrIid: number;
  /** the hidden marker, e.g. noteMarker('preview', key); put in the body when it is not there */
  marker: string;
  body: string;
}

/** `changed`: whether the note's body was written (false when the note already held exactly this body) */
export async function upsertNote(gl: GitlabClient, i: UpsertNoteInput): Promise<{ id: number; created: boolean; changed: boolean }> {
  if (!i.marker.trim()) throw fail.usage(GitlabErrors.CONFIG, 'upsertNote needs a non-empty marker');
  const body = i.body.includes(i.marker) ? i.body : `${i.marker}\n${i.body}`;
  if (body.length > NOTE_LIMIT) {
    throw fail.failed(GitlabErrors.REJECTED, `the note is ${body.length} characters; GitLab accepts at most ${NOTE_LIMIT}`, { hint: 'a bug: the body should have been truncated' });
  }
  // who we are is not optional: without it, a note anyone wrote with our marker (an MR author can post one before
  // the first pipeline) would be taken for ours, reported as the preview or edited by an administrator's token
  const [me, notes] = await Promise.all([gl.currentUser(), gl.listNotes(i.project, i.mrIid)]);
  // ours: not a system note, carries the marker, written by the token's user (someone quoting the marker
  // in a reply must not be edited; GitLab would refuse with 403 anyway)
  const mine = notes.filter((n) => !n.system && n.body.includes(i.marker) && n.author.id === me.id).sort((a, b) => a.id - b.id);
  const found = mine[0];
  if (found) {
    if (found.body === body) return { id: found.id, created: false, changed: false };
    const n = await gl.editNote(i.project, i.mrIid, found.id, body);
    return { id: n.id, created: false, changed: true };
  }
  const n = await gl.createNote(i.project, i.mrIid, body);
  return { id: n.id, created: true, changed: true };
}
