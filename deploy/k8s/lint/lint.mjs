// Offline lint of ConvServe's Kubernetes manifests.
//   node lint.mjs MANIFEST_DIR SERVER_BIN
// 1. schema: every document of every MANIFEST_DIR/*.yaml validates against the
//    Kubernetes API schema of its apiVersion/kind (kubernetes-models) and has
//    no field that schema lacks (the library alone accepts unknown fields);
// 2. consistency: the manifests agree with each other and with the flags that
//    `SERVER_BIN --help` documents (names, types and defaults of CONVSERVE_*),
//    and TLS is wired right: certificate, key and tokens file from read-only
//    Secret folder mounts (no subPath, so rotation reaches the server), probes
//    that speak TLS (convserve-cli health, not the kubelet's gRPC probes);
// 3. the optional components MANIFEST_DIR/mutual-tls and MANIFEST_DIR/gpu
//    (kustomize JSON 6902 patches) applied in memory, each alone and both
//    together: the patched manifests must pass every check. The gpu component
//    makes the GPU variant (the CUDA image, nvidia.com/gpu limits, GPU nodes
//    selected and their taint tolerated), which the gpu check holds to that,
//    while the base Deployment must stay CPU-only;
// 4. negative tests: broken variants of the manifests, made in memory, must
//    each be rejected by the check meant to catch them.
// Prints one line per check and variant, then a summary; exits 1 on a failure.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import YAML from "yaml";

const CONTAINER = "convserve";
const READINESS_SERVICE = "convserve.v1.ConvService";
const PROCESS_HEADROOM_MIB = 256;  // memory beyond the server's own budgets
// Optional kustomize components, folders here (TURNS_ON: what each is for).
const COMPONENTS = ["mutual-tls", "gpu"];
// Files the server reads, which must come from mounted Secrets (the client CA
// may come from a ConfigMap: it is public). Without the first three set the
// replicas would serve plaintext without authentication.
const REQUIRED_FILES = ["CONVSERVE_TLS_CERT", "CONVSERVE_TLS_KEY", "CONVSERVE_AUTH_TOKENS_FILE"];
const CLIENT_CA = "CONVSERVE_TLS_CLIENT_CA";
const CLI_DEFAULT_TIMEOUT_S = 300;  // convserve-cli --timeout
// GPUs. A pod gets GPUs only through limits on the device plugin's resource;
// GPU nodes carry the taint nvidia.com/gpu:NoSchedule (with a value that
// differs between clusters) and labels of NVIDIA's GPU Feature Discovery
// (nvidia.com/gpu.present, .product, .count, ...) or the cloud's (GKE).
const GPU_RESOURCE = "nvidia.com/gpu";
const GPU_TAINT = { key: "nvidia.com/gpu", effect: "NoSchedule" };
const GPU_NODE_LABEL = /^(nvidia\.com\/gpu(\.[\w.-]+)?|cloud\.google\.com\/gke-accelerator)$/;
// Host memory a GPU worker adds: the CUDA runtime, cuDNN's and cuBLAS's code
// and host allocations; plus its pinned staging buffers, which grow to the
// largest request (CONVSERVE_MAX_REQUEST_MB).
const CUDA_HEADROOM_MIB = 1024;
// The CUDA image (Dockerfile target cuda) has "cuda" in its name or tag
// (convserve:0.1.0-cuda); a registry host or path is not looked at.
const isCudaImage = (image) => /cuda/i.test(String(image ?? "").split("/").pop());

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

