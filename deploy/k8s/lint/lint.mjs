// Offline lint of ConvServe's Kubernetes manifests.
//   node lint.mjs MANIFEST_DIR SERVER_BIN
// 1. schema: every document of every MANIFEST_DIR/*.yaml validates against the
//    Kubernetes API schema of its apiVersion/kind (kubernetes-models) and has
//    no field that schema lacks (the library alone accepts unknown fields);
// 2. consistency: the manifests agree with each other and with the flags that
//    `SERVER_BIN --help` documents (names, types and defaults of CONVSERVE_*);
// 3. negative tests: broken variants of the manifests, made in memory, must
//    each be rejected by the check meant to catch them.
// Prints one line per check and variant, then a summary; exits 1 on a failure.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";

const CONTAINER = "convserve";
const READINESS_SERVICE = "convserve.v1.ConvService";
const PROCESS_HEADROOM_MIB = 256;  // memory beyond the server's own budgets

// ---------------------------------------------------------------- inputs

function loadManifests(dir) {
  const docs = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
    for (const doc of YAML.parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
      const obj = doc.toJS();
      if (obj !== null) docs.push({ file, obj });
    }
  }
  return docs;
}

// Reads "--flag TYPE[:RULE][=DEFAULT] (Env:CONVSERVE_FLAG)" lines of --help.
function serverFlags(serverBin) {
  const text = execFileSync(serverBin, ["--help"], { encoding: "utf8" });
  const flags = new Map();
  for (const [, flag, spec, env] of text.matchAll(/(--[\w-]+) (\S+) \(Env:(CONVSERVE_\w+)\)/g)) {
    const [typeRule, dflt] = spec.split(/=(.*)/s);
    const [type, rule = ""] = typeRule.split(/:(.*)/s);
    flags.set(env, { flag, type, rule, dflt });
  }
  if (flags.size === 0) throw new Error(`no "(Env:CONVSERVE_...)" in the output of ${serverBin} --help`);
  return flags;
}

// Why `value` is not valid for a flag of this TYPE:RULE, or "".
function badValue(value, { type, rule }) {
  const n = Number(value);
  if (type === "INT" && !/^[+-]?\d+$/.test(value)) return "is not a whole number";
  if (type === "FLOAT" && (value.trim() === "" || !Number.isFinite(n))) return "is not a number";
  if (rule === "POSITIVE" && !(n > 0)) return "must be positive";
  if (rule === "NON-NEGATIVE" && !(n >= 0)) return "must be 0 or more";
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(rule);
  if (range && !(n >= Number(range[1]) && n <= Number(range[2]))) return `must be in ${rule}`;
  const set = /^\{(.*)\}$/.exec(rule);
  if (set && !set[1].split(",").includes(value.toLowerCase())) return `must be one of ${set[1]}`;
  return "";
}

// Kubernetes quantities: "4", "500m", "4Gi", "1e3" -> number (cores or bytes).
const SUFFIXES = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
function quantity(q) {
  const m = /^(\d+(?:\.\d*)?|\.\d+)((?:[eE][+-]?\d+)?)(|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)$/.exec(String(q ?? ""));
  return m ? Number(m[1] + m[2]) * SUFFIXES[m[3]] : NaN;
}

// ---------------------------------------------------------------- schema

