#!/usr/bin/env bash
# Checks everything under deploy/ without a cluster:
#  - renders each kustomization (kubectl kustomize) and validates every object against
#    the Kubernetes OpenAPI schemas bundled in kubernetes-validate (offline, --strict,
#    so an unknown field fails), with a known-bad object as a control;
#  - the PodMonitor (a CRD kubernetes-validate has no schema for) by its fields;
#  - the pod spec against Pod Security "restricted";
#  - the ConfigMap's outrider.toml, with the container's env, by `outrider check-config`;
#  - the Prometheus rules (promtool check rules, promtool test rules);
#  - the Grafana dashboard's JSON.
# Needs kubectl, promtool, python3 with pyyaml and kubernetes-validate (scripts/test.sh
# installs them). Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${OUTRIDER_BIN:-target/debug/outrider}"
[ -x "$bin" ] || cargo build --quiet --locked
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for k in deploy/kubernetes/*/kustomization.yaml; do
  dir=$(dirname "$k")
  name=$(basename "$dir")
  kubectl kustomize "$dir" >"$out/$name.yaml"
  echo "== $dir: $(grep -c '^kind:' "$out/$name.yaml") objects rendered"
  # The oldest release with native sidecars on by default, and the newest bundled.
  for v in 1.29.0 "$(python3 -m kubernetes_validate --version)"; do
    if ! res=$(python3 -m kubernetes_validate --strict --quiet -k "$v" "$out/$name.yaml" 2>&1); then
      echo "$res"; exit 1
    fi
    # The PodMonitor is a CRD: no bundled schema (warned), checked by fields below.
    grep -v "Couldn't find schema for kind PodMonitor" <<<"$res" || true
  done
done

# A control: the validator must reject an unknown field and a wrong type.
cat >"$out/bad.yaml" <<'BAD'
apiVersion: v1
kind: Service
metadata: {name: bad}
spec:
  ports: [{port: "eighty"}]
  selectr: {app: x}
BAD
if python3 -m kubernetes_validate --strict --quiet "$out/bad.yaml" >/dev/null 2>&1; then
  echo "FAIL: kubernetes-validate accepted a broken Service"; exit 1
fi
echo "kubernetes-validate (schemas of 1.29.0 and $(python3 -m kubernetes_validate --version)): every object valid; a broken one rejected"

python3 - "$out" "$bin" <<'PY'
import os, subprocess, sys, tempfile, yaml

out, binary = sys.argv[1], sys.argv[2]
fail = []

def check(ok, msg):
    if not ok:
        fail.append(msg)

for name in sorted(f for f in os.listdir(out) if f.endswith(".yaml") and f != "bad.yaml"):
    docs = [d for d in yaml.safe_load_all(open(os.path.join(out, name))) if d]
    by_kind = {d["kind"]: d for d in docs}
    dep = by_kind["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    containers = pod.get("containers", []) + pod.get("initContainers", [])
    outrider = next(c for c in containers if c["name"] == "outrider")

    # The PodMonitor: the fields the Prometheus Operator needs, pointing at this pod.
    pm = by_kind["PodMonitor"]
    check(pm["apiVersion"] == "monitoring.coreos.com/v1", f"{name}: PodMonitor apiVersion")
    sel = pm["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{name}: PodMonitor selects no pod")
    ports = {p["name"] for p in outrider["ports"]}
    for ep in pm["spec"]["podMetricsEndpoints"]:
        check(set(ep) <= {"port", "path", "interval", "scrapeTimeout", "relabelings", "metricRelabelings"},
              f"{name}: unexpected PodMonitor endpoint field {set(ep)}")
        check(ep["port"] in ports, f"{name}: PodMonitor port {ep['port']} not on outrider")
    # The Service's selector matches the pod too.
    check(all(labels.get(k) == v for k, v in by_kind["Service"]["spec"]["selector"].items()),
          f"{name}: Service selects no pod")

    # Pod Security Standards, "restricted" (which includes "baseline").
    psc = pod.get("securityContext", {})
    check(pod.get("shareProcessNamespace") is True, f"{name}: shareProcessNamespace")
    for f in ("hostPID", "hostIPC", "hostNetwork"):
        check(not pod.get(f), f"{name}: {f}")
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                       "persistentVolumeClaim", "projected", "secret"}
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        check(kinds <= allowed_volumes, f"{name}: volume {v['name']} of kind {kinds}")
    check(psc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost"),
          f"{name}: pod seccompProfile")
    for c in containers:
        sc = c.get("securityContext", {})
        where = f"{name}: container {c['name']}"
        check(sc.get("privileged") is not True, f"{where}: privileged")
        check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation")
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{where}: runAsNonRoot")
        check(sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, f"{where}: runAsUser 0")
        caps = sc.get("capabilities", {})
        check("ALL" in caps.get("drop", []), f"{where}: capabilities drop ALL")
        check(set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}, f"{where}: capabilities add")
        check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
        check(not any(p.get("hostPort") for p in c.get("ports", [])), f"{where}: hostPort")

    # The downward API files Outrider reads, for the app container.
    items = {i["path"]: i for v in pod["volumes"] if "downwardAPI" in v for i in v["downwardAPI"]["items"]}
    for path, res in [("cpu_request", "requests.cpu"), ("cpu_limit", "limits.cpu"),
                      ("mem_request", "requests.memory"), ("mem_limit", "limits.memory")]:
        ref = items.get(path, {}).get("resourceFieldRef", {})
        check(ref.get("resource") == res and ref.get("containerName") == "app",
              f"{name}: downward API {path}")
        if path.startswith("cpu"):
            check(ref.get("divisor") == "1m", f"{name}: {path} divisor")

    # outrider.toml from the ConfigMap, with the container's env, as Outrider loads it.
    cm = by_kind["ConfigMap"]
    with tempfile.TemporaryDirectory() as d:
        env = {"PATH": os.environ["PATH"]}
        for e in outrider.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
        mount = next(m["mountPath"] for m in outrider["volumeMounts"] if m["name"] == "outrider-config")
        for key, text in cm["data"].items():
            open(os.path.join(d, key), "w").write(text)
        cfg = env.get("OUTRIDER_CONFIG", "")
        check(cfg.startswith(mount + "/"), f"{name}: OUTRIDER_CONFIG outside the ConfigMap mount")
        env["OUTRIDER_CONFIG"] = os.path.join(d, os.path.basename(cfg))
        r = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
        check(r.returncode == 0, f"{name}: outrider check-config: {r.stderr}")
        check('downward_api_dir = "/etc/podinfo"' in r.stdout, f"{name}: downward_api_dir not in effect")
    print(f"{name}: PodMonitor, Service, Pod Security restricted + read-only root, downward API, outrider check-config: ok")

if fail:
    print("FAIL:\n  " + "\n  ".join(fail))
    sys.exit(1)
PY

echo "== deploy/prometheus"
promtool check rules deploy/prometheus/rules.yml
promtool test rules deploy/prometheus/rules_test.yml

echo "== deploy/grafana"
python3 - deploy/grafana/outrider.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
panels = [p for p in d["panels"] if p["type"] != "row"]
exprs = sum(len(p.get("targets", [])) for p in panels)
assert all(p["datasource"]["uid"] == "${datasource}" for p in panels), "a panel without the datasource variable"
print(f"{sys.argv[1]}: valid JSON, schemaVersion {d['schemaVersion']}, {len(panels)} panels, {exprs} queries")
PY
echo "check-deploy: ok"
