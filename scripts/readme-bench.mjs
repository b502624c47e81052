// Copies the outputs of the last real bench runs (bench/results/*.txt, written by the bench scripts themselves)
// into README.md between the bench markers, so that the README's numbers are never typed by hand.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const sections = [
  ['set-image', 'Editing 1,000 overlays: one `gitops-ci set-image` call against a `sed -i` over the same files (the I/O floor) and one process per overlay (what a `kustomize edit` loop costs).'],
  ['bump', (txt) => `Write-back to a config repo of 20,000 files and 10,000 commits over smart HTTP: ours against the seed's full clone and against git's own shallow sparse clone (the floor), and through GitLab's commits API (\`--via api\`; the GitLab double answers, in the bench's process); then N bumps of one branch all at once against the same N one after another, against N at once on N branches of their own, N at once with the defaults (taking turns through the server's write-back lock, GitLab's Git LFS locks API), racing without it, and taking turns through one \`--lock-file\` (writers sharing a host; N = 5, 12, 20, small and big repo), and where the time of 20 racing writers goes. ${bumpGoals(txt)} How the server's lock works and when it is not used: [docs/commands/bump.md](docs/commands/bump.md#taking-turns-through-the-server---server-lock); why racing costs what it does, and what was tried: [Under contention](docs/commands/bump.md#under-contention-issue-12).`],
  ['latency', 'The same N bumps with a 50 ms round trip between the jobs and the git server (as to a GitLab over a WAN; a proxy holds each chunk 25 ms each way, this machine has no netem): much of a bump is then waiting, which N at once overlaps (apart/seq about 0.5), and the race for one branch still costs more than that gain (issue #12, not met).'],
  ['image', 'An unchanged rebuild with registry cache against the seed\'s `docker build --no-cache`, and promotion by `image copy` against `docker pull` + `tag` + `push`.'],
  ['argocd-wait', 'Time from Argo CD (the double) reaching Synced and Healthy on the commit to the waiting job\'s exit: the watch stream against polling.'],
  ['startup', 'Start-up of the bundled CLI against `node -e 0`.'],
];
/**
 * Issue #20's goals as bench/results/bump.txt shows them (read from its lines and tables, not typed): one bump against
 * the floor, one API bump, and conc/seq and locked/seq of the N rows through the API and through git.
 */
function bumpGoals(txt) {
  const lines = txt.split('\n');
  const num = (re) => {
    const m = re.exec(txt);
    if (!m) throw new Error(`bench/results/bump.txt: no match for ${re}`);
    return m;
  };
  // a table: its header line starts with `head`; columns are split on two or more spaces
  const table = (head) => {
    const h = lines.findIndex((l) => l.startsWith(head));
    if (h < 0) throw new Error(`bench/results/bump.txt: no table starting with ${head}`);
    const cols = lines[h].trim().split(/\s{2,}/);
    const rows = [];
    // rows until a blank line or a line of text that is no row (a row starts with its repo: small, big)
    for (let k = h + 2; k < lines.length && /^(small|big)\s/.test(lines[k]); k++) {
      const cells = lines[k].trim().split(/\s{2,}/);
      rows.push(Object.fromEntries(cols.map((c, i) => [c, cells[i]])));
    }
    return rows;
  };
  // the N rows' ratios in column `col`: their range, and the rows above the 1.2× goal
  const say = (rows, col, what) => {
    const v = rows.map((r) => Number(r[col]));
    if (!v.length || v.some((x) => !Number.isFinite(x))) throw new Error(`bench/results/bump.txt: column ${col} is not all numbers`);
    const over = rows.filter((r) => Number(r[col]) > 1.2).map((r) => `${r.repo} N = ${r.N} ${fmt(Number(r[col]))}`);
    return `${what ? `${what} ` : ''}${fmt(Math.min(...v))}–${fmt(Math.max(...v))} (${over.length === rows.length ? 'not met' : over.length ? `not met at ${over.join(', ')}` : 'met at every N'})`;
  };
  const fmt = (x) => `${x.toFixed(2)}×`;
  const rounds = num(/ours\/floor on the big repo, round by round: ([\d. ]+) \(median ([\d.]+)x/);
  const api = num(/one bump on the big repo ([\d.]+ m?s), ([\d.]+)x the git floor/);
  const apiRows = table('repo    N  load  landed seq/conc/race/file');
  const gitRows = table('repo    N  load  landed seq/apart/conc/race/file');
  const one = Number(rounds[2]);
  const apiOne = Number(api[2]);
  const rr = rounds[1].trim().split(/\s+/).map(Number);
  return `Issue #20's goals, in this run: one bump at most 1.1× the floor, ${one <= 1.1 ? 'met' : 'not met'} (${fmt(one)}, round by round ${fmt(Math.min(...rr))}–${fmt(Math.max(...rr))}); one bump through the API at most 0.5× the floor, ${apiOne <= 0.5 ? 'met' : 'not met'} (${fmt(apiOne)}; the API is the double, so this is our client's cost plus a fast server's); N at once through the API at most 1.2× N in a row: with the defaults (taking turns through the server's lock) ${say(apiRows, 'conc/seq', '')}, racing (\`--server-lock off\`) ${say(apiRows, 'race/seq', '')}, through one \`--lock-file\` ${say(apiRows, 'file/seq', '')}; N at once through git at most 1.2×: with the defaults ${say(gitRows, 'conc/seq', '')}, racing ${say(gitRows, 'race/seq', '')}, through one \`--lock-file\` ${say(gitRows, 'file/seq', '')}.`;
}

const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
let body = '';
for (const [name, what] of sections) {
  const f = new URL(`../bench/results/${name}.txt`, import.meta.url);
  if (!existsSync(f)) continue;
  const txt = readFileSync(f, 'utf8').trimEnd();
  body += `### ${name} (\`bench/${name}.ts\`)\n\n${typeof what === 'function' ? what(txt) : what}\n\n\`\`\`\n${txt}\n\`\`\`\n\n`;
}
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const i = readme.indexOf(START);
const j = readme.indexOf(END);
if (i < 0 || j < i) throw new Error('README.md has no bench markers');
writeFileSync(new URL('../README.md', import.meta.url), `${readme.slice(0, i + START.length)}\n${body}${readme.slice(j)}`);
console.log('README.md: bench section refreshed from bench/results/');
