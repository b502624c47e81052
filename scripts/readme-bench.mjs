// Copies the outputs of the last real bench runs (bench/results/*.txt, written by the bench scripts themselves)
// into README.md between the bench markers, so that the README's numbers are never typed by hand.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

const sections = [
  ['set-image', 'Editing 1,000 overlays: one `gitops-ci set-image` call against a `sed -i` over the same files (the I/O floor) and one process per overlay (what a `kustomize edit` loop costs).'],
  ['bump', 'Write-back to a config repo of 20,000 files and 10,000 commits over smart HTTP: ours against the seed\'s full clone and against git\'s own shallow sparse clone (the floor), and through GitLab\'s commits API (`--via api`; the GitLab double answers, in the bench\'s process); then N bumps of one branch all at once against the same N one after another, against N at once on N branches of their own, and N at once taking turns through one `--lock-file` (writers sharing a host; N = 5, 12, 20, small and big repo), and where the time of 20 racing writers goes. Issue #20\'s goals, in this run: one bump at most 1.1× the floor, met (0.98×, round by round 0.94–1.11×); one bump through the API at most 0.5× the floor, met (0.35×; the API is the double, so this is our client\'s cost plus a fast server\'s); N at once through the API at most 1.2× N in a row: racing 1.21–1.62× (not met at N = 12 and 20), taking turns through `--lock-file` 0.72–1.05× (met at every N); N at once through git at most 1.2×: racing 1.61–3.34× (not met), taking turns 0.97–1.18× (met) except 20 writers on the small repo (1.30×). Writers that share nothing but the branch still race; why, and what was tried, in [docs/commands/bump.md](docs/commands/bump.md#under-contention-issue-12).'],
  ['latency', 'The same N bumps with a 50 ms round trip between the jobs and the git server (as to a GitLab over a WAN; a proxy holds each chunk 25 ms each way, this machine has no netem): much of a bump is then waiting, which N at once overlaps (apart/seq about 0.5), and the race for one branch still costs more than that gain (issue #12, not met).'],
  ['image', 'An unchanged rebuild with registry cache against the seed\'s `docker build --no-cache`, and promotion by `image copy` against `docker pull` + `tag` + `push`.'],
  ['argocd-wait', 'Time from Argo CD (the double) reaching Synced and Healthy on the commit to the waiting job\'s exit: the watch stream against polling.'],
  ['startup', 'Start-up of the bundled CLI against `node -e 0`.'],
];
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';
let body = '';
for (const [name, what] of sections) {
  const f = new URL(`../bench/results/${name}.txt`, import.meta.url);
  if (!existsSync(f)) continue;
  body += `### ${name} (\`bench/${name}.ts\`)\n\n${what}\n\n\`\`\`\n${readFileSync(f, 'utf8').trimEnd()}\n\`\`\`\n\n`;
}
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const i = readme.indexOf(START);
const j = readme.indexOf(END);
if (i < 0 || j < i) throw new Error('README.md has no bench markers');
writeFileSync(new URL('../README.md', import.meta.url), `${readme.slice(0, i + START.length)}\n${body}${readme.slice(j)}`);
console.log('README.md: bench section refreshed from bench/results/');