const models = new Map();
async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}|${kind}`;
  if (!models.has(key)) {
    let model;
    if (/^([a-z0-9.-]+\/)?v\w+$/.test(apiVersion) && /^[A-Z]\w*$/.test(kind)) {
      try { model = (await import(`kubernetes-models/${apiVersion}/${kind}`))[kind]; } catch { /* unknown */ }
    }
    // Only top-level resources (not e.g. DeploymentSpec) carry apiVersion and kind.
    models.set(key, model?.apiVersion === apiVersion && model?.kind === kind ? model : null);
  }
  return models.get(key);
}

// The generated validators read every property their schema defines
// (`data.replicas`) and iterate the keys of free-form maps (labels). A Proxy
// over each object records what was read; a key never read is not in the schema.
function instrument(value, path, nodes) {
  if (Array.isArray(value)) return value.map((v, i) => instrument(v, `${path}[${i}]`, nodes));
  if (value === null || typeof value !== "object") return value;
  const target = {};
  for (const [k, v] of Object.entries(value)) target[k] = instrument(v, path ? `${path}.${k}` : k, nodes);
  const read = new Set();
  nodes.push({ path, keys: Object.keys(target), read });
  return new Proxy(target, {
    get: (t, k, r) => { if (typeof k === "string") read.add(k); return Reflect.get(t, k, r); },
    has: (t, k) => { if (typeof k === "string") read.add(k); return Reflect.has(t, k); },
  });
}

async function schemaProblems({ file, obj }) {
  const where = `${file}: ${obj?.kind}/${obj?.metadata?.name}`;
  const model = await modelFor(obj?.apiVersion, obj?.kind);
  if (!model) return [`${where}: unknown apiVersion/kind ${obj?.apiVersion} ${obj?.kind}`];
  const problems = [];
  const nodes = [];
  try {
    model.prototype.validate.call(instrument(obj, "", nodes));
  } catch (e) {
    for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
      problems.push(`${where} ${err.instancePath.slice(1).replaceAll("/", ".") || "(document)"}: ${err.message}`);
    }
  }
  for (const { path, keys, read } of nodes) {
    if (read.size === 0) continue;  // a free-form object: the schema reads nothing in it
    for (const k of keys.filter((k) => !read.has(k))) problems.push(`${where} ${path ? `${path}.` : ""}${k}: unknown field`);
  }
  return problems;
}

// ---------------------------------------------------------------- consistency

function selects(selector, labels = {}) {
  const { matchLabels = {}, matchExpressions = [] } = selector ?? {};
  if (!Object.keys(matchLabels).length && !matchExpressions.length) return false;  // selects everything
  const ops = { In: (k, vs) => vs.includes(labels[k]), NotIn: (k, vs) => !vs.includes(labels[k]),
    Exists: (k) => k in labels, DoesNotExist: (k) => !(k in labels) };
  return Object.entries(matchLabels).every(([k, v]) => labels[k] === v) &&
    matchExpressions.every(({ key, operator, values = [] }) => ops[operator]?.(key, values) ?? false);
}

const portOf = (address) => Number(/:(\d+)$/.exec(address ?? "")?.[1]);

// What the checks look at, found once; nothing here throws on a broken manifest.
function context(docs, flags) {
  const all = (kind) => docs.filter((d) => d.obj?.kind === kind);
  const dep = all("Deployment")[0];
  const pod = dep?.obj.spec?.template;
  const containers = pod?.spec?.containers ?? [];
  const ci = Math.max(0, containers.findIndex((c) => c.name === CONTAINER));
  const container = containers[ci] ?? {};
  const cpath = `spec.template.spec.containers[${ci}]`;
  const env = new Map((container.env ?? []).map((e) => [e.name, e]));
  const ports = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
  // A CONVSERVE_* setting: its literal value, else the server's default.
  const setting = (name) => env.get(name)?.value ?? flags.get(name)?.dflt;
  const at = (d, field) => `${d.file}: ${d.obj.kind}/${d.obj.metadata?.name} ${field}`;
  return { docs, all, dep, pod, container, cpath, env, ports, flags, setting, at,
    labels: pod?.metadata?.labels ?? {}, depAt: (field) => at(dep, `${cpath}.${field}`) };
}

// name -> [what it makes sure of, (ctx) -> problems]
const CHECKS = {
  kustomization: ["kustomization.yaml lists every manifest, and only those", (c) => {
    const k = c.all("Kustomization")[0];
    if (!k) return ["kustomization.yaml: no Kustomization"];
    const known = ["apiVersion", "kind", "resources", "namespace", "namePrefix", "nameSuffix", "labels",
      "commonLabels", "commonAnnotations", "images", "replicas", "patches"];
    const problems = Object.keys(k.obj).filter((f) => !known.includes(f)).map((f) => `${k.file}: ${f}: unknown field`);
    if (k.obj.apiVersion !== "kustomize.config.k8s.io/v1beta1") problems.push(`${k.file}: apiVersion: not kustomize.config.k8s.io/v1beta1`);
    const listed = k.obj.resources ?? [];
    const files = [...new Set(c.docs.filter((d) => d !== k).map((d) => d.file))];
    for (const f of files.filter((f) => !listed.includes(f))) problems.push(`${k.file}: resources: ${f} is missing`);
    for (const f of listed.filter((f) => !files.includes(f))) problems.push(`${k.file}: resources: ${f} is not a manifest here`);
    return problems;
  }],
  selectors: ["Deployment, Services, PDB and spread constraints select the pod labels", (c) => {
    const problems = [];
    const want = JSON.stringify(c.labels);
    if (!selects(c.dep.obj.spec?.selector, c.labels)) problems.push(c.at(c.dep, `spec.selector: does not select the pod labels ${want}`));
    for (const s of c.all("Service")) {
      if (!selects({ matchLabels: s.obj.spec?.selector }, c.labels)) problems.push(c.at(s, `spec.selector: does not select the pod labels ${want}`));
    }
    for (const p of c.all("PodDisruptionBudget")) {
      if (!selects(p.obj.spec?.selector, c.labels)) problems.push(c.at(p, `spec.selector: does not select the pod labels ${want}`));
    }
    (c.pod.spec?.topologySpreadConstraints ?? []).forEach((t, i) => {
      if (!selects(t.labelSelector, c.labels)) problems.push(c.at(c.dep, `spec.template.spec.topologySpreadConstraints[${i}].labelSelector: does not select the pod labels`));
    });
    return problems;
  }],
  hpa: ["HPA scales the Deployment, and its minReplicas leave the PDB one eviction with 2 pods serving", (c) => {
    const problems = [];
    const hpas = c.all("HorizontalPodAutoscaler");
    if (!hpas.length) return ["no HorizontalPodAutoscaler"];
    for (const h of hpas) {
      const { scaleTargetRef: ref = {}, minReplicas = 1, maxReplicas } = h.obj.spec ?? {};
      if (ref.apiVersion !== "apps/v1" || ref.kind !== "Deployment" || ref.name !== c.dep.obj.metadata?.name) {
        problems.push(c.at(h, `spec.scaleTargetRef: names ${ref.apiVersion} ${ref.kind}/${ref.name}, not apps/v1 Deployment/${c.dep.obj.metadata?.name}`));
      }
      if (minReplicas > maxReplicas) problems.push(c.at(h, `spec.minReplicas: ${minReplicas} > maxReplicas ${maxReplicas}`));
      const replicas = c.dep.obj.spec?.replicas ?? 1;
      if (replicas < minReplicas || replicas > maxReplicas) problems.push(c.at(c.dep, `spec.replicas: ${replicas} is outside the HPA's ${minReplicas}..${maxReplicas}`));
      for (const p of c.all("PodDisruptionBudget")) {
        const { maxUnavailable, minAvailable } = p.obj.spec ?? {};
        const count = (v) => (typeof v === "string" && v.endsWith("%") ? Math.ceil((minReplicas * parseInt(v, 10)) / 100) : Number(v));
        const evictable = maxUnavailable !== undefined ? count(maxUnavailable) : minReplicas - count(minAvailable);
        if (!(evictable >= 1 && minReplicas - evictable >= 2)) {
          problems.push(c.at(h, `spec.minReplicas: ${minReplicas} pods with ${p.file}'s budget allow ${evictable} eviction(s) leaving ${minReplicas - evictable}; need >= 1 leaving >= 2`));
        }
      }
    }
    return problems;
  }],
  env: ["every CONVSERVE_* variable is a server flag (--help) with a literal value of the flag's type", (c) => {
    const problems = [];
    const seen = new Set();
    (c.container.env ?? []).forEach((e, i) => {
      const field = `${c.cpath}.env[${i}]`;
      if (seen.has(e.name)) problems.push(c.at(c.dep, `${field}: ${e.name} is set twice`));
      seen.add(e.name);
      if (!e.name.startsWith("CONVSERVE_")) return;
      const flag = c.flags.get(e.name);
      if (!flag) return problems.push(c.at(c.dep, `${field}: ${e.name} is no flag of convserve-server (see --help)`));
      if (typeof e.value !== "string") return problems.push(c.at(c.dep, `${field}: ${e.name} needs a literal value (so it can be checked)`));
      const why = badValue(e.value, flag);
      if (why) problems.push(c.at(c.dep, `${field}: ${e.name}="${e.value}" ${why} (${flag.flag} ${flag.type}${flag.rule && `:${flag.rule}`})`));
    });
    return problems;
  }],
  cpu: ["cpu requests == limits == CONVSERVE_WORKERS x CONVSERVE_THREADS_PER_WORKER", (c) => {
    const { requests = {}, limits = {} } = c.container.resources ?? {};
    const workers = Number(c.setting("CONVSERVE_WORKERS"));
    const threads = Number(c.env.get("CONVSERVE_THREADS_PER_WORKER")?.value);
    const problems = [];
    if (!Number.isInteger(threads)) problems.push(c.depAt("env: CONVSERVE_THREADS_PER_WORKER must be set (its default depends on the node's cores)"));
    if (quantity(requests.cpu) !== quantity(limits.cpu)) problems.push(c.depAt(`resources.requests.cpu: ${requests.cpu} != limits.cpu ${limits.cpu} (Guaranteed QoS wants them equal)`));
    if (quantity(limits.cpu) !== workers * threads) problems.push(c.depAt(`resources.limits.cpu: ${limits.cpu} != CONVSERVE_WORKERS x CONVSERVE_THREADS_PER_WORKER = ${workers} x ${threads}`));
    return problems;
  }],
  memory: [`memory requests == limits >= memory budget + weight cache + filter store + ${PROCESS_HEADROOM_MIB} MiB`, (c) => {
    const { requests = {}, limits = {} } = c.container.resources ?? {};
    const parts = ["CONVSERVE_MEMORY_BUDGET_MB", "CONVSERVE_WEIGHT_CACHE_MB", "CONVSERVE_FILTER_STORE_MB"].map((n) => Number(c.setting(n)));
    const needMiB = parts.reduce((a, b) => a + b, PROCESS_HEADROOM_MIB);
    const problems = [];
    if (quantity(requests.memory) !== quantity(limits.memory)) problems.push(c.depAt(`resources.requests.memory: ${requests.memory} != limits.memory ${limits.memory}`));
    if (!(quantity(limits.memory) >= needMiB * 2 ** 20)) problems.push(c.depAt(`resources.limits.memory: ${limits.memory} < ${parts.join(" + ")} + ${PROCESS_HEADROOM_MIB} = ${needMiB}Mi`));
    return problems;
  }],
  probes: [`startup, readiness and liveness are gRPC probes on the grpc port; readiness asks for ${READINESS_SERVICE}, liveness for ""`, (c) => {
    const problems = [];
    const grpcPort = c.ports.get("grpc");
    const want = { startupProbe: null, readinessProbe: READINESS_SERVICE, livenessProbe: "" };
    for (const [probe, service] of Object.entries(want)) {
      const g = c.container[probe]?.grpc;
      if (!g) { problems.push(c.depAt(`${probe}.grpc: missing (a gRPC health probe is required)`)); continue; }
      if (g.port !== grpcPort) problems.push(c.depAt(`${probe}.grpc.port: ${g.port} is not the grpc containerPort ${grpcPort}`));
      if (service !== null && (g.service ?? "") !== service) problems.push(c.depAt(`${probe}.grpc.service: "${g.service ?? ""}", want "${service}"`));
    }
    return problems;
  }],
  shutdown: ["terminationGracePeriodSeconds >= preStop sleep + CONVSERVE_GRACE_PERIOD_S", (c) => {
    const preStop = c.container.lifecycle?.preStop;
    const command = (preStop?.exec?.command ?? []).join(" ");
    const sleep = Number(preStop?.sleep?.seconds ?? /(?:^|[\s/])sleep\s+(\d+(?:\.\d+)?)\b/.exec(command)?.[1]);
    if (!(sleep > 0)) return [c.depAt(`lifecycle.preStop: must sleep a few seconds (exec sleep N) so endpoints drop the pod before SIGTERM`)];
    const grace = Number(c.setting("CONVSERVE_GRACE_PERIOD_S"));
    const total = c.pod.spec?.terminationGracePeriodSeconds ?? 30;
    return total >= sleep + grace ? [] : [c.at(c.dep, `spec.template.spec.terminationGracePeriodSeconds: ${total} < preStop sleep ${sleep} + CONVSERVE_GRACE_PERIOD_S ${grace}`)];
  }],
  "connection-age": ["CONVSERVE_MAX_CONNECTION_AGE_S is set and > 0 (connections get rebalanced)", (c) => {
    const age = Number(c.env.get("CONVSERVE_MAX_CONNECTION_AGE_S")?.value);
    return age > 0 ? [] : [c.depAt(`env: CONVSERVE_MAX_CONNECTION_AGE_S must be set and > 0 (is ${c.env.get("CONVSERVE_MAX_CONNECTION_AGE_S")?.value})`)];
  }],
  ports: ["CONVSERVE_ADDRESS / METRICS_ADDRESS ports == containerPorts grpc / metrics == Services' targetPorts", (c) => {
    const problems = [];
    for (const [name, variable] of [["grpc", "CONVSERVE_ADDRESS"], ["metrics", "CONVSERVE_METRICS_ADDRESS"]]) {
      const port = c.ports.get(name);
      if (port === undefined) problems.push(c.depAt(`ports: no containerPort named ${name}`));
      else if (portOf(c.setting(variable)) !== port) problems.push(c.depAt(`env: ${variable}=${c.setting(variable)} does not listen on containerPort ${name} ${port}`));
    }
    const scrape = c.pod.metadata?.annotations?.["prometheus.io/port"];
    if (scrape !== undefined && Number(scrape) !== c.ports.get("metrics")) problems.push(c.at(c.dep, `spec.template.metadata.annotations.prometheus.io/port: ${scrape} is not the metrics containerPort`));
    for (const s of c.all("Service")) {
      (s.obj.spec?.ports ?? []).forEach((p, i) => {
        const target = p.targetPort ?? p.port;
        const resolved = typeof target === "string" ? c.ports.get(target) : target;
        const expected = c.ports.get(p.name);
        if (![...c.ports.values()].includes(resolved)) problems.push(c.at(s, `spec.ports[${i}].targetPort: ${target} is no containerPort of ${CONTAINER}`));
        else if (expected !== undefined && resolved !== expected) problems.push(c.at(s, `spec.ports[${i}].targetPort: ${target} is not the ${p.name} containerPort ${expected}`));
      });
    }
    return problems;
  }],
  services: ["a ClusterIP Service and a headless one (clusterIP: None) both serve grpc (appProtocol grpc)", (c) => {
    const name = c.dep.obj.metadata?.name;
    const problems = [];
    for (const [svcName, headless] of [[name, false], [`${name}-headless`, true]]) {
      const s = c.all("Service").find((d) => d.obj.metadata?.name === svcName);
      if (!s) { problems.push(`no Service ${svcName}`); continue; }
      if ((s.obj.spec?.clusterIP === "None") !== headless) problems.push(c.at(s, `spec.clusterIP: ${headless ? "must be None (headless)" : "must not be None"}`));
      if ((s.obj.spec?.type ?? "ClusterIP") !== "ClusterIP") problems.push(c.at(s, `spec.type: must be ClusterIP`));
      const grpc = (s.obj.spec?.ports ?? []).find((p) => p.name === "grpc");
      if (grpc?.appProtocol !== "grpc") problems.push(c.at(s, `spec.ports: needs a port named grpc with appProtocol grpc`));
    }
    return problems;
  }],
  security: ["non-root, no privilege escalation, read-only root filesystem, all capabilities dropped", (c) => {
    const sc = c.container.securityContext ?? {};
    const problems = [];
    if ((sc.runAsNonRoot ?? c.pod.spec?.securityContext?.runAsNonRoot) !== true) problems.push(c.depAt("securityContext.runAsNonRoot: must be true"));
    if (sc.runAsUser === 0) problems.push(c.depAt("securityContext.runAsUser: must not be 0"));
    if (sc.allowPrivilegeEscalation !== false) problems.push(c.depAt("securityContext.allowPrivilegeEscalation: must be false"));
    if (sc.readOnlyRootFilesystem !== true) problems.push(c.depAt("securityContext.readOnlyRootFilesystem: must be true"));
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) problems.push(c.depAt("securityContext.capabilities.drop: must include ALL"));
    return problems;
  }],
  rollout: ["rolling updates never take a ready pod away first (maxUnavailable 0)", (c) => {
    const s = c.dep.obj.spec?.strategy;
    const unavailable = s?.rollingUpdate?.maxUnavailable;
    return s?.type === "RollingUpdate" && (unavailable === 0 || unavailable === "0%") ? []
      : [c.at(c.dep, `spec.strategy: must be RollingUpdate with maxUnavailable 0 (is ${s?.type} ${unavailable})`)];
  }],
};

