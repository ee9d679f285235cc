#!/usr/bin/env python3
"""Every example in conf/ parses and works with the executables of this build.

Usage: conf_test.py SOURCE_DIR BIN_DIR PLUGIN,PLUGIN,...

- Every .yaml/.yml file parses (every document, each with apiVersion and kind) and every
  .json/.conflist/.conf file parses.
- The CNI configs: conf/net.d, the conflists of each ConfigMap, the spec.config of each
  NetworkAttachmentDefinition. Each plugin of each is a registered plugin of this build; the
  plugin answers VERSION with the config's cniVersion among its supportedVersions, and PARSE
  (the config checked as STATUS would, with nothing touched) exits 0; so does its IPAM
  plugin, which gets the same config.
- A ConfigMap's conflist equals conf/net.d's file of the same name (one source, no drift).
- A DaemonSet's containers exec registered plugins; the ConfigMaps its volumes name exist; an
  agent container (`sync`) has NET_ADMIN and the pod hostNetwork, and its --config is a key
  of a ConfigMap it mounts.
- A NetworkAttachmentDefinition for sriov names its device plugin resource
  (k8s.v1.cni.cncf.io/resourceName).
"""
import json
import os
import subprocess
import sys

import yaml

src, bin_dir, plugins_arg = sys.argv[1:4]
plugins = set(plugins_arg.split(","))
conf_dir = os.path.join(src, "conf")
failures = []
checked = {"files": 0, "configs": 0, "plugin runs": 0}


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def run(exe, command, config, where):
    env = {"CNI_COMMAND": command, "CNI_PATH": bin_dir, "PATH": "/usr/bin:/bin",
           "K8S_NODE_NAME": "conf-test-node"}
    p = subprocess.run([os.path.join(bin_dir, exe)], input=json.dumps(config).encode(),
                       env=env, capture_output=True, timeout=30)
    checked["plugin runs"] += 1
    if p.returncode != 0:
        fail(f"{where}: {exe} {command} exited {p.returncode}: {p.stdout.decode()}"
             f"{p.stderr.decode()}")
    return p.stdout.decode()


def check_cni_config(conf, where):
    checked["configs"] += 1
    if not isinstance(conf, dict) or "cniVersion" not in conf or "name" not in conf:
        fail(f"{where}: not a CNI config (cniVersion and name)")
        return
    version = conf["cniVersion"]
    # A runtime hands each plugin of a list its entry with the list's cniVersion and name.
    entries = conf["plugins"] if "plugins" in conf else [conf]
    for entry in entries:
        single = dict(entry, cniVersion=version, name=conf["name"])
        kind = entry.get("type")
        if kind not in plugins:
            fail(f"{where}: plugin type {kind!r} is not one of this build's ({sorted(plugins)})")
            continue
        answer = run(kind, "VERSION", single, where)
        try:
            supported = json.loads(answer)["supportedVersions"]
            if version not in supported:
                fail(f"{where}: {kind} does not support cniVersion {version} ({supported})")
        except (ValueError, KeyError):
            fail(f"{where}: {kind} VERSION answered {answer!r}")
        run(kind, "PARSE", single, where)
        ipam = entry.get("ipam", {}).get("type")
        if ipam:
            if ipam not in plugins:
                fail(f"{where}: ipam type {ipam!r} is not one of this build's")
            else:
                run(ipam, "PARSE", single, where)


def load(path):
    with open(path) as f:
        if path.endswith((".yaml", ".yml")):
            docs = [d for d in yaml.safe_load_all(f)]
            for i, d in enumerate(docs):
                if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
                    fail(f"{path}: document {i} has no apiVersion and kind")
            return docs
        return [json.load(f)]


documents = []  # (path, document)
for root, _, names in os.walk(conf_dir):
    for name in sorted(names):
        path = os.path.join(root, name)
        if not name.endswith((".yaml", ".yml", ".json", ".conflist", ".conf")):
            continue
        checked["files"] += 1
        try:
            documents += [(path, d) for d in load(path)]
        except (yaml.YAMLError, ValueError) as e:
            fail(f"{path}: does not parse: {e}")

netd = os.path.join(conf_dir, "net.d")
configmaps = {}
for path, d in documents:
    rel = os.path.relpath(path, src)
    if path.startswith(netd + os.sep):
        check_cni_config(d, rel)
        continue
    if not isinstance(d, dict):
        continue
    kind = d.get("kind")
    name = d.get("metadata", {}).get("name", "?")
    if kind == "ConfigMap":
        configmaps[name] = d.get("data", {})
        for key, text in d.get("data", {}).items():
            if not key.endswith((".conflist", ".conf", ".json")):
                continue
            try:
                conf = json.loads(text)
            except ValueError as e:
                fail(f"{rel}: ConfigMap {name} key {key}: not JSON: {e}")
                continue
            check_cni_config(conf, f"{rel}: ConfigMap {name} {key}")
            twin = os.path.join(netd, key)
            if os.path.exists(twin):
                with open(twin) as f:
                    if json.load(f) != conf:
                        fail(f"{rel}: ConfigMap {name} {key} differs from conf/net.d/{key}")
    elif kind == "NetworkAttachmentDefinition":
        try:
            conf = json.loads(d["spec"]["config"])
        except (KeyError, ValueError) as e:
            fail(f"{rel}: NetworkAttachmentDefinition {name}: spec.config: {e}")
            continue
        check_cni_config(conf, f"{rel}: NetworkAttachmentDefinition {name}")
        types = [p.get("type") for p in conf.get("plugins", [conf])]
        annotations = d.get("metadata", {}).get("annotations", {}) or {}
        if "sriov" in types and not annotations.get("k8s.v1.cni.cncf.io/resourceName"):
            fail(f"{rel}: sriov NetworkAttachmentDefinition {name} has no resourceName")

for path, d in documents:
    if not isinstance(d, dict) or d.get("kind") != "DaemonSet":
        continue
    rel = os.path.relpath(path, src)
    spec = d["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            fail(f"{rel}: volume {v['name']} names ConfigMap {v['configMap']['name']}, "
                 "which conf/ does not define")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        command = c.get("command", [])
        if command and command[0].startswith("/opt/cni/bin/"):
            exe = os.path.basename(command[0])
            if exe not in plugins:
                fail(f"{rel}: container {c['name']} runs {exe}, not a plugin of this build")
        args = c.get("args", [])
        if "sync" not in args:
            continue
        if not spec.get("hostNetwork"):
            fail(f"{rel}: the agent {c['name']} needs hostNetwork")
        if "NET_ADMIN" not in c.get("securityContext", {}).get("capabilities", {}).get("add", []):
            fail(f"{rel}: the agent {c['name']} needs NET_ADMIN")
        if "--config" in args:
            config = args[args.index("--config") + 1]
            found = False
            for m in c.get("volumeMounts", []):
                v = volumes.get(m["name"], {})
                if "configMap" in v and os.path.dirname(config) == m["mountPath"].rstrip("/"):
                    found = os.path.basename(config) in configmaps.get(v["configMap"]["name"], {})
            if not found:
                fail(f"{rel}: the agent {c['name']} reads {config}, no ConfigMap key mounted there")

if checked["configs"] == 0:
    fail("no CNI config found in conf/")
print("conf: " + ", ".join(f"{v} {k}" for k, v in checked.items()))
sys.exit(1 if failures else 0)
