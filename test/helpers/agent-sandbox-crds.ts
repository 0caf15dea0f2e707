// The agent-sandbox CRDs (kept as test data in ../shared/k8s/agent-sandbox-crds/) as strict
// validators, for the manifests test and the stand-in Kubernetes API: unknown fields are
// refused, as `kubectl apply --validate=strict` and an API server's strict field validation do.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";

const ROOT = resolve(new URL("../..", import.meta.url).pathname);

/** ../shared next to the checkout (CI, the main clone), or above a worktree under wt/. */
function crdDir(): string | undefined {
  const candidates = [
    process.env.WHEELLOCK_SHARED_DIR,
    join(ROOT, "../shared"),
    join(ROOT, "../../shared"),
  ].filter((p): p is string => p !== undefined);
  return candidates
    .map((p) => join(p, "k8s/agent-sandbox-crds"))
    .find((p) => existsSync(join(p, "extensions.agents.x-k8s.io_sandboxtemplates.yaml")));
}
export const CRDS = crdDir();
export const NO_CRDS: string | false = CRDS
  ? false
  : "the agent-sandbox CRDs are not in ../shared/k8s/agent-sandbox-crds/ (set WHEELLOCK_SHARED_DIR)";

type Schema = Record<string, unknown>;

/**
 * A CRD schema as strict validation sees it: objects with declared properties accept no
 * others, unless the schema preserves unknown fields (Kubernetes' own rule for pruning).
 */
function strict(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!schema || typeof schema !== "object") return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema as Schema)) out[k] = strict(v);
  if (out.properties && !out["x-kubernetes-preserve-unknown-fields"] && !out.additionalProperties)
    out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });

/** kind → validator for each served version of the agent-sandbox CRDs. */
function crdValidators(): Map<string, ValidateFunction> {
  const out = new Map<string, ValidateFunction>();
  if (!CRDS) return out;
  for (const file of readdirSync(CRDS).filter((f) => f.endsWith(".yaml"))) {
    const crd = parseAllDocuments(readFileSync(join(CRDS, file), "utf8"))[0]?.toJS() as {
      spec: {
        group: string;
        names: { kind: string };
        versions: Array<{ name: string; schema: { openAPIV3Schema: unknown } }>;
      };
    };
    for (const v of crd.spec.versions)
      out.set(
        `${crd.spec.group}/${v.name}/${crd.spec.names.kind}`,
        ajv.compile(strict(v.schema.openAPIV3Schema) as Schema),
      );
  }
  return out;
}
export const validators = crdValidators();

/** The PodSpec schema the SandboxTemplate CRD embeds: strict checking for any pod spec. */
function podSpecValidator(): ValidateFunction | undefined {
  if (!CRDS) return undefined;
  const crd = parseAllDocuments(
    readFileSync(join(CRDS, "extensions.agents.x-k8s.io_sandboxtemplates.yaml"), "utf8"),
  )[0]?.toJS() as {
    spec: { versions: Array<{ schema: { openAPIV3Schema: { properties: Schema } } }> };
  };
  const spec = crd.spec.versions[0]?.schema.openAPIV3Schema.properties.spec as {
    properties: { podTemplate: { properties: { spec: unknown } } };
  };
  return ajv.compile(strict(spec.properties.podTemplate.properties.spec) as Schema);
}
export const strictPodSpec = podSpecValidator();

/** The first few of a validator's last errors, on one line. */
export function errorsOf(v: ValidateFunction): string {
  return (v.errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`)
    .join("; ");
}
