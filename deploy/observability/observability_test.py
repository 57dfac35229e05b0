"""The `observability` test: the Grafana dashboard and the alerting rules
beside this file against a real convserve-server.

1. promtool checks the rules (`check rules`) and runs their unit tests
   (`test rules convserve-alerts.test.yml`); the rules file's own structure
   (severity, summary, description, `for`) is checked here.
2. The dashboard: valid JSON of the shape Grafana imports (a Prometheus
   data-source variable that every panel and target uses, each panel's
   targets with an expression, unique ids, variables defined before use),
   and every expression parses (promtool, as recording rules, with the
   Grafana variables filled in).
3. A server with TLS, bearer tokens, batching and metrics on its own port
   serves a few calls through convserve-cli (one valid, one invalid, one
   float64 on the fallback pool); its /metrics page (HTTPS) must then hold
   every metric each expression of the dashboard and the rules queries
   (histograms through their _bucket, _sum and _count series), and every
   label the expressions name in a selector or a by/without/on/ignoring
   clause. `up` is not on the page: Prometheus itself makes it for every
   target, so it is not looked for; nor are `job` and `instance`, the
   target labels Prometheus adds to every series it scrapes.
4. The checker must catch a metric renamed in a copy of the dashboard and a
   label that no metric has, so that it cannot pass by finding nothing.

Usage: observability_test.py SERVER_BIN CLI_BIN
Runs with Debian's /usr/bin/python3 and python3-yaml; needs promtool
(package prometheus) and python3-cryptography, python3-numpy (all installed
by scripts/install-deps.sh).
"""

import copy
import json
import os
import pathlib
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
RULES = HERE / "convserve-alerts.rules.yml"
RULES_TESTS = HERE / "convserve-alerts.test.yml"
DASHBOARD = HERE / "convserve-dashboard.json"

# Prometheus makes `up` for every target; it is never on a /metrics page.
SYNTHESIZED_METRICS = {"up"}
# Prometheus attaches these to every series it scrapes.
TARGET_LABELS = {"job", "instance"}
# Families a server without GPU workers exports with no series (only their
# HELP and TYPE lines): their names are checked, their labels cannot be.
GPU_ONLY_FAMILIES = {"convserve_device_memory_bytes"}
# Grafana's own variables, and what stands for them when promtool parses.
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}

AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
               "count_values", "bottomk", "topk", "quantile"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = LABEL_LIST_KEYWORDS | {"bool", "and", "or", "unless", "offset", "atan2",
                                  "inf", "nan"}

failures = []


def fail(message):
    failures.append(message)
    print("FAIL: " + message)


# ---------------------------------------------------------------------------
# PromQL: the metric names and labels an expression uses.

TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^=<>(){}\[\],@])
""", re.VERBOSE)


def tokenize(expr):
    tokens, at = [], 0
    while at < len(expr):
        match = TOKEN.match(expr, at)
        if not match:
            raise ValueError(f"cannot read {expr[at:at + 20]!r}")
        at = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def matching(tokens):
    """Index of each bracket's partner, both ways."""
    partner, stack = {}, []
    for i, (kind, text) in enumerate(tokens):
        if kind == "op" and text in "({[":
            stack.append(i)
        elif kind == "op" and text in ")}]":
            if not stack:
                raise ValueError("unbalanced brackets")
            j = stack.pop()
            partner[i], partner[j] = j, i
    if stack:
        raise ValueError("unbalanced brackets")
    return partner


def analyse(expr):
    """(selectors, clauses): each selector (metric, matcher labels, token
    index); each clause (keyword, labels, (first, last) token span whose
    selectors must carry the labels)."""
    tokens = tokenize(expr)
    partner = matching(tokens)
    selectors, clauses = [], []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "op" and text == "[":
            i = partner[i] + 1  # a range or subquery's durations
            continue
        if kind == "op" and text == "{":
            raise ValueError("a selector without a metric name")
        if kind != "ident":
            i += 1
            continue
        if text.lower() in KEYWORDS:
            if text in LABEL_LIST_KEYWORDS and following == "(":
                close = partner[i + 1]
                labels = [t for k, t in tokens[i + 2:close] if k == "ident"]
                clauses.append((text, labels, scope(tokens, partner, i, close)))
                i = close + 1
                continue
            i += 1
            continue
        if following == "(" or (text in AGGREGATORS and following in ("by", "without")):
            i += 1  # a function or an aggregator
            continue
        labels = []
        end = i + 1
        if following == "{":
            close = partner[i + 1]
            inner = tokens[i + 2:close]
            for j, (k, t) in enumerate(inner):
                if k == "ident" and j + 1 < len(inner) and inner[j + 1][1] in ("=", "!=", "=~", "!~"):
                    labels.append(t)
            end = close + 1
        selectors.append((text, labels, i))
        i = end
    return selectors, clauses