// Every check over `docs`: [{check, label, problems}].
async function lint(docs, flags) {
  const results = [];
  for (const d of docs.filter((d) => d.obj?.kind !== "Kustomization")) {
    results.push({ check: "schema", label: `${d.file} ${d.obj?.kind}/${d.obj?.metadata?.name}`, problems: await schemaProblems(d) });
  }
  const c = context(docs, flags);
  for (const [check, [label, run]] of Object.entries(CHECKS)) {
    let problems;
    if (!c.dep) problems = ["no Deployment"];
    else if (!c.container.name) problems = [`Deployment has no container named ${CONTAINER}`];
    else {
      try { problems = run(c); } catch (e) { problems = [`check crashed: ${e.stack}`]; }
    }
    results.push({ check, label, problems });
  }
  return results;
}

// ---------------------------------------------------------------- negative tests

const find = (docs, kind, name) => docs.find((d) => d.obj?.kind === kind && (!name || d.obj.metadata?.name === name))?.obj;
const podSpec = (docs) => find(docs, "Deployment").spec.template.spec;
const main = (docs) => podSpec(docs).containers.find((c) => c.name === CONTAINER);
const envVar = (docs, name) => main(docs).env.find((e) => e.name === name);

// [what is broken, the check that must reject it, how to break it]
const VARIANTS = [
  ["typo'd field terminationGracePeriodSecond", "schema", (d) => {
    const s = podSpec(d); s.terminationGracePeriodSecond = s.terminationGracePeriodSeconds; delete s.terminationGracePeriodSeconds; }],
  ["typo'd field in a probe (grpc.servce)", "schema", (d) => { const g = main(d).readinessProbe.grpc; g.servce = g.service; delete g.service; }],
  ["replicas as a string", "schema", (d) => { find(d, "Deployment").spec.replicas = "3"; }],
  ["unknown apiVersion policy/v1beta9", "schema", (d) => { find(d, "PodDisruptionBudget").apiVersion = "policy/v1beta9"; }],
  ["cpu limit 3, not workers x threads", "cpu", (d) => { main(d).resources.limits.cpu = "3"; main(d).resources.requests.cpu = "3"; }],
  ["cpu request below the limit", "cpu", (d) => { main(d).resources.requests.cpu = "2"; }],
  ["memory limit below budget + caches + headroom", "memory", (d) => { main(d).resources.limits.memory = "3Gi"; main(d).resources.requests.memory = "3Gi"; }],
  ["terminationGracePeriodSeconds shorter than preStop + grace", "shutdown", (d) => { podSpec(d).terminationGracePeriodSeconds = 30; }],
  ["no preStop sleep", "shutdown", (d) => { delete main(d).lifecycle; }],
  ["misspelt variable CONVSERVE_MAX_CONECTION_AGE_S", "env", (d) => { envVar(d, "CONVSERVE_MAX_CONNECTION_AGE_S").name = "CONVSERVE_MAX_CONECTION_AGE_S"; }],
  ["CONVSERVE_LOG_FORMAT=jsn", "env", (d) => { envVar(d, "CONVSERVE_LOG_FORMAT").value = "jsn"; }],
  ["CONVSERVE_MAX_CONNECTION_AGE_S=0", "connection-age", (d) => { envVar(d, "CONVSERVE_MAX_CONNECTION_AGE_S").value = "0"; }],
  ["Service selector matching no pod", "selectors", (d) => { find(d, "Service", "convserve").spec.selector = { "app.kubernetes.io/name": "convserv" }; }],
  ["PDB selector matching no pod", "selectors", (d) => { find(d, "PodDisruptionBudget").spec.selector.matchLabels = { app: "convserve" }; }],
  ["readiness probe on the server's health (\"\")", "probes", (d) => { main(d).readinessProbe.grpc.service = ""; }],
  ["liveness probe on another port", "probes", (d) => { main(d).livenessProbe.grpc.port = 50052; }],
  ["CONVSERVE_METRICS_ADDRESS on port 9091", "ports", (d) => { envVar(d, "CONVSERVE_METRICS_ADDRESS").value = "0.0.0.0:9091"; }],
  ["Service targetPort 50052", "ports", (d) => { find(d, "Service", "convserve").spec.ports[0].targetPort = 50052; }],
  ["headless Service with a cluster IP", "services", (d) => { delete find(d, "Service", "convserve-headless").spec.clusterIP; }],
  ["HPA scaling another Deployment", "hpa", (d) => { find(d, "HorizontalPodAutoscaler").spec.scaleTargetRef.name = "convserve-v2"; }],
  ["HPA minReplicas 2 with a PDB allowing 1 eviction", "hpa", (d) => { find(d, "HorizontalPodAutoscaler").spec.minReplicas = 2; find(d, "Deployment").spec.replicas = 2; }],
  ["kustomization without hpa.yaml", "kustomization", (d) => { const k = find(d, "Kustomization"); k.resources = k.resources.filter((r) => r !== "hpa.yaml"); }],
  ["root filesystem writable", "security", (d) => { main(d).securityContext.readOnlyRootFilesystem = false; }],
  ["rolling update with maxUnavailable 1", "rollout", (d) => { find(d, "Deployment").spec.strategy.rollingUpdate.maxUnavailable = 1; }],
];

