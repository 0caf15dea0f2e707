// Every manifest in deploy/kubernetes/ against the schemas a cluster would check it with:
// the agent-sandbox CRDs' openAPIV3Schema (kept in ../shared/k8s/agent-sandbox-crds/; those
// cases are skipped, with the reason, where that folder is absent) and the Kubernetes core
// schemas compiled into the kubernetes-models package. Unknown fields are refused, as
// `kubectl apply --validate=strict` does. Then what the manifests promise: the restricted Pod
// Security Standard, `serve --single` / `--max-sandboxes`, KVM by device plugin with a TCG
// template beside it, secrets only from Secrets, and egress closed to private ranges.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import type { ValidateFunction } from "ajv";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { parseAllDocuments } from "yaml";
import { errorsOf, NO_CRDS, strictPodSpec, validators } from "../helpers/agent-sandbox-crds.js";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);
const MANIFESTS = join(ROOT, "deploy/kubernetes");

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

const docs: Array<{ file: string; doc: Doc }> = readdirSync(MANIFESTS)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(MANIFESTS, file), "utf8")).map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message}`);
      return { file, doc: d.toJS() as Doc };
    }),
  );

const CORE: Record<string, new (data: never) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/DaemonSet": DaemonSet,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
};

interface PodSpec {
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  securityContext?: {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    seccompProfile?: { type?: string };
  };
  containers: Container[];
  initContainers?: Container[];
  volumes?: Array<Record<string, unknown> & { name: string }>;
  automountServiceAccountToken?: boolean;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: Record<string, unknown> }>;
  ports?: Array<{ hostPort?: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: {
    privileged?: boolean;
    allowPrivilegeEscalation?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    capabilities?: { add?: string[]; drop?: string[] };
    seccompProfile?: { type?: string };
  };
}

/** Where each manifest keeps its pods. */
function podSpecs(): Array<{ where: string; spec: PodSpec }> {
  const out: Array<{ where: string; spec: PodSpec }> = [];
  for (const { file, doc } of docs) {
    const spec = doc.spec as
      { podTemplate?: { spec: PodSpec }; template?: { spec: PodSpec } } | undefined;
    const pod = spec?.podTemplate?.spec ?? spec?.template?.spec;
    if (pod) out.push({ where: `${file} ${doc.kind}/${doc.metadata.name}`, spec: pod });
  }
  return out;
}

/** The restricted Pod Security Standard's checks (kubernetes.io/docs/concepts/security/pod-security-standards). */
function restrictedViolations(pod: PodSpec): string[] {
  const v: string[] = [];
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) v.push("host namespaces");
  const allowedVolumes = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
  ];
  for (const vol of pod.volumes ?? []) {
    const kinds = Object.keys(vol).filter((k) => k !== "name");
    if (!kinds.every((k) => allowedVolumes.includes(k))) v.push(`volume ${vol.name}: ${kinds}`);
  }
  const podSeccomp = pod.securityContext?.seccompProfile?.type;
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const sc = c.securityContext ?? {};
    if (sc.privileged) v.push(`${c.name}: privileged`);
    if (sc.allowPrivilegeEscalation !== false) v.push(`${c.name}: allowPrivilegeEscalation`);
    if (!(sc.capabilities?.drop ?? []).includes("ALL"))
      v.push(`${c.name}: capabilities not dropped`);
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== "NET_BIND_SERVICE"))
      v.push(`${c.name}: capabilities added`);
    if (!(sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot))
      v.push(`${c.name}: may run as root`);
    if ((sc.runAsUser ?? pod.securityContext?.runAsUser) === 0) v.push(`${c.name}: runAsUser 0`);
    const seccomp = sc.seccompProfile?.type ?? podSeccomp;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") v.push(`${c.name}: seccomp`);
    if ((c.ports ?? []).some((p) => p.hostPort)) v.push(`${c.name}: hostPort`);
  }
  return v;
}

describe("deploy/kubernetes manifests", () => {
  test("every document is a known kind, in the wheellock namespace", () => {
    assert.ok(docs.length >= 10, `found ${docs.length} documents`);
    for (const { file, doc } of docs) {
      const known =
        CORE[`${doc.apiVersion}/${doc.kind}`] !== undefined ||
        /^(extensions\.)?agents\.x-k8s\.io\//.test(doc.apiVersion);
      assert.ok(known, `${file}: ${doc.apiVersion} ${doc.kind}`);
      if (doc.kind !== "Namespace") assert.equal(doc.metadata.namespace, "wheellock", file);
    }
  });

  test("core objects validate against the Kubernetes schemas (kubernetes-models)", () => {
    for (const { file, doc } of docs) {
      const Model = CORE[`${doc.apiVersion}/${doc.kind}`];
      if (Model) assert.doesNotThrow(() => new Model(doc as never).validate(), file);
    }
    for (const { where, spec } of podSpecs())
      assert.doesNotThrow(
        () => new Pod({ metadata: { name: "check" }, spec } as never).validate(),
        where,
      );
  });

  test(
    "agent-sandbox objects validate against the CRD schemas, strictly",
    { skip: NO_CRDS },
    () => {
      let checked = 0;
      for (const { file, doc } of docs) {
        if (!/agents\.x-k8s\.io\//.test(doc.apiVersion)) continue;
        const v = validators.get(`${doc.apiVersion}/${doc.kind}`);
        assert.ok(v, `${file}: no CRD for ${doc.apiVersion} ${doc.kind}`);
        assert.ok(v(doc), `${file} ${doc.kind}/${doc.metadata.name}: ${errorsOf(v)}`);
        checked++;
      }
      assert.ok(checked >= 4, `checked ${checked}`);
    },
  );

  test(
    "every pod spec passes the CRD's PodSpec schema strictly (typos fail)",
    { skip: NO_CRDS },
    () => {
      const v = strictPodSpec as ValidateFunction;
      for (const { where, spec } of podSpecs()) assert.ok(v(spec), `${where}: ${errorsOf(v)}`);
      // The check has teeth: a misspelt field is refused.
      const typo = structuredClone(podSpecs()[0]?.spec) as PodSpec & Record<string, unknown>;
      (typo.containers[0] as unknown as Record<string, unknown>).securityContxt = {};
      assert.equal(v(typo), false);
    },
  );

  test("every pod meets the restricted Pod Security Standard", () => {
    const pods = podSpecs();
    assert.ok(pods.length >= 3);
    for (const { where, spec } of pods) assert.deepEqual(restrictedViolations(spec), [], where);
    const ns = docs.find((d) => d.doc.kind === "Namespace")?.doc;
    assert.equal(
      (ns?.metadata as { labels?: Record<string, string> }).labels?.[
        "pod-security.kubernetes.io/enforce"
      ],
      "restricted",
    );
  });

  test("templates run serve --single, KVM by device plugin with a TCG twin; the DaemonSet runs --max-sandboxes", () => {
    const templates = docs.filter((d) => d.doc.kind === "SandboxTemplate");
    const main = (t: (typeof docs)[number]): Container =>
      (t.doc.spec as { podTemplate: { spec: PodSpec } }).podTemplate.spec
        .containers[0] as Container;
    const kvm = templates.filter((t) => main(t).resources?.limits?.["devices.kubevirt.io/kvm"]);
    const tcg = templates.filter((t) => !main(t).resources?.limits?.["devices.kubevirt.io/kvm"]);
    assert.equal(kvm.length, 1);
    assert.equal(tcg.length, 1);
    for (const t of templates) {
      assert.deepEqual(main(t).args?.slice(0, 2), ["serve", "--single"]);
      assert.equal(
        (t.doc.spec as { envVarsInjectionPolicy?: string }).envVarsInjectionPolicy,
        "Disallowed",
      );
    }
    const pools = docs.filter((d) => d.doc.kind === "SandboxWarmPool");
    const names = new Set(templates.map((t) => t.doc.metadata.name));
    for (const p of pools)
      assert.ok(
        names.has((p.doc.spec as { sandboxTemplateRef: { name: string } }).sandboxTemplateRef.name),
      );
    const ds = docs.find((d) => d.doc.kind === "DaemonSet")?.doc;
    const dsArgs = (ds?.spec as { template: { spec: PodSpec } }).template.spec.containers[0]?.args;
    assert.equal(dsArgs?.[0], "serve");
    assert.ok(dsArgs?.includes("--max-sandboxes"));
  });

  test("secrets come from Secrets only: no literal secret-looking env, the token is a Secret file", () => {
    for (const { where, spec } of podSpecs()) {
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        for (const e of c.env ?? [])
          assert.ok(
            !/TOKEN|SECRET|PASSWORD|KEY|CREDENTIAL/i.test(e.name) || e.valueFrom?.secretKeyRef,
            `${where}: env ${e.name} must come from a Secret`,
          );
        const tokenFlag = c.args?.indexOf("--token-file") ?? -1;
        if (tokenFlag >= 0) {
          const path = c.args?.[tokenFlag + 1] ?? "";
          const secretVolumes = (spec.volumes ?? []).filter((v) => v.secret).map((v) => v.name);
          assert.ok(secretVolumes.length > 0, `${where}: the token comes from a Secret volume`);
          assert.ok(path.startsWith("/etc/wheellock/token/"), where);
        }
      }
      assert.equal(spec.automountServiceAccountToken, false, `${where}: no API token in the pod`);
    }
  });

  test("the NetworkPolicy covers every wheellock pod and closes private ranges and metadata", () => {
    const np = docs.find((d) => d.doc.kind === "NetworkPolicy")?.doc;
    const spec = np?.spec as {
      podSelector: { matchLabels: Record<string, string> };
      policyTypes: string[];
      egress: Array<{ to: Array<{ ipBlock?: { cidr: string; except?: string[] } }> }>;
    };
    assert.deepEqual(spec.policyTypes.sort(), ["Egress", "Ingress"]);
    for (const { where, spec: pod } of podSpecs()) {
      void pod;
      const labels = docs.find((d) => where.startsWith(d.file))?.doc.spec as {
        podTemplate?: { metadata: { labels: Record<string, string> } };
        template?: { metadata: { labels: Record<string, string> } };
      };
      const podLabels = (labels.podTemplate ?? labels.template)?.metadata.labels ?? {};
      for (const [k, v] of Object.entries(spec.podSelector.matchLabels))
        assert.equal(podLabels[k], v, `${where} is selected`);
    }
    const blocks = spec.egress.flatMap((r) => r.to).flatMap((t) => (t.ipBlock ? [t.ipBlock] : []));
    const v4 = blocks.find((b) => b.cidr === "0.0.0.0/0");
    const v6 = blocks.find((b) => b.cidr === "::/0");
    for (const cidr of [
      "10.0.0.0/8",
      "172.16.0.0/12",
      "192.168.0.0/16",
      "169.254.0.0/16",
      "100.64.0.0/10",
      "127.0.0.0/8",
    ])
      assert.ok(v4?.except?.includes(cidr), `IPv4 egress excludes ${cidr}`);
    for (const cidr of ["fc00::/7", "fe80::/10", "::1/128"])
      assert.ok(v6?.except?.includes(cidr), `IPv6 egress excludes ${cidr}`);
    // No rule opens everything: every `to` is a selector or an ipBlock with exceptions.
    for (const b of blocks) assert.ok((b.except ?? []).length > 0 || !/\/0$/.test(b.cidr));
  });
});