def scope(tokens, partner, keyword, close):
    """The tokens whose selectors a label clause speaks of: an aggregation's
    argument for by/without (before or after the clause), the whole
    expression for vector matching (on, ignoring, group_left/right)."""
    text = tokens[keyword][1]
    if text not in ("by", "without"):
        return (0, len(tokens) - 1)
    before = tokens[keyword - 1] if keyword > 0 else (None, None)
    if before[0] == "ident" and before[1] in AGGREGATORS:
        start = close + 1  # sum by (x) (...)
        if start < len(tokens) and tokens[start][1] == "(":
            return (start, partner[start])
    if before[1] == ")":  # sum (...) by (x)
        opening = partner[keyword - 1]
        if opening > 0 and tokens[opening - 1][1] in AGGREGATORS:
            return (opening, keyword - 1)
    raise ValueError(f"'{text}' clause not after an aggregation")


def fill_grafana_variables(expr, defined):
    """The expression with Grafana's variables replaced as promtool can
    parse it; every variable must be defined on the dashboard."""
    def replace(match):
        name = match.group(1) or match.group(2)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name not in defined:
            fail(f"expression uses undefined variable ${name}: {expr}")
        return ".*"
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", replace, expr)


# ---------------------------------------------------------------------------
# What the dashboard and the rules query.

def rule_expressions(rules):
    return [(f"rule {rule['alert']}", rule["expr"])
            for group in rules["groups"] for rule in group["rules"]]


def dashboard_panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_expressions(dashboard):
    """(where, expression with variables filled in) of every target and of
    every query variable's metric selector."""
    variables = dashboard["templating"]["list"]
    defined = {v["name"] for v in variables}
    out = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            out.append((f"panel {panel['id']} ({panel['title']}) target {target.get('refId')}",
                        fill_grafana_variables(target.get("expr", ""), defined)))
    for variable in variables:
        if variable["type"] != "query":
            continue
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        if not match:
            fail(f"variable {variable['name']}: not a label_values(selector, label) query: {query}")
            continue
        selector, label = match.groups()
        # The label whose values are listed must be on the selected metric too.
        out.append((f"variable {variable['name']}",
                    fill_grafana_variables(f"group by ({label}) ({selector})", defined)))
    return out


# ---------------------------------------------------------------------------
# Static checks.

def promtool(*args):
    result = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        fail(f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}")
    return result


def check_rules_file(rules):
    promtool("check", "rules", str(RULES))
    promtool("test", "rules", str(RULES_TESTS))
    names = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            if not name or name in names:
                fail(f"a rule without an alert name, or named twice: {rule}")
            names.add(name)
            if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                fail(f"rule {name}: severity label must be critical, warning or info")
            annotations = rule.get("annotations", {})
            if not annotations.get("summary") or not annotations.get("description"):
                fail(f"rule {name}: needs summary and description annotations")
            if not re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))):
                fail(f"rule {name}: needs a `for` duration")
    tested = {alert["alertname"] for test in yaml.safe_load(RULES_TESTS.read_text())["tests"]
              for alert in test.get("alert_rule_test", [])}
    for name in sorted(names - tested):
        fail(f"rule {name} has no case in {RULES_TESTS.name}")