// Reads "--flag TYPE[:RULE][=DEFAULT] (Env:CONVSERVE_FLAG)" lines of --help;
// a RULE may hold spaces ("FLOAT in [0 - 1]").
function serverFlags(serverBin) {
  const text = execFileSync(serverBin, ["--help"], { encoding: "utf8" });
  const flags = new Map();
  for (const [, flag, spec, env] of text.matchAll(/(--[\w-]+) ([^\n]+?) \(Env:(CONVSERVE_\w+)\)/g)) {
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
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(rule) ?? /^(?:INT|FLOAT) in \[(\S+) - (\S+)\]$/.exec(rule);
  if (range && !(n >= Number(range[1]) && n <= Number(range[2]))) return `must be in ${range[1]}..${range[2]}`;
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
const octal = (mode) => `0${mode.toString(8)}`;

// Where the container reads `path` from: the volumeMount whose folder holds it
// and that mount's volume. `kinds`: the volume sources allowed ("secret",
// "configMap"); `confidential`: others must not be able to read it.
// Returns { volume, problems }; problems are phrased after `what`.
function mountedFile(c, what, path, kinds, confidential) {
  if (typeof path !== "string" || !path.startsWith("/")) return { problems: [`${what}: "${path}" is not an absolute path`] };
  const mounts = (c.container.volumeMounts ?? []).filter((m) => {
    const dir = (m.mountPath ?? "").replace(/\/+$/, "");
    return path === dir || path.startsWith(`${dir}/`);
  }).sort((a, b) => b.mountPath.length - a.mountPath.length);
  const m = mounts[0];
  if (!m) return { problems: [`${what}: ${path} is in no volumeMount (want a ${kinds.join(" or ")} volume mounted read-only)`] };
  const problems = [];
  const rel = path.slice(m.mountPath.replace(/\/+$/, "").length + 1);
  if (m.subPath !== undefined || m.subPathExpr !== undefined) {
    problems.push(`${what}: volumeMount ${m.name} at ${m.mountPath} uses subPath: the kubelet's updates (rotation) never reach a subPath mount; mount the volume as a folder`);
  }
  if (m.readOnly !== true) problems.push(`${what}: volumeMount ${m.name} at ${m.mountPath} must be readOnly: true`);
  const volume = (c.pod.spec?.volumes ?? []).find((v) => v.name === m.name);
  if (!volume) return { problems: [...problems, `${what}: volumeMount ${m.name} names no volume of the pod`] };
  const kind = kinds.find((k) => volume[k]);
  if (!kind) {
    const has = Object.keys(volume).filter((k) => k !== "name").join(", ");
    return { volume, problems: [...problems, `${what}: volume ${m.name} is ${has || "empty"}, want ${kinds.join(" or ")}`] };
  }
  const source = volume[kind];
  if (source.optional === true) problems.push(`${what}: volume ${m.name} is optional: the pod would start without the file`);
  const item = (source.items ?? []).find((i) => i.path === rel);
  if (source.items && !item) problems.push(`${what}: volume ${m.name} lists items, none of them at ${rel}`);
  else if (!rel || rel.includes("/") || rel.startsWith("..")) problems.push(`${what}: ${path} is not one key of volume ${m.name}`);
  const mode = item?.mode ?? source.defaultMode ?? 0o644;
  const fsGroup = c.pod.spec?.securityContext?.fsGroup;
  const uid = c.container.securityContext?.runAsUser ?? c.pod.spec?.securityContext?.runAsUser;
  // The kubelet writes the files as root, group fsGroup when set; the server
  // runs as a non-root user, and fsGroup is among its groups.
  if (uid !== 0 && !(mode & 0o004) && !((mode & 0o040) && fsGroup !== undefined)) {
    problems.push(`${what}: the server's user cannot read ${path}: mode ${octal(mode)}${fsGroup === undefined ? " and no pod securityContext.fsGroup" : ""} (want 0440 with an fsGroup)`);
  }
  if (confidential && (mode & 0o007)) problems.push(`${what}: volume ${m.name} has mode ${octal(mode)}: other users may read ${path} (want 0440 with an fsGroup)`);
  return { volume, mount: m, problems };
}

// The convserve-cli command of an exec probe: { options, subcommand, subOptions }
// or { problem }. Options are --name value or --name=value.
function parseCli(command) {
  if (!Array.isArray(command) || !/(^|\/)convserve-cli$/.test(command[0] ?? "")) {
    return { problem: `runs ${JSON.stringify(command?.[0])}, not convserve-cli` };
  }
  const read = (from, allowed) => {
    const options = {};
    let i = from;
    while (i < command.length && String(command[i]).startsWith("-")) {
      const [name, inline] = String(command[i]).split(/=(.*)/s);
      if (!allowed.includes(name)) return { problem: `convserve-cli option ${name} is not one a probe needs (${allowed.join(", ")})`, i };
      if (inline !== undefined) { options[name] = inline; i += 1; } else { options[name] = command[i + 1]; i += 2; }
    }
    return { options, i };
  };
  const top = read(1, ["--address", "--tls-ca", "--tls-cert", "--tls-key", "--timeout", "--token", "--token-file"]);
  if (top.problem) return top;
  const subcommand = command[top.i];
  const sub = read(top.i + 1, ["--service"]);
  if (sub.problem) return sub;
  if (sub.i !== command.length) return { problem: `unexpected arguments after the options: ${command.slice(sub.i).join(" ")}` };
  return { options: top.options, subcommand, subOptions: sub.options };
}

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
  const tlsOn = Boolean(env.get("CONVSERVE_TLS_CERT")?.value);
  const mutualTls = Boolean(env.get(CLIENT_CA)?.value);
  // The GPU variant: CONVSERVE_CUDA_DEVICES other than none, or the CUDA image
  // without it (the server's default is all). Not the server's default alone:
  // every build defaults to all, and the CPU image finds no GPU.
  const cudaDevices = env.get("CONVSERVE_CUDA_DEVICES")?.value;
  const cudaImage = isCudaImage(container.image);
  const gpuLimit = container.resources?.limits?.[GPU_RESOURCE];
  const gpu = { cudaDevices, cudaImage, limit: gpuLimit, request: container.resources?.requests?.[GPU_RESOURCE],
    count: quantity(gpuLimit),
    wanted: cudaDevices !== undefined ? String(cudaDevices).trim().toLowerCase() !== "none" : cudaImage };
  return { docs, all, dep, pod, container, cpath, env, ports, flags, setting, at, tlsOn, mutualTls, gpu,
    labels: pod?.metadata?.labels ?? {}, depAt: (field) => at(dep, `${cpath}.${field}`) };
}

// name -> [what it makes sure of, (ctx) -> problems]
const CHECKS = {
  kustomization: ["kustomization.yaml lists every manifest, and only those", (c) => {
    const k = c.all("Kustomization")[0];
    if (!k) return ["kustomization.yaml: no Kustomization"];
    const known = ["apiVersion", "kind", "resources", "components", "namespace", "namePrefix", "nameSuffix", "labels",
      "commonLabels", "commonAnnotations", "images", "replicas", "patches"];
    const problems = Object.keys(k.obj).filter((f) => !known.includes(f)).map((f) => `${k.file}: ${f}: unknown field`);
    if (k.obj.apiVersion !== "kustomize.config.k8s.io/v1beta1") problems.push(`${k.file}: apiVersion: not kustomize.config.k8s.io/v1beta1`);
    const listed = k.obj.resources ?? [];
    const files = [...new Set(c.docs.filter((d) => d !== k).map((d) => d.file))];
    for (const f of files.filter((f) => !listed.includes(f))) problems.push(`${k.file}: resources: ${f} is missing`);
    for (const f of listed.filter((f) => !files.includes(f))) problems.push(`${k.file}: resources: ${f} is not a manifest here`);
    for (const f of (k.obj.components ?? []).filter((f) => !COMPONENTS.includes(f))) problems.push(`${k.file}: components: ${f} is not a component here (${COMPONENTS.join(", ")})`);
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
  memory: [`memory requests == limits >= memory budget + weight cache + filter store + ${PROCESS_HEADROOM_MIB} MiB (GPU variant: + ${CUDA_HEADROOM_MIB} MiB + CONVSERVE_MAX_REQUEST_MB per GPU)`, (c) => {
    const { requests = {}, limits = {} } = c.container.resources ?? {};
    const parts = ["CONVSERVE_MEMORY_BUDGET_MB", "CONVSERVE_WEIGHT_CACHE_MB", "CONVSERVE_FILTER_STORE_MB"].map((n) => Number(c.setting(n)));
    let needMiB = parts.reduce((a, b) => a + b, PROCESS_HEADROOM_MIB);
    let sum = `${parts.join(" + ")} + ${PROCESS_HEADROOM_MIB}`;
    if (c.gpu.wanted) {
      // One GPU worker per GPU (at least one: the gpu check asks for the limit).
      const gpus = Number.isInteger(c.gpu.count) && c.gpu.count > 1 ? c.gpu.count : 1;
      const staging = Number(c.setting("CONVSERVE_MAX_REQUEST_MB"));
      needMiB += CUDA_HEADROOM_MIB + gpus * staging;
      sum += ` + ${CUDA_HEADROOM_MIB} (CUDA, cuDNN) + ${gpus} x ${staging} (staging buffers per GPU, CONVSERVE_MAX_REQUEST_MB)`;
    }
    const problems = [];
    if (quantity(requests.memory) !== quantity(limits.memory)) problems.push(c.depAt(`resources.requests.memory: ${requests.memory} != limits.memory ${limits.memory}`));
    if (!(quantity(limits.memory) >= needMiB * 2 ** 20)) problems.push(c.depAt(`resources.limits.memory: ${limits.memory} < ${sum} = ${needMiB}Mi`));
    return problems;
  }],
  // With TLS on, the kubelet's native gRPC probes (plaintext) cannot work.
  probes: [`startup, readiness, liveness: convserve-cli health over TLS to loopback:grpc port (no native gRPC probe with TLS on), CA (and client cert) from mounted volumes; readiness ${READINESS_SERVICE}, liveness ""; CLI --timeout < timeoutSeconds <= periodSeconds`, (c) => {
    const problems = [];
    const grpcPort = c.ports.get("grpc");
    const want = { startupProbe: null, readinessProbe: READINESS_SERVICE, livenessProbe: "" };
    for (const [probe, service] of Object.entries(want)) {
      const p = c.container[probe];
      if (!p) { problems.push(c.depAt(`${probe}: missing (a health probe is required)`)); continue; }
      if (p.grpc) {
        if (c.tlsOn) { problems.push(c.depAt(`${probe}.grpc: the kubelet's gRPC probes speak plaintext, and the server serves TLS (CONVSERVE_TLS_CERT): use an exec probe running convserve-cli --tls-ca ... health`)); continue; }
        if (p.grpc.port !== grpcPort) problems.push(c.depAt(`${probe}.grpc.port: ${p.grpc.port} is not the grpc containerPort ${grpcPort}`));
        if (service !== null && (p.grpc.service ?? "") !== service) problems.push(c.depAt(`${probe}.grpc.service: "${p.grpc.service ?? ""}", want "${service}"`));
        continue;
      }
      if (!p.exec) { problems.push(c.depAt(`${probe}: must run convserve-cli health (exec)${c.tlsOn ? "" : " or be a grpc probe"}: ${Object.keys(p).filter((k) => !/Seconds$|Threshold$/.test(k)).join(", ") || "no handler"} does not ask the health service`)); continue; }
      const cli = parseCli(p.exec.command);
      const at = (what) => c.depAt(`${probe}.exec.command: ${what}`);
      if (cli.problem) { problems.push(at(cli.problem)); continue; }
      if (cli.subcommand !== "health") problems.push(at(`runs convserve-cli ${cli.subcommand}, not health`));
      const address = cli.options["--address"];
      const host = /^(.*):\d+$/.exec(address ?? "")?.[1];
      if (!["127.0.0.1", "localhost", "[::1]"].includes(host)) problems.push(at(`--address ${address}: want the pod's own loopback, 127.0.0.1:<grpc port>`));
      if (portOf(address) !== grpcPort) problems.push(at(`--address ${address} is not the grpc containerPort ${grpcPort}`));
      if (service !== null && (cli.subOptions["--service"] ?? "") !== service) problems.push(at(`health --service "${cli.subOptions["--service"] ?? ""}", want "${service}"`));
      for (const o of ["--token", "--token-file"].filter((o) => o in cli.options)) problems.push(at(`${o}: health needs no token; keep tokens out of probes`));
      if (c.tlsOn) {
        if (!cli.options["--tls-ca"]) problems.push(at("no --tls-ca: the server serves TLS (CONVSERVE_TLS_CERT), a plaintext probe always fails"));
        else problems.push(...mountedFile(c, at("--tls-ca"), cli.options["--tls-ca"], ["secret", "configMap"], false).problems);
        if (c.mutualTls) {
          for (const o of ["--tls-cert", "--tls-key"]) {
            if (!cli.options[o]) problems.push(at(`no ${o}: with mutual TLS (${CLIENT_CA}) the server accepts only connections with a client certificate`));
            else problems.push(...mountedFile(c, at(o), cli.options[o], ["secret"], true).problems);
          }
        }
      } else if (cli.options["--tls-ca"] || cli.options["--tls-cert"]) {
        problems.push(at("speaks TLS, but the server serves plaintext (no CONVSERVE_TLS_CERT)"));
      }
      const cliTimeout = Number(cli.options["--timeout"] ?? CLI_DEFAULT_TIMEOUT_S);
      const timeout = p.timeoutSeconds ?? 1;
      const period = p.periodSeconds ?? 10;
      if (!(cliTimeout < timeout)) problems.push(at(`--timeout ${cli.options["--timeout"] ?? `unset (${CLI_DEFAULT_TIMEOUT_S})`} must be below timeoutSeconds ${timeout}, so the CLI reports before the kubelet gives up on it`));
      if (timeout > period) problems.push(c.depAt(`${probe}.timeoutSeconds: ${timeout} > periodSeconds ${period}`));
    }
    return problems;
  }],
  tls: ["TLS cert+key (one Secret), tokens file (and client CA: Secret or ConfigMap) in read-only folder mounts (no subPath) of non-optional Secrets, readable by fsGroup, not others", (c) => {
    const problems = [];
    const volumes = {};
    for (const name of [...REQUIRED_FILES, CLIENT_CA]) {
      const value = c.env.get(name)?.value;
      if (!value) {
        if (name !== CLIENT_CA) problems.push(c.depAt(`env: ${name} must be set: the replicas serve TLS with bearer tokens`));
        continue;
      }
      const kinds = name === CLIENT_CA ? ["secret", "configMap"] : ["secret"];
      const found = mountedFile(c, c.depAt(`env: ${name}`), value, kinds, name !== CLIENT_CA);
      problems.push(...found.problems);
      volumes[name] = found.volume?.name;
    }
    if (volumes.CONVSERVE_TLS_CERT && volumes.CONVSERVE_TLS_KEY && volumes.CONVSERVE_TLS_CERT !== volumes.CONVSERVE_TLS_KEY) {
      problems.push(c.depAt(`env: CONVSERVE_TLS_CERT (volume ${volumes.CONVSERVE_TLS_CERT}) and CONVSERVE_TLS_KEY (volume ${volumes.CONVSERVE_TLS_KEY}) must come from one Secret, so that a rotation swaps them together`));
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
  ports: ["CONVSERVE_ADDRESS / METRICS_ADDRESS ports == containerPorts grpc / metrics == Services' targetPorts; scrape scheme https under TLS", (c) => {
    const problems = [];
    for (const [name, variable] of [["grpc", "CONVSERVE_ADDRESS"], ["metrics", "CONVSERVE_METRICS_ADDRESS"]]) {
      const port = c.ports.get(name);
      if (port === undefined) problems.push(c.depAt(`ports: no containerPort named ${name}`));
      else if (portOf(c.setting(variable)) !== port) problems.push(c.depAt(`env: ${variable}=${c.setting(variable)} does not listen on containerPort ${name} ${port}`));
    }
    const scrape = c.pod.metadata?.annotations?.["prometheus.io/port"];
    if (scrape !== undefined && Number(scrape) !== c.ports.get("metrics")) problems.push(c.at(c.dep, `spec.template.metadata.annotations.prometheus.io/port: ${scrape} is not the metrics containerPort`));
    // With --tls-cert the metrics page serves HTTPS only (from the same files).
    const scheme = c.pod.metadata?.annotations?.["prometheus.io/scheme"] ?? "http";
    if (scrape !== undefined && c.setting("CONVSERVE_TLS_CERT") && scheme !== "https") problems.push(c.at(c.dep, `spec.template.metadata.annotations.prometheus.io/scheme: ${scheme}, but with CONVSERVE_TLS_CERT /metrics serves HTTPS`));
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
  gpu: [`GPU variant (CUDA image, or CONVSERVE_CUDA_DEVICES not none): the CUDA image, whole ${GPU_RESOURCE} limits (requests equal), CONVSERVE_CUDA_DEVICES within them, GPU nodes selected, their ${GPU_TAINT.key}:${GPU_TAINT.effect} taint tolerated (operator Exists); a CPU Deployment requests no GPU`, (c) => {
    const g = c.gpu;
    const spec = c.pod.spec ?? {};
    const podAt = (field) => c.at(c.dep, `spec.template.spec.${field}`);
    const problems = [];
    if (!g.wanted) {
      // CPU-only: no container of the pod holds a GPU it cannot use.
      const why = g.cudaDevices !== undefined ? `CONVSERVE_CUDA_DEVICES=${g.cudaDevices}` : `${c.container.image} is not the CUDA image`;
      for (const kind of ["containers", "initContainers"]) {
        (spec[kind] ?? []).forEach((k, i) => {
          for (const field of ["limits", "requests"]) {
            const v = k.resources?.[field]?.[GPU_RESOURCE];
            if (v !== undefined) problems.push(podAt(`${kind}[${i}].resources.${field}.${GPU_RESOURCE}: ${v}, but the server runs on the CPU (${why}): the GPU would sit idle`));
          }
        });
      }
      return problems;
    }
    const why = g.cudaDevices !== undefined ? `CONVSERVE_CUDA_DEVICES=${g.cudaDevices}` : "the CUDA image";
    if (!g.cudaImage) problems.push(c.depAt(`image: ${c.container.image} is not the CUDA image, and ${why} asks for GPUs: build it with docker build --target cuda and name it with "cuda" in its tag (convserve:0.1.0-cuda)`));
    if (g.limit === undefined) problems.push(c.depAt(`resources.limits.${GPU_RESOURCE}: missing (${why}): a container gets GPUs only through this limit`));
    else if (!(Number.isInteger(g.count) && g.count >= 1)) problems.push(c.depAt(`resources.limits.${GPU_RESOURCE}: ${g.limit} is not a whole number of GPUs, 1 or more (GPUs are not shared this way)`));
    if (g.request !== undefined && quantity(g.request) !== g.count) problems.push(c.depAt(`resources.requests.${GPU_RESOURCE}: ${g.request} != limits ${g.limit} (Kubernetes requires them equal for extended resources; or leave the request out)`));
    if (g.cudaDevices !== undefined) {
      const value = String(g.cudaDevices).trim().toLowerCase();
      if (/^\d+(\s*,\s*\d+)*$/.test(value)) {
        // The device plugin numbers the container's GPUs from 0.
        const ordinals = [...new Set(value.split(",").map(Number))];
        const beyond = ordinals.filter((o) => !(o < g.count));
        if (beyond.length && Number.isInteger(g.count)) problems.push(c.depAt(`env: CONVSERVE_CUDA_DEVICES=${g.cudaDevices} names GPU ${beyond[0]}, but the container sees ${g.count} GPU(s), numbered from 0`));
        else if (ordinals.length < g.count) problems.push(c.depAt(`env: CONVSERVE_CUDA_DEVICES=${g.cudaDevices} uses ${ordinals.length} of the ${g.count} GPUs of ${GPU_RESOURCE}: the others would sit idle`));
      } else if (value !== "all") {
        problems.push(c.depAt(`env: CONVSERVE_CUDA_DEVICES="${g.cudaDevices}" is not all, none or CUDA ordinals (0,1)`));
      }
    }
    // On GPU nodes by name: a nodeSelector on a GPU node label, or a required
    // node affinity each of whose terms asks for one.
    const selected = Object.entries(spec.nodeSelector ?? {}).some(([k, v]) => GPU_NODE_LABEL.test(k) && String(v) !== "false");
    const terms = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    const gpuTerm = (t) => (t.matchExpressions ?? []).some((e) => GPU_NODE_LABEL.test(e.key ?? "") && ["In", "Exists", "Gt"].includes(e.operator));
    if (!selected && !(terms.length && terms.every(gpuTerm))) {
      problems.push(podAt(`nodeSelector: no GPU node label (nvidia.com/gpu.present: "true", or another nvidia.com/gpu.* or cloud.google.com/gke-accelerator label), nor a required node affinity on one`));
    }
    // GPU nodes' taint tolerated by key, any value (operator Exists); not every taint.
    const tolerations = spec.tolerations ?? [];
    let tolerated = false;
    tolerations.forEach((t, i) => {
      if (!t.key && t.operator === "Exists") {
        tolerated ||= !t.effect || t.effect === GPU_TAINT.effect;
        problems.push(podAt(`tolerations[${i}]: tolerates every taint${t.effect ? ` with effect ${t.effect}` : " (node.kubernetes.io/unreachable too: pods would stay on dead nodes)"}; tolerate ${GPU_TAINT.key} by key`));
      }
    });
    const forKey = tolerations.filter((t) => t.key === GPU_TAINT.key && (!t.effect || t.effect === GPU_TAINT.effect));
    if (forKey.some((t) => t.operator === "Exists")) tolerated = true;
    else if (forKey.length) {
      problems.push(podAt(`tolerations: ${GPU_TAINT.key} with operator ${forKey[0].operator ?? "Equal"} tolerates only the value "${forKey[0].value ?? ""}", and GPU taints' values differ between clusters (GKE: present): use operator: Exists`));
      tolerated = true;
    }
    if (!tolerated) problems.push(podAt(`tolerations: none tolerates ${GPU_TAINT.key}:${GPU_TAINT.effect}, the taint of GPU nodes (want key ${GPU_TAINT.key}, operator Exists, effect ${GPU_TAINT.effect})`));
    return problems;
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

// ---------------------------------------------------------------- the components

function loadComponent(dir, name) {
  const path = join(dir, name, "kustomization.yaml");
  if (!existsSync(path)) return null;
  return { file: `${name}/kustomization.yaml`, obj: YAML.parse(readFileSync(path, "utf8")) };
}

// What each component must turn on: [check, what, (context) -> on?].
const TURNS_ON = {
  "mutual-tls": ["mutual", `${CLIENT_CA} is set`, (c) => c.mutualTls],
  gpu: ["gpu-variant", `the CUDA image, CONVSERVE_CUDA_DEVICES and ${GPU_RESOURCE} limits`,
    (c) => c.gpu.wanted && c.gpu.cudaImage && c.gpu.cudaDevices !== undefined && c.gpu.count >= 1],
};

// Applies JSON 6902 operations (add, replace, remove) to obj, in place.
function applyJsonPatch(obj, ops) {
  if (!Array.isArray(ops)) throw new Error("the patch is no JSON 6902 list of operations");
  for (const { op, path, value, ...rest } of ops) {
    if (Object.keys(rest).length) throw new Error(`${op} ${path}: unknown field ${Object.keys(rest)[0]}`);
    if (!["add", "replace", "remove"].includes(op)) throw new Error(`${op} ${path}: only add, replace and remove are used here`);
    if (typeof path !== "string" || !path.startsWith("/")) throw new Error(`${op} ${path}: not a JSON pointer`);
    const keys = path.split("/").slice(1).map((k) => k.replaceAll("~1", "/").replaceAll("~0", "~"));
    const last = keys.pop();
    let parent = obj;
    for (const k of keys) {
      parent = parent[Array.isArray(parent) ? Number(k) : k];
      if (parent === null || typeof parent !== "object") throw new Error(`${op} ${path}: no such path in the manifest`);
    }
    if (Array.isArray(parent)) {
      const i = last === "-" ? parent.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > parent.length || (op !== "add" && i === parent.length)) throw new Error(`${op} ${path}: no such index`);
      if (op === "add") parent.splice(i, 0, structuredClone(value));
      else if (op === "replace") parent[i] = structuredClone(value);
      else parent.splice(i, 1);
    } else {
      if (op !== "add" && !(last in parent)) throw new Error(`${op} ${path}: no such field in the manifest`);
      if (op === "remove") delete parent[last];
      else parent[last] = structuredClone(value);
    }
  }
}

// Applies a kustomize Component's patches to docs, in place; throws on a
// component this lint cannot follow or a patch that does not apply.
function applyComponent(docs, { file, obj }) {
  if (obj?.apiVersion !== "kustomize.config.k8s.io/v1alpha1" || obj?.kind !== "Component") {
    throw new Error(`${file}: not a kustomize.config.k8s.io/v1alpha1 Component`);
  }
  const extra = Object.keys(obj).filter((f) => !["apiVersion", "kind", "patches"].includes(f));
  if (extra.length) throw new Error(`${file}: ${extra[0]}: this lint follows only patches`);
  (obj.patches ?? []).forEach(({ target = {}, patch, ...rest }, i) => {
    const where = `${file}: patches[${i}]`;
    if (Object.keys(rest).length) throw new Error(`${where}: ${Object.keys(rest)[0]}: give the patch inline (patch:)`);
    const apiVersion = target.group ? `${target.group}/${target.version}` : target.version;
    const matches = docs.filter((d) => d.obj?.kind === target.kind && d.obj?.metadata?.name === target.name &&
      (!target.version || d.obj.apiVersion === apiVersion));
    if (!matches.length) throw new Error(`${where}: target ${apiVersion} ${target.kind}/${target.name} matches no manifest`);
    let ops;
    try { ops = YAML.parse(patch); } catch (e) { throw new Error(`${where}: ${e.message}`); }
    for (const m of matches) {
      try { applyJsonPatch(m.obj, ops); } catch (e) { throw new Error(`${where}: ${e.message}`); }
    }
  });
}

// ---------------------------------------------------------------- negative tests

const find = (docs, kind, name) => docs.find((d) => d.obj?.kind === kind && (!name || d.obj.metadata?.name === name))?.obj;
const podSpec = (docs) => find(docs, "Deployment").spec.template.spec;
const main = (docs) => podSpec(docs).containers.find((c) => c.name === CONTAINER);
const envVar = (docs, name) => main(docs).env.find((e) => e.name === name);
const volume = (docs, name) => podSpec(docs).volumes.find((v) => v.name === name);
const mount = (docs, name) => main(docs).volumeMounts.find((m) => m.name === name);
// Removes `option` and its value from a probe's convserve-cli command.
const dropOption = (command, option) => { const i = command.indexOf(option); if (i < 0) throw new Error(`no ${option}`); command.splice(i, 2); };
const setOption = (command, option, value) => { const i = command.indexOf(option); if (i < 0) throw new Error(`no ${option}`); command[i + 1] = value; };
const components = new Map();  // name -> the component, once read
const withComponent = (name) => (d) => { const k = components.get(name); if (!k) throw new Error(`no ${name} component`); applyComponent(d, k); };
const withMutualTls = withComponent("mutual-tls");
const withGpu = withComponent("gpu");
const gpuLimits = (d) => main(d).resources.limits;

// [what is broken, the check that must reject it, how to break it]
const VARIANTS = [
  ["typo'd field terminationGracePeriodSecond", "schema", (d) => {
    const s = podSpec(d); s.terminationGracePeriodSecond = s.terminationGracePeriodSeconds; delete s.terminationGracePeriodSeconds; }],
  ["typo'd field in a probe (exec.comand)", "schema", (d) => { const e = main(d).readinessProbe.exec; e.comand = e.command; delete e.command; }],
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
  ["readiness probe on the server's health (\"\")", "probes", (d) => { dropOption(main(d).readinessProbe.exec.command, "--service"); }],
  ["liveness probe on another port", "probes", (d) => { setOption(main(d).livenessProbe.exec.command, "--address", "127.0.0.1:50052"); }],
  ["native gRPC readiness probe while TLS is on", "probes", (d) => { main(d).readinessProbe = { grpc: { port: 50051, service: READINESS_SERVICE }, periodSeconds: 5 }; }],
  ["tcpSocket liveness probe (does not ask the health service)", "probes", (d) => { main(d).livenessProbe = { tcpSocket: { port: 50051 }, periodSeconds: 10 }; }],
  ["probe without --tls-ca (plaintext to the TLS port)", "probes", (d) => { dropOption(main(d).startupProbe.exec.command, "--tls-ca"); }],
  ["probe --tls-ca in no mounted volume", "probes", (d) => { setOption(main(d).readinessProbe.exec.command, "--tls-ca", "/etc/ssl/certs/ca.crt"); }],
  ["probe dialing the Service name, not loopback", "probes", (d) => { setOption(main(d).livenessProbe.exec.command, "--address", "convserve:50051"); }],
  ["probe CLI --timeout not below timeoutSeconds", "probes", (d) => { setOption(main(d).readinessProbe.exec.command, "--timeout", "3"); }],
  ["probe without --timeout (the CLI waits 300 s)", "probes", (d) => { dropOption(main(d).livenessProbe.exec.command, "--timeout"); }],
  ["probe sending a token", "probes", (d) => { main(d).livenessProbe.exec.command.splice(1, 0, "--token-file", "/etc/convserve/auth/tokens"); }],
  ["mutual TLS without a client certificate in the readiness probe", "probes", (d) => {
    withMutualTls(d); const c = main(d).readinessProbe.exec.command; dropOption(c, "--tls-cert"); dropOption(c, "--tls-key"); }],
  ["no CONVSERVE_AUTH_TOKENS_FILE (no authentication)", "tls", (d) => { main(d).env = main(d).env.filter((e) => e.name !== "CONVSERVE_AUTH_TOKENS_FILE"); }],
  ["no CONVSERVE_TLS_KEY", "tls", (d) => { main(d).env = main(d).env.filter((e) => e.name !== "CONVSERVE_TLS_KEY"); }],
  ["CONVSERVE_TLS_CERT in no mounted volume", "tls", (d) => { envVar(d, "CONVSERVE_TLS_CERT").value = "/etc/ssl/tls.crt"; }],
  ["TLS Secret mounted file by file with subPath", "tls", (d) => {
    const m = mount(d, "tls"); main(d).volumeMounts = main(d).volumeMounts.filter((x) => x !== m);
    for (const f of ["tls.crt", "tls.key", "ca.crt"]) main(d).volumeMounts.push({ name: "tls", mountPath: `${m.mountPath}/${f}`, subPath: f, readOnly: true }); }],
  ["tokens Secret mounted read-write", "tls", (d) => { mount(d, "tokens").readOnly = false; }],
  ["tokens file from a ConfigMap, not a Secret", "tls", (d) => { const v = volume(d, "tokens"); v.configMap = { name: v.secret.secretName }; delete v.secret; }],
  ["TLS Secret optional (the pod starts without it)", "tls", (d) => { volume(d, "tls").secret.optional = true; }],
  ["TLS key in another volume than the certificate", "tls", (d) => { envVar(d, "CONVSERVE_TLS_KEY").value = "/etc/convserve/auth/tls.key"; }],
  ["TLS Secret readable by every user (defaultMode 0644)", "tls", (d) => { volume(d, "tls").secret.defaultMode = 0o644; }],
  ["no fsGroup: user 10001 cannot read the 0440 Secret files", "tls", (d) => { delete podSpec(d).securityContext.fsGroup; }],
  ["mutual TLS with the client CA mounted by subPath", "tls", (d) => {
    withMutualTls(d); const m = mount(d, "client-ca"); m.mountPath += "/ca.crt"; m.subPath = "ca.crt"; }],
  ["CONVSERVE_QUOTA_FILTER_SHARE=1.5 (a share is 0 to 1)", "env", (d) => { main(d).env.push({ name: "CONVSERVE_QUOTA_FILTER_SHARE", value: "1.5" }); }],
  ["CONVSERVE_METRICS_ADDRESS on port 9091", "ports", (d) => { envVar(d, "CONVSERVE_METRICS_ADDRESS").value = "0.0.0.0:9091"; }],
  ["scrape scheme http while /metrics serves HTTPS", "ports", (d) => { delete find(d, "Deployment").spec.template.metadata.annotations["prometheus.io/scheme"]; }],
  ["Service targetPort 50052", "ports", (d) => { find(d, "Service", "convserve").spec.ports[0].targetPort = 50052; }],
  ["headless Service with a cluster IP", "services", (d) => { delete find(d, "Service", "convserve-headless").spec.clusterIP; }],
  ["HPA scaling another Deployment", "hpa", (d) => { find(d, "HorizontalPodAutoscaler").spec.scaleTargetRef.name = "convserve-v2"; }],
  ["HPA minReplicas 2 with a PDB allowing 1 eviction", "hpa", (d) => { find(d, "HorizontalPodAutoscaler").spec.minReplicas = 2; find(d, "Deployment").spec.replicas = 2; }],
  ["kustomization without hpa.yaml", "kustomization", (d) => { const k = find(d, "Kustomization"); k.resources = k.resources.filter((r) => r !== "hpa.yaml"); }],
  ["root filesystem writable", "security", (d) => { main(d).securityContext.readOnlyRootFilesystem = false; }],
  ["rolling update with maxUnavailable 1", "rollout", (d) => { find(d, "Deployment").spec.strategy.rollingUpdate.maxUnavailable = 1; }],
  // The CPU Deployment stays CPU-only; the GPU variant (the gpu component) gets GPUs on GPU nodes.
  ["CPU Deployment with an nvidia.com/gpu limit", "gpu", (d) => { gpuLimits(d)[GPU_RESOURCE] = "1"; }],
  ["CUDA image without GPU resources", "gpu", (d) => { main(d).image = "registry.example.com/convserve:0.1.0-cuda"; }],
  ["CONVSERVE_CUDA_DEVICES=all on the CPU image", "gpu", (d) => { main(d).env.push({ name: "CONVSERVE_CUDA_DEVICES", value: "all" }); }],
  ["GPU variant running the CPU image", "gpu", (d) => { withGpu(d); main(d).image = "convserve:0.1.0"; }],
  ["GPU variant without an nvidia.com/gpu limit", "gpu", (d) => {
    withGpu(d); delete gpuLimits(d)[GPU_RESOURCE]; delete main(d).resources.requests[GPU_RESOURCE]; }],
  ["GPU variant with half a GPU (500m)", "gpu", (d) => { withGpu(d); gpuLimits(d)[GPU_RESOURCE] = "500m"; main(d).resources.requests[GPU_RESOURCE] = "500m"; }],
  ["GPU request 2, limit 1", "gpu", (d) => { withGpu(d); main(d).resources.requests[GPU_RESOURCE] = "2"; }],
  ["CONVSERVE_CUDA_DEVICES=0,1 with one GPU", "gpu", (d) => { withGpu(d); envVar(d, "CONVSERVE_CUDA_DEVICES").value = "0,1"; }],
  ["CONVSERVE_CUDA_DEVICES=0 with two GPUs (one idle)", "gpu", (d) => {
    withGpu(d); envVar(d, "CONVSERVE_CUDA_DEVICES").value = "0"; gpuLimits(d)[GPU_RESOURCE] = "2"; main(d).resources.requests[GPU_RESOURCE] = "2"; }],
  ["CONVSERVE_CUDA_DEVICES=gpu0", "gpu", (d) => { withGpu(d); envVar(d, "CONVSERVE_CUDA_DEVICES").value = "gpu0"; }],
  ["CONVSERVE_GPU_WEIGHT_CACHE_MB=1G", "env", (d) => { withGpu(d); envVar(d, "CONVSERVE_GPU_WEIGHT_CACHE_MB").value = "1G"; }],
  ["misspelt variable CONVSERVE_CUDA_DEVICE", "env", (d) => { withGpu(d); envVar(d, "CONVSERVE_CUDA_DEVICES").name = "CONVSERVE_CUDA_DEVICE"; }],
  ["GPU variant without a GPU nodeSelector", "gpu", (d) => { withGpu(d); delete podSpec(d).nodeSelector; }],
  ["GPU variant selecting nodes by a non-GPU label", "gpu", (d) => { withGpu(d); podSpec(d).nodeSelector = { "kubernetes.io/os": "linux" }; }],
  ["GPU variant without the nvidia.com/gpu toleration", "gpu", (d) => { withGpu(d); delete podSpec(d).tolerations; }],
  ["GPU toleration for NoExecute only", "gpu", (d) => { withGpu(d); podSpec(d).tolerations[0].effect = "NoExecute"; }],
  ["GPU toleration with operator Equal (one taint value only)", "gpu", (d) => { withGpu(d); Object.assign(podSpec(d).tolerations[0], { operator: "Equal", value: "true" }); }],
  ["toleration of every taint", "gpu", (d) => { withGpu(d); podSpec(d).tolerations = [{ operator: "Exists" }]; }],
  ["GPU variant's memory without CUDA and staging headroom (4Gi)", "memory", (d) => {
    withGpu(d); gpuLimits(d).memory = "4Gi"; main(d).resources.requests.memory = "4Gi"; }],
  ["mutual TLS and GPU: client certificate dropped from the liveness probe", "probes", (d) => {
    withGpu(d); withMutualTls(d); const c = main(d).livenessProbe.exec.command; dropOption(c, "--tls-cert"); dropOption(c, "--tls-key"); }],
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
const report = (prefix) => ({ check, label, problems }) => {
  if (problems.length === 0) { console.log(`ok    ${prefix}${check.padEnd(14)} ${label}`); return; }
  failed++;
  for (const p of problems) console.log(`FAIL  ${prefix}${check.padEnd(14)} ${p}`);
};
results.forEach(report(""));

// The optional components, each alone and all together: the manifests they
// patch must pass every check too, and each must turn on what it is for.
for (const name of COMPONENTS) {
  try {
    const k = loadComponent(dir, name);
    if (k) components.set(name, k);
  } catch (e) {
    results.push({ check: name, label: "", problems: [`${name}/kustomization.yaml: ${e.message}`] });
    report("")(results.at(-1));
  }
}
const present = [...components.keys()];
const combinations = present.map((name) => [name]);
if (present.length > 1) combinations.push(present);
for (const combination of combinations) {
  console.log(`k8s_lint: with components: [${combination.join(", ")}]`);
  const patched = structuredClone(docs);
  let componentResults;
  try {
    for (const name of combination) applyComponent(patched, components.get(name));
    componentResults = (await lint(patched, flags)).filter((r) => r.check !== "kustomization");
    const c = context(patched, flags);
    for (const name of combination) {
      const [check, what, on] = TURNS_ON[name];
      componentResults.push({ check, label: what, problems: on(c) ? [] : [`${components.get(name).file}: does not turn on ${what}`] });
    }
  } catch (e) {
    componentResults = [{ check: "patches", label: "", problems: [e.message] }];
  }
  componentResults.forEach(report(`${combination.join("+")}/`));
  results.push(...componentResults);
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
