/** The GitLab side of promote --via mr (src/gitlab/*), behind promote's MergeRequestApi. */
import type { CommandContext, Values } from '../core/command.js';
import { fail } from '../core/errors.js';
import type { Remote } from '../git/url.js';
import { PromoteErrors } from './errors.js';
import type { MergeRequestApi } from './promote.js';

export async function mergeRequestApi(_ctx: CommandContext, _values: Values, _remote: Remote): Promise<MergeRequestApi> {
  throw fail.usage(PromoteErrors.GITLAB, '--via mr needs the GitLab layer, which is not in this build', { hint: 'use --via push' });
}