def check_dashboard_structure(dashboard, work):
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dashboard:
            fail(f"dashboard has no '{key}'")
    variables = dashboard["templating"]["list"]
    sources = [v for v in variables if v["type"] == "datasource" and v.get("query") == "prometheus"]
    if len(sources) != 1:
        fail("dashboard needs one Prometheus data-source variable")
        return
    source = sources[0]["name"]
    uses_source = {f"${source}", f"${{{source}}}"}
    if variables.index(sources[0]) != 0:
        fail("the data-source variable must come first (the others query through it)")
    for variable in variables[1:]:
        if variable.get("datasource", {}).get("uid") not in uses_source:
            fail(f"variable {variable['name']} does not query the data-source variable")
    names = {v["name"] for v in variables}
    ids = set()
    for panel in dashboard_panels(dashboard):
        where = f"panel {panel.get('id')} ({panel.get('title')})"
        if panel.get("id") in ids:
            fail(f"{where}: id used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            fail(f"{where}: gridPos needs h, w, x and y")
        if panel.get("repeat") and panel["repeat"] not in names:
            fail(f"{where}: repeats over undefined variable {panel['repeat']}")
        if panel["type"] == "row":
            continue
        if panel.get("datasource", {}).get("uid") not in uses_source:
            fail(f"{where}: does not use the data-source variable")
        targets = panel.get("targets", [])
        if not targets:
            fail(f"{where}: has no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            fail(f"{where}: refIds must be unique")
        for target in targets:
            if not target.get("expr", "").strip():
                fail(f"{where} target {target.get('refId')}: no expr")
            if target.get("datasource", {}).get("uid") not in uses_source:
                fail(f"{where} target {target.get('refId')}: does not use the data-source variable")
    # Every expression parses: promtool checks them as recording rules.
    records = [{"record": f"dashboard:expression_{i}", "expr": expr}
               for i, (_, expr) in enumerate(dashboard_expressions(dashboard))]
    path = pathlib.Path(work) / "dashboard-expressions.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    promtool("check", "rules", str(path))


# ---------------------------------------------------------------------------
# The live /metrics page.

def parse_page(page):
    """(series names -> label names seen, family names declared by TYPE)."""
    series, families = {}, set()
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
        if not match:
            fail(f"unreadable metrics line: {line}")
            continue
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', match.group(3) or ""))
        series.setdefault(match.group(1), set()).update(labels)
    return series, families


def check_against_page(expressions, series, families):
    """Problems of each expression against the page, as messages."""
    problems = []
    for where, expr in expressions:
        try:
            selectors, clauses = analyse(expr)
        except (ValueError, KeyError) as error:
            problems.append(f"{where}: cannot analyse ({error}): {expr}")
            continue
        if not selectors:
            problems.append(f"{where}: queries no metric: {expr}")
        known = {}
        for name, labels, _ in selectors:
            if name in SYNTHESIZED_METRICS:
                continue
            if name in series:
                known[name] = series[name] | TARGET_LABELS
            elif name in families and name in GPU_ONLY_FAMILIES:
                continue  # declared, without series on a server without GPUs
            elif name in families:
                problems.append(f"{where}: {name} has no series on the page (the test's "
                                f"traffic should make some): {expr}")
                continue
            else:
                problems.append(f"{where}: metric {name} is not on the /metrics page: {expr}")
                continue
            for label in labels:
                if label != "__name__" and label not in known[name]:
                    problems.append(f"{where}: {name} has no label '{label}': {expr}")
        for keyword, labels, (first, last) in clauses:
            for name, _, index in selectors:
                if first <= index <= last and name in known:
                    for label in labels:
                        if label not in known[name]:
                            problems.append(f"{where}: {keyword} ({label}): {name} has no "
                                            f"label '{label}': {expr}")
    return problems


# ---------------------------------------------------------------------------
# The server.

def start_server(server_bin, work):
    log = open(pathlib.Path(work) / "server.log", "w")
    args = [server_bin, "--address", "127.0.0.1:0", "--metrics-address", "127.0.0.1:0",
            "--tls-cert", f"{work}/server.pem", "--tls-key", f"{work}/server.key",
            "--auth-tokens-file", f"{work}/tokens", "--cuda-devices", "none",
            "--workers", "1", "--threads-per-worker", "1", "--fallback-workers", "1",
            "--batch-max-size", "4", "--grace-period-s", "5"]
    server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = (pathlib.Path(work) / "server.log").read_text()
        port = re.search(r"\(port (\d+)\)", text)
        metrics = re.search(r"metrics on port (\d+)", text)
        if port and metrics:
            return server, int(port.group(1)), int(metrics.group(1))
        if server.poll() is not None:
            break
        time.sleep(0.1)
    print(pathlib.Path(work, "server.log").read_text())
    server.kill()
    raise SystemExit("FAIL: convserve-server did not start")


def drive(cli_bin, port, work):
    """One valid conv2d, one invalid (strides in the batch dimension), one
    float64 conv2d (computed by the fallback reference pool)."""
    import numpy as np  # only here: the static checks do not need it
    np.save(f"{work}/x.npy", np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3, 1))
    np.save(f"{work}/w.npy", np.ones((2, 2, 1, 1), dtype=np.float32))
    np.save(f"{work}/x64.npy", np.arange(1, 10, dtype=np.float64).reshape(1, 3, 3, 1))
    np.save(f"{work}/w64.npy", np.ones((2, 2, 1, 1), dtype=np.float64))
    cli = [cli_bin, "--address", f"127.0.0.1:{port}", "--tls-ca", f"{work}/ca.pem",
           "--token-file", f"{work}/token", "--timeout", "30"]
    calls = [(["conv2d", "--input", "x.npy", "--filter", "w.npy", "--padding", "VALID",
               "--output", "y.npy"], 0),
             (["conv2d", "--input", "x.npy", "--filter", "w.npy", "--padding", "VALID",
               "--strides", "2,1,1,1", "--output", "bad.npy"], None),
             (["conv2d", "--input", "x64.npy", "--filter", "w64.npy", "--padding", "VALID",
               "--output", "y64.npy"], 0)]
    for args, expected in calls:
        result = subprocess.run(cli + args, cwd=work, capture_output=True, text=True, timeout=60)
        if (result.returncode == 0) != (expected == 0):
            fail(f"convserve-cli {' '.join(args)}: exit {result.returncode}: {result.stderr}")
    if np.load(f"{work}/y.npy").ravel().tolist() != [12, 16, 24, 28]:
        fail("wrong conv2d result")


def scrape(metrics_port, work):
    context = ssl.create_default_context(cafile=f"{work}/ca.pem")
    with urllib.request.urlopen(f"https://127.0.0.1:{metrics_port}/metrics", context=context,
                                timeout=30) as reply:
        return reply.read().decode()


def stop(server):
    server.send_signal(signal.SIGTERM)
    try:
        if server.wait(timeout=30) != 0:
            fail(f"convserve-server exited {server.returncode} after SIGTERM")
    except subprocess.TimeoutExpired:
        server.kill()
        fail("convserve-server did not stop within 30 s of SIGTERM")


# ---------------------------------------------------------------------------

def check_the_checker(dashboard, rules, series, families):
    """The checks above must fail on a renamed metric and an unknown label."""
    renamed = copy.deepcopy(dashboard)
    target = next(p for p in dashboard_panels(renamed) if p.get("targets"))["targets"][0]
    target["expr"] = target["expr"].replace("convserve_requests_total", "convserve_request_total")
    if not check_against_page(dashboard_expressions(renamed), series, families):
        fail("the checker missed a metric renamed in the dashboard")
    broken = [("rule with a made-up label",
               'sum by (replica) (rate(convserve_requests_total{job="convserve"}[5m]))')]
    if not check_against_page(broken, series, families):
        fail("the checker missed a label no metric has")
    broken = [("rule with a made-up matcher",
               'rate(convserve_device_requests_total{gpu="0"}[5m])')]
    if not check_against_page(broken, series, families):
        fail("the checker missed a matcher on a label the metric lacks")
    # And it found something to check in every expression.
    for where, expr in rule_expressions(rules) + dashboard_expressions(dashboard):
        if not analyse(expr)[0]:
            fail(f"{where}: no metric found in {expr}")


def main():
    server_bin, cli_bin = (os.path.abspath(path) for path in sys.argv[1:3])
    if shutil.which("promtool") is None:
        raise SystemExit("FAIL: promtool not found (package prometheus; "
                         "scripts/install-deps.sh installs it)")
    rules = yaml.safe_load(RULES.read_text())
    dashboard = json.loads(DASHBOARD.read_text())  # fails the test if not JSON
    work = tempfile.mkdtemp(prefix="convserve-observability-")
    try:
        check_rules_file(rules)
        check_dashboard_structure(dashboard, work)

        subprocess.run([sys.executable, str(REPO / "tests" / "make_test_credentials.py"), work,
                        "observer", "conv,info"], check=True, timeout=60)
        server, port, metrics_port = start_server(server_bin, work)
        try:
            drive(cli_bin, port, work)
            page = scrape(metrics_port, work)
        finally:
            stop(server)
        series, families = parse_page(page)

        expressions = rule_expressions(rules) + dashboard_expressions(dashboard)
        for problem in check_against_page(expressions, series, families):
            fail(problem)
        check_the_checker(dashboard, rules, series, families)
        queried = sorted({name for _, expr in expressions for name, _, _ in analyse(expr)[0]})
        print(f"{len(expressions)} expressions query {len(queried)} metrics: {', '.join(queried)}")
        if failures:
            print((pathlib.Path(work) / "server.log").read_text())
            print(page)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        raise SystemExit(f"observability: {len(failures)} failures")
    print("observability: all checks passed")


if __name__ == "__main__":
    main()
