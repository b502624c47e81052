/**
 * The kustomization target through the EditTarget interface, the registry, and the three kustomize fixes of
 * issue 17: a newTag YAML reads as a number or bool is refused as `kubectl kustomize` refuses it (checked against
 * the real kubectl here), a Flux marker whose field goes is dropped with a warning, a new images: section goes
 * below a kubebuilder scaffold marker (test/fixtures/set-image/{flux-marker-tag-to-digest,kubebuilder-scaffold}
 * hold the goldens).
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectTargets, targetOf, targets, TARGET_KINDS } from '../../src/edit/registry.js';
import { exprFromPin, pinFromExpr } from '../../src/edit/kustomization.js';
import { parseImageExpr } from '../../src/kustomize/image-expr.js';

const k = targetOf('kustomization')!;
const D = `sha256:${'a'.repeat(64)}`;

function kubectlKustomize(kustomization: string): { code: number; err: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gci-edit-k-'));
  try {
    writeFileSync(join(dir, 'kustomization.yaml'), kustomization);
    writeFileSync(join(dir, 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: app:1}\n');
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
    return { code: r.status ?? -1, err: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('registry', () => {
  it('has one target per kind, each with find/detect/images/edit', () => {
    expect(TARGET_KINDS).toEqual(['kustomization', 'argocd-source', 'application', 'helm', 'manifest']);
    for (const t of targets) for (const m of ['find', 'detect', 'images', 'edit'] as const) expect(typeof t[m], `${t.kind}.${m}`).toBe('function');
    expect(targetOf('kustomization')!.render).toBeTypeOf('function');
    expect(targetOf('nope')).toBeUndefined();
  });

  it('detects the kinds of files a directory holds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gci-edit-detect-'));
    try {
      writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [deploy.yaml]\n');
      writeFileSync(join(dir, 'deploy.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: app:1}\n');
      writeFileSync(join(dir, 'values-prod.yaml'), 'image: {repository: app, tag: "1"}\n');
      writeFileSync(join(dir, '.argocd-source-web.yaml'), 'kustomize: {images: [app:1]}\n');
      writeFileSync(join(dir, 'app.yaml'), 'apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: web}\nspec: {source: {kustomize: {images: [app:1]}}}\n');
      const found = await detectTargets(dir);
      expect(found.map((f) => [f.target.kind, f.files.map((x) => x.slice(dir.length + 1))])).toEqual([
        ['kustomization', ['kustomization.yaml']],
        ['argocd-source', ['.argocd-source-web.yaml']],
        ['application', ['app.yaml']],
        ['helm', ['values-prod.yaml']],
        ['manifest', ['deploy.yaml']],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('kustomization target', () => {
  it('pins travel as objects: a pin is an expression with the same fields, both ways', () => {
    for (const raw of ['app:1.2', `app@${D}`, `app=reg/app:1.2@${D}`, 'app=*:1.3', 'app=reg/x']) {
      const e = parseImageExpr(raw);
      const back = exprFromPin(pinFromExpr(e));
      expect({ ...back, raw: '' }).toEqual({ ...e, raw: '' });
    }
  });

  it('edits through the interface and reports lines', () => {
    const r = k.edit('resources: [a.yaml]\nimages:\n- name: app # x\n  newTag: v1 # y\n', [{ name: 'app', tag: 'v2' }, { name: 'b', digest: D }], 'k.yaml');
    expect(r.text).toBe(`resources: [a.yaml]\nimages:\n- name: app # x\n  newTag: v2 # y\n- digest: ${D}\n  name: b\n`);
    expect(r.changes.map((c) => [c.pin.name, c.before?.tag, c.after.tag ?? c.after.digest, c.after.line, c.changed])).toEqual([
      ['app', 'v1', 'v2', 3, true],
      ['b', undefined, D, 5, true],
    ]);
    expect(k.images(r.text, 'k.yaml')).toEqual([
      { name: 'app', tag: 'v2', line: 3 },
      { name: 'b', digest: D, line: 5 },
    ]);
  });

  for (const v of ['1.10', '16', 'yes', 'on', '012', '1e3']) {
    it(`refuses newTag: ${v} (unquoted) as kubectl kustomize does, naming file:line`, () => {
      const text = `resources: [pod.yaml]\nimages:\n- name: app\n  newTag: ${v}\n`;
      expect(kubectlKustomize(text).code).not.toBe(0);
      let err: { code?: string; where?: string; hint?: string; exitCode?: number } = {};
      try {
        k.edit(text, [{ name: 'other', tag: 'v1' }], 'k.yaml');
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.code).toBe('EKUSTOMIZE_BAD_IMAGE_ENTRY');
      expect(err.exitCode).toBe(2);
      expect(err.where).toBe('k.yaml:4:11');
      expect(err.hint).toBe(`quote it: newTag: "${v}"`);
      // quoted, kustomize and set-image both take it
      const quoted = text.replace(`newTag: ${v}`, `newTag: "${v}"`);
      expect(kubectlKustomize(quoted).code).toBe(0);
      expect(k.edit(quoted, [{ name: 'app', tag: 'v1' }], 'k.yaml').text).toBe(quoted.replace(`"${v}"`, '"v1"'));
    });
  }

  it('a Flux marker on a line whose field changes is dropped, with a warning naming the policy', () => {
    const text = 'images:\n- name: app\n  newTag: "1.0" # {"$imagepolicy": "flux-system:app:tag"}\n  newName: x # {"$imagepolicy": "flux-system:app:name"}\n';
    const r = k.edit(text, [{ name: 'app', newName: '*', digest: D }], 'k.yaml');
    expect(r.text).toBe(`images:\n- name: app\n  digest: ${D}\n  newName: x # {"$imagepolicy": "flux-system:app:name"}\n`);
    expect(r.warnings).toHaveLength(1);
    expect(r.warnings[0]).toMatch(/^k\.yaml:3: dropped the Flux marker \{"\$imagepolicy": "flux-system:app:tag"\} of newTag/);
    expect(r.warnings[0]).toContain('flux-system:app:digest');
    // a tag change keeps the marker (it still describes newTag)
    const same = k.edit(text, [{ name: 'app', newName: '*', tag: '1.1' }], 'k.yaml');
    expect(same.text).toBe(text.replace('"1.0"', '"1.1"'));
    expect(same.warnings).toEqual([]);
    // a marker of a key that goes away is not left behind on a line of its own
    const gone = k.edit('images:\n- name: app\n  newName: x\n  newTag: v1 # {"$imagepolicy": "ns:p:tag"}\n', [{ name: 'app', newName: 'z' }], 'k.yaml');
    expect(gone.text).toBe('images:\n- name: app\n  newName: z\n');
    expect(gone.warnings[0]).toContain('newTag is no longer in the entry');
  });

  it('puts a new images: section below a kubebuilder scaffold marker, not above', () => {
    const text = 'resources:\n- manager.yaml\n#+kubebuilder:scaffold:crdkustomizeresource\n';
    expect(k.edit(text, [{ name: 'app', tag: 'v1' }], 'k.yaml').text).toBe(`${text}images:\n- name: app\n  newTag: v1\n`);
    // other trailing comments still stay below the new section (as before)
    expect(k.edit('resources:\n- a.yaml\n# end\n', [{ name: 'app', tag: 'v1' }], 'k.yaml').text).toBe('resources:\n- a.yaml\nimages:\n- name: app\n  newTag: v1\n# end\n');
  });
});
