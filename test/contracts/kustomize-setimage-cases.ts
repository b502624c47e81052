/**
 * kustomize's own cases for `kustomize edit set image`, kept as this project's table: the 25 cases of
 * TestSetImage in kubernetes-sigs/kustomize, kustomize/commands/edit/set/setimage_test.go (implementation
 * setimage.go) at commit 12f9e6391464b3ad9dd3fe8182049dc1b1772990. kustomize is Apache-2.0 (Copyright The
 * Kubernetes Authors); this is a transcription of its test data. Origin and license: test/contracts/SOURCES.md.
 *
 * Each case: the arguments, the kustomization before (`given`, null = kustomize's default test kustomization,
 * which has no images field), the images entries after, the block of text kustomize's harness expects to find
 * in the file (strings.Contains), or the error kustomize returns (its Go error variable).
 *
 * How kustomize behaves (from setimage.go, what the cases pin down):
 *  - split once on '=': left = images[].name; right split into newName/newTag/digest (a ':' before the first
 *    '/' is a registry port, not a tag). Without '=' the name part becomes images[].name (no newName).
 *  - an argument with no ':', '@' or '=' is errImageInvalidArgs; no argument at all is errImageNoArgs.
 *  - '*' as newName, newTag or digest keeps the value in the file (omitted when the image is not there).
 *  - otherwise an existing entry of the same name is replaced wholesale (cases 12, 23); new ones are appended;
 *    entries are sorted by name and keys written as digest, name, newName, newTag; numeric tags are quoted.
 */
export interface SetImageCase {
  index: number;
  name: string;
  args: string[];
  /** the whole kustomization.yaml before; null: kustomize's default test kustomization */
  given: string | null;
  /** the images entries after */
  images: { name: string; newName?: string; newTag?: string; digest?: string }[] | null;
  /** the contiguous block kustomize's harness expects in the rewritten file */
  text: string | null;
  /** kustomize's error variable */
  error: 'errImageNoArgs' | 'errImageInvalidArgs' | null;
}

