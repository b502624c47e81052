import type { CommandContext, CommandResult, CommandSpec, ParsedArgs } from '../core/command.js';
export const spec: CommandSpec = { name: 'set-image', usage: 'gitops-ci set-image [--dir DIR]... EXPR...', description: 'placeholder', options: { dir: { type: 'string', multiple: true, value: 'DIR', description: 'overlay directory' } } };
export async function run(_ctx: CommandContext, _a: ParsedArgs): Promise<CommandResult> { return { summary: 'todo' }; }