// ---------------------------------------------------------------- main

const [dir, serverBin] = process.argv.slice(2);
if (!dir || !serverBin) {
  console.error("usage: node lint.mjs MANIFEST_DIR SERVER_BIN");
  process.exit(2);
}
let docs, flags;
try {
  docs = loadManifests(dir);
  flags = serverFlags(serverBin);
} catch (e) {
  console.log(`k8s_lint: FAILED: ${e.message}`);
  process.exit(1);
}
console.log(`k8s_lint: ${docs.length} documents; ${flags.size} CONVSERVE_* variables from convserve-server --help`);

let failed = 0;
const results = await lint(docs, flags);
for (const { check, label, problems } of results) {
  if (problems.length === 0) { console.log(`ok    ${check.padEnd(14)} ${label}`); continue; }
  failed++;
  for (const p of problems) console.log(`FAIL  ${check.padEnd(14)} ${p}`);
}

console.log("k8s_lint: negative tests (each broken variant must be rejected by its check)");
let caught = 0;
for (let [what, check, mutate] of VARIANTS) {
  const broken = structuredClone(docs);
  let problems;
  try {
    mutate(broken);
    problems = (await lint(broken, flags)).filter((r) => r.check === check).flatMap((r) => r.problems);
  } catch (e) {
    problems = [];
    what += ` (could not build the variant: ${e.message})`;
  }
  if (problems.length) { caught++; console.log(`ok    rejected  ${what}: [${check}] ${problems[0]}`); }
  else console.log(`FAIL  accepted  ${what}: the ${check} check did not reject it`);
}

console.log(`k8s_lint: ${results.length - failed}/${results.length} checks passed, ` +
  `${caught}/${VARIANTS.length} broken variants rejected`);
process.exit(failed === 0 && caught === VARIANTS.length ? 0 : 1);