export const SET_IMAGE_CASES: SetImageCase[] = [
  {
    index: 0,
    name: "(unnamed) image1=my-image1:my-tag",
    args: ["image1=my-image1:my-tag"],
    given: null,
    images: [{"name":"image1","newName":"my-image1","newTag":"my-tag"}],
    text: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 1,
    name: "(unnamed) image1=my-image1:1234",
    args: ["image1=my-image1:1234"],
    given: null,
    images: [{"name":"image1","newName":"my-image1","newTag":"1234"}],
    text: "images:\n- name: image1\n  newName: my-image1\n  newTag: \"1234\"",
    error: null,
  },
  {
    index: 2,
    name: "(unnamed) image1=my-image1:3.2e2",
    args: ["image1=my-image1:3.2e2"],
    given: null,
    images: [{"name":"image1","newName":"my-image1","newTag":"3.2e2"}],
    text: "images:\n- name: image1\n  newName: my-image1\n  newTag: \"3.2e2\"",
    error: null,
  },
  {
    index: 3,
    name: "(unnamed) image1=my-image1@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
    args: ["image1=my-image1@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: null,
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image1","newName":"my-image1"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image1\n  newName: my-image1",
    error: null,
  },
  {
    index: 4,
    name: "(unnamed) image1:my-tag",
    args: ["image1:my-tag"],
    given: null,
    images: [{"name":"image1","newTag":"my-tag"}],
    text: "images:\n- name: image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 5,
    name: "(unnamed) image1@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
    args: ["image1@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: null,
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image1"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image1",
    error: null,
  },
  {
    index: 6,
    name: "(unnamed) my-image1:my-tag@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
    args: ["my-image1:my-tag@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: null,
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"my-image1","newTag":"my-tag"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: my-image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 7,
    name: "(unnamed) image1=my-image1:my-tag@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3",
    args: ["image1=my-image1:my-tag@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: null,
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image1","newName":"my-image1","newTag":"my-tag"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image1\n  newName: my-image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 8,
    name: "<image>=<image>",
    args: ["ngnix=localhost:5000/my-project/ngnix"],
    given: null,
    images: [{"name":"ngnix","newName":"localhost:5000/my-project/ngnix"}],
    text: "images:\n- name: ngnix\n  newName: localhost:5000/my-project/ngnix",
    error: null,
  },
  {
    index: 9,
    name: "(unnamed) ngnix=localhost:5000/my-project/ngnix:dev-01",
    args: ["ngnix=localhost:5000/my-project/ngnix:dev-01"],
    given: null,
    images: [{"name":"ngnix","newName":"localhost:5000/my-project/ngnix","newTag":"dev-01"}],
    text: "images:\n- name: ngnix\n  newName: localhost:5000/my-project/ngnix\n  newTag: dev-01",
    error: null,
  },
  {
    index: 10,
    name: "override file",
    args: ["image1=foo.bar.foo:8800/foo/image1:foo-bar"],
    given: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag\n- name: image2\n  newName: my-image2\n  newTag: my-tag2\n",
    images: [{"name":"image1","newName":"foo.bar.foo:8800/foo/image1","newTag":"foo-bar"},{"name":"image2","newName":"my-image2","newTag":"my-tag2"}],
    text: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: foo-bar\n- name: image2\n  newName: my-image2\n  newTag: my-tag2",
    error: null,
  },
  {
    index: 11,
    name: "override file with patch",
    args: ["image1=foo.bar.foo:8800/foo/image1:foo-bar"],
    given: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag\n- name: image2\n  newName: my-image2\n  newTag: my-tag2\npatchesJson6902:\n- patch: |-\n    - op: remove\n      path: /spec/selector\n  target:\n    kind: Service\n    name: foo\n    version: v1\n",
    images: [{"name":"image1","newName":"foo.bar.foo:8800/foo/image1","newTag":"foo-bar"},{"name":"image2","newName":"my-image2","newTag":"my-tag2"}],
    text: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: foo-bar\n- name: image2\n  newName: my-image2\n  newTag: my-tag2\npatchesJson6902:\n- patch: |-\n    - op: remove\n      path: /spec/selector\n  target:\n    kind: Service\n    name: foo\n    version: v1",
    error: null,
  },
  {
    index: 12,
    name: "override new tag and new name with just a new tag",
    args: ["image1:v1"],
    given: "images:\n- name: image1\n  newTag: my-tag\n",
    images: [{"name":"image1","newTag":"v1"}],
    text: "images:\n- name: image1\n  newTag: v1",
    error: null,
  },
  {
    index: 13,
    name: "multiple args with multiple overrides",
    args: ["image1=foo.bar.foo:8800/foo/image1:foo-bar","image2=my-image2@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","image3:my-tag"],
    given: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag1\n- name: image2\n  newName: my-image2\n  newTag: my-tag2\n- name: image3\n  newTag: my-tag\n",
    images: [{"name":"image1","newName":"foo.bar.foo:8800/foo/image1","newTag":"foo-bar"},{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image2","newName":"my-image2"},{"name":"image3","newTag":"my-tag"}],
    text: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: foo-bar\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image2\n  newName: my-image2\n- name: image3\n  newTag: my-tag",
    error: null,
  },
  {
    index: 14,
    name: "error: no args",
    args: [],
    given: null,
    images: null,
    text: null,
    error: "errImageNoArgs",
  },
  {
    index: 15,
    name: "error: invalid args",
    args: ["bad","args"],
    given: null,
    images: null,
    text: null,
    error: "errImageInvalidArgs",
  },
  {
    index: 16,
    name: "override new tag but keep new name",
    args: ["image1=*:v1"],
    given: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: my-tag\n",
    images: [{"name":"image1","newName":"foo.bar.foo:8800/foo/image1","newTag":"v1"}],
    text: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: v1",
    error: null,
  },
  {
    index: 17,
    name: "override new name but keep new tag",
    args: ["image1=my-image1:*"],
    given: "images:\n- name: image1\n  newName: foo.bar.foo:8800/foo/image1\n  newTag: my-tag\n",
    images: [{"name":"image1","newName":"my-image1","newTag":"my-tag"}],
    text: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 18,
    name: "keep new name and new tag (rare case)",
    args: ["image1=*:*"],
    given: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag\n",
    images: [{"name":"image1","newName":"my-image1","newTag":"my-tag"}],
    text: "images:\n- name: image1\n  newName: my-image1\n  newTag: my-tag",
    error: null,
  },
  {
    index: 19,
    name: "do not set asterisk as new name for existing image",
    args: ["image1=*:v1"],
    given: "images:\n- name: image1\n  newTag: my-tag\n",
    images: [{"name":"image1","newTag":"v1"}],
    text: "images:\n- name: image1\n  newTag: v1",
    error: null,
  },
  {
    index: 20,
    name: "do not set asterisk as new name",
    args: ["image1=*:v1"],
    given: null,
    images: [{"name":"image1","newTag":"v1"}],
    text: "images:\n- name: image1\n  newTag: v1",
    error: null,
  },
  {
    index: 21,
    name: "do not set asterisk as new tag",
    args: ["image1=my-image1:*"],
    given: null,
    images: [{"name":"image1","newName":"my-image1"}],
    text: "images:\n- name: image1\n  newName: my-image1",
    error: null,
  },
  {
    index: 22,
    name: "keep new name and update digest",
    args: ["image2=*@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: "images:\n- name: image2\n  newName: my-image2\n  digest: sha256:abcdef12345\n",
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image2","newName":"my-image2"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image2\n  newName: my-image2",
    error: null,
  },
  {
    index: 23,
    name: "keep new name, remove tag, and set digest",
    args: ["image2=*@sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3"],
    given: "images:\n- name: image2\n  newName: my-image2\n  newTag: my-tag\n",
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image2","newName":"my-image2"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image2\n  newName: my-image2",
    error: null,
  },
  {
    index: 24,
    name: "update new name and keep the digest",
    args: ["image2=my-image2@*"],
    given: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image2\n  newName: foo.bar.foo:8800/foo/image1\n",
    images: [{"digest":"sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3","name":"image2","newName":"my-image2"}],
    text: "images:\n- digest: sha256:24a0c4b4a4c0eb97a1aabb8e29f18e917d05abfe1b7a7c07857230879ce7d3d3\n  name: image2\n  newName: my-image2",
    error: null,
  },
];
